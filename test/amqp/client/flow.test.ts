/**
 * `channel.flow` both ways: the broker pausing a channel's publishes (they wait before their first frame, then go
 * out once it resumes), and `channel.flow(active)` from the client, as RabbitMQ accepts it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Methods from "../../../src/amqp/Methods.js"
import * as FakeBroker from "./fakeBroker.js"

const bytes = (s: string) => new TextEncoder().encode(s)

const withChannelOver = (over: FakeBroker.Over) => Effect.gen(function*() {
  const { broker, connection } = yield* FakeBroker.connected(undefined, undefined, over)
  return { broker, ...yield* FakeBroker.openChannel(broker, connection) }
})

for (const over of ["memory", "tcp"] as const) {
const withChannel = withChannelOver(over)

describe(`channel.flow (${over})`, () => {
  it.scopedLive("the broker pauses the channel: publishes wait unwritten, then go out in order when it resumes", () =>
    Effect.gen(function*() {
      const { broker, channel, id } = yield* withChannel
      yield* channel.publish("", "q", bytes("before"))
      assert.strictEqual((yield* broker.expect("BasicPublish", id)).routingKey, "q")
      yield* broker.recv
      yield* broker.recv

      yield* broker.send(id, Methods.make("ChannelFlow", { active: false }))
      assert.isFalse((yield* broker.expect("ChannelFlowOk", id)).active)
      const waiting = yield* Effect.fork(Effect.forEach(["a", "b", "c"], (key) => channel.publish("", key, bytes(key)), {
        discard: true
      }))
      const batch = yield* Effect.fork(channel.publishAll([{ exchange: "", routingKey: "d", body: bytes("d") }]))
      assert.isTrue(Option.isNone(yield* broker.poll), "nothing is written while the channel is paused")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      // Requests other than publishes still go through.
      const declare = yield* Effect.fork(channel.queueDeclare("x"))
      yield* broker.expect("QueueDeclare", id)
      yield* broker.send(id, Methods.make("QueueDeclareOk", { queue: "x", messageCount: 0, consumerCount: 0 }))
      yield* Fiber.join(declare)

      yield* broker.send(id, Methods.make("ChannelFlow", { active: true }))
      assert.isTrue((yield* broker.expect("ChannelFlowOk", id)).active)
      const keys: Array<string> = []
      for (let i = 0; i < 4; i++) {
        keys.push((yield* broker.expect("BasicPublish", id)).routingKey)
        yield* broker.recv
        yield* broker.recv
      }
      assert.deepStrictEqual([...keys].sort(), ["a", "b", "c", "d"])
      assert.deepStrictEqual(keys.filter((k) => k !== "d"), ["a", "b", "c"])
      yield* Fiber.join(waiting)
      yield* Fiber.join(batch)
    }))

  it.scopedLive("a publish Effect made before the pause and run during it waits too: it decides when it runs", () =>
    Effect.gen(function*() {
      const { broker, channel, id } = yield* withChannel
      const publish = channel.publish("", "q", bytes("x"))
      yield* publish
      yield* broker.expect("BasicPublish", id)
      yield* broker.recv
      yield* broker.recv
      yield* broker.send(id, Methods.make("ChannelFlow", { active: false }))
      yield* broker.expect("ChannelFlowOk", id)
      const waiting = yield* Effect.fork(publish)
      yield* Effect.sleep("50 millis")
      assert.isTrue(Option.isNone(yield* broker.poll), "nothing is written while the channel is paused")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiting)))
      yield* broker.send(id, Methods.make("ChannelFlow", { active: true }))
      yield* broker.expect("ChannelFlowOk", id)
      yield* broker.expect("BasicPublish", id)
      yield* Fiber.join(waiting)
    }))

  it.scopedLive("a channel closed while paused fails the publishes that wait", () =>
    Effect.gen(function*() {
      const { broker, channel, id } = yield* withChannel
      yield* broker.send(id, Methods.make("ChannelFlow", { active: false }))
      yield* broker.expect("ChannelFlowOk", id)
      const waiting = yield* Effect.fork(channel.publish("", "q", bytes("x")))
      assert.isTrue(Option.isNone(yield* broker.poll))
      yield* broker.send(id, Methods.make("ChannelClose", { replyCode: 406, replyText: "PRECONDITION_FAILED", classId: 0, methodId: 0 }))
      yield* broker.expect("ChannelCloseOk", id)
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
        assert.strictEqual(error?._tag, "ChannelClosed")
        if (error?._tag === "ChannelClosed") assert.strictEqual(error.replyCode, 406)
      }
      assert.isTrue(Option.isNone(yield* broker.poll), "the waiting publish was never written")
    }))

  it.scopedLive("flow(true) is a channel.flow request answered by flow-ok; flow(false) is refused before the wire", () =>
    Effect.gen(function*() {
      const { broker, channel, id } = yield* withChannel
      const resumed = yield* Effect.fork(channel.flow(true))
      assert.isTrue((yield* broker.expect("ChannelFlow", id)).active)
      yield* broker.send(id, Methods.make("ChannelFlowOk", { active: true }))
      assert.isTrue(yield* Fiber.join(resumed))

      const refused = yield* Effect.flip(channel.flow(false))
      assert.strictEqual(refused._tag, "ClientRefused")
      if (refused._tag === "ClientRefused") assert.strictEqual(refused.reason, "NotImplemented")
      assert.isTrue(Option.isNone(yield* broker.poll))
    }))
})
}
