import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Stream from "effect/Stream"
import * as PubSub from "../../src/emqp/PubSub.js"

describe("PubSub", () => {
  it.scopedLive("a relay republishes PUBLISH to the subscribers of matching topic prefixes", () =>
    Effect.gen(function*() {
      const incoming = "memory://emqp-pubsub-in"
      const outgoing = "memory://emqp-pubsub-out"
      const relay = yield* PubSub.makeRelay({ incoming, outgoing })
      const news = yield* PubSub.subscribe(["news."], { address: outgoing }).pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      const all = yield* PubSub.subscribe([""], { address: outgoing }).pipe(Stream.take(4), Stream.runCollect, Effect.fork)
      yield* Effect.sleep(Duration.millis(200)) // subscriptions travel to the PUB socket first
      const publisher = yield* PubSub.makePublisher({ address: incoming })
      yield* publisher.publish("news.sport", { score: [1, 0] })
      yield* publisher.publish("weather", "rain")
      yield* publisher.publish("news.tech", { launch: true })
      yield* publisher.publish("news.sport", { score: [2, 0] })
      const got = Chunk.toArray(yield* Fiber.join(news))
      assert.deepStrictEqual(got, [
        { topic: "news.sport", message: { score: [1, 0] } },
        { topic: "news.tech", message: { launch: true } },
        { topic: "news.sport", message: { score: [2, 0] } }
      ])
      assert.deepStrictEqual(Chunk.toArray(yield* Fiber.join(all)).map((m) => m.topic), ["news.sport", "weather", "news.tech", "news.sport"])
      assert.strictEqual(yield* relay.published, 4)
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
})
