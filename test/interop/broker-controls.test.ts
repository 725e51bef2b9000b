/**
 * The broker controls that fault tests rely on (test/support/rabbitmq.ts) do what they claim, seen from a real
 * client (amqplib): a paused broker starves heartbeats, a memory alarm blocks publishers, an app restart drops
 * connections and comes back. These disturb every connection on the shared broker, so they live apart from the
 * smoke test and run while no other interop file does.
 */
import { assert, describe, it } from "@effect/vitest"
import amqplib from "amqplib"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("broker controls: rabbitmq", Rabbit.brokerControlAvailable())

const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(() => amqplib.connect(url)).pipe(Effect.tap((connection) => {
      // Every way these connections end is read from "close"; "error" would otherwise be thrown.
      connection.on("error", () => undefined)
    })),
    (connection) => Effect.promise(() => connection.close().catch(() => undefined))
  )

const onceEvent = (emitter: amqplib.ChannelModel, event: string) =>
  Effect.gen(function*() {
    const fired = yield* Deferred.make<unknown>()
    emitter.once(event, (value: unknown) => Deferred.unsafeDone(fired, Exit.succeed(value)))
    return Deferred.await(fired)
  })

describe.skipIf(!hasBroker)("RabbitMQ controls", () => {
  it.scopedLive("pausedBroker: a paused broker sends no heartbeats, so a 1 s heartbeat client gives up", () =>
    Effect.gen(function*() {
      const connection = yield* connect(Rabbit.url({ query: "heartbeat=1" }))
      const closed = yield* onceEvent(connection, "close")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Rabbit.pausedBroker
        const error = yield* closed.pipe(Effect.timeout(Duration.seconds(10)))
        assert.match(String(error), /Heartbeat timeout/)
      }))
      // Resumed: the broker serves new connections again.
      const after = yield* connect(Rabbit.url())
      const channel = yield* Effect.promise(() => after.createChannel())
      const { queue } = yield* Effect.promise(() => channel.assertQueue("", { exclusive: true }))
      assert.match(queue, /^amq\.gen-/)
    }), 30_000)

  it.scopedLive("memoryAlarm: a publishing connection is blocked, then unblocked when the alarm clears", () =>
    Effect.gen(function*() {
      const connection = yield* connect(Rabbit.url())
      const channel = yield* Effect.promise(() => connection.createConfirmChannel())
      const { queue } = yield* Effect.promise(() => channel.assertQueue("", { exclusive: true }))
      channel.sendToQueue(queue, Buffer.from("before"))
      yield* Effect.promise(() => channel.waitForConfirms())

      const blocked = yield* onceEvent(connection, "blocked")
      const unblocked = yield* onceEvent(connection, "unblocked")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* Rabbit.memoryAlarm
        channel.sendToQueue(queue, Buffer.from("during"))
        const reason = yield* blocked.pipe(Effect.timeout(Duration.seconds(20)))
        assert.match(String(reason), /low on memory/)
      }))
      yield* unblocked.pipe(Effect.timeout(Duration.seconds(20)))
      // The message held during the alarm is delivered once it clears.
      yield* Effect.promise(() => channel.waitForConfirms())
      const check = yield* Effect.promise(() => channel.checkQueue(queue))
      assert.strictEqual(check.messageCount, 2)
    }), 60_000)

  it.scopedLive("restartApp: connections are forced closed, and the broker accepts new ones afterwards", () =>
    Effect.gen(function*() {
      const connection = yield* connect(Rabbit.url())
      const closed = yield* onceEvent(connection, "close")
      yield* Rabbit.restartApp
      const error = yield* closed.pipe(Effect.timeout(Duration.seconds(10)))
      assert.match(String(error), /CONNECTION_FORCED/)
      const after = yield* connect(Rabbit.url())
      const channel = yield* Effect.promise(() => after.createChannel())
      const { queue } = yield* Effect.promise(() => channel.assertQueue("", { exclusive: true }))
      assert.match(queue, /^amq\.gen-/)
    }), 90_000)
})
