/**
 * The AMQP client when the broker misbehaves: a memory alarm blocks publishers (`connection.blocked`), a frozen
 * broker stops heartbeats. These disturb every connection on the shared broker, so they are kept short and apart.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Connection from "../../src/amqp/Connection.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("amqp client faults: rabbitmq control", Rabbit.brokerControlAvailable())

const bytes = (s: string) => new TextEncoder().encode(s)

describe.skipIf(!hasBroker)("AMQP client against a misbehaving RabbitMQ", () => {
  it.scopedLive("connection.blocked: publishes wait (and time out) while the memory alarm is on, then flow again", () =>
    Effect.gen(function*() {
      const connection = yield* Connection.make({
        url: Rabbit.url(),
        connectionName: "faults-blocked",
        blockedTimeout: "1 second"
      })
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.publish("", queue, bytes("before"))
      const states = yield* connection.blocked.pipe(
        Stream.map((s) => s._tag),
        Stream.changes,
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      const trigger = yield* Effect.scoped(Effect.gen(function*() {
        yield* Rabbit.memoryAlarm
        // RabbitMQ blocks a connection (and says so) when it publishes during the alarm.
        const trigger = yield* Effect.fork(channel.publish("", queue, bytes("trigger")))
        yield* connection.blocked.pipe(Stream.filter((s) => s._tag === "Blocked"), Stream.take(1), Stream.runDrain)
        const timedOut = yield* Effect.flip(channel.publish("", queue, bytes("while blocked")))
        assert.strictEqual(timedOut._tag, "Timeout")
        return trigger
      }))
      yield* connection.blocked.pipe(Stream.filter((s) => s._tag === "Unblocked"), Stream.take(1), Stream.runDrain)
      // The publish that was on the wire when the broker stopped reading is confirmed once the alarm clears.
      yield* Fiber.join(trigger)
      yield* channel.publish("", queue, bytes("after"))
      assert.deepStrictEqual(Chunk.toArray(yield* Fiber.join(states)), ["Unblocked", "Blocked", "Unblocked"])
      assert.strictEqual((yield* channel.queueDeclare(queue, { passive: true })).messageCount, 3)
    }), { timeout: 60_000 })

  it.scopedLive("a frozen broker: no heartbeat for two intervals fails the connection with HeartbeatTimeout", () =>
    Effect.gen(function*() {
      const connection = yield* Connection.make({
        url: Rabbit.url(),
        connectionName: "faults-heartbeat",
        heartbeat: "1 second"
      })
      assert.strictEqual(connection.tuned.heartbeat, 1)
      const channel = yield* connection.channel()
      const consumer = yield* channel.consume("amq.rabbitmq.reply-to", { noAck: true }).pipe(
        Stream.runDrain,
        Effect.flip,
        Effect.fork
      )
      const started = Date.now()
      const error = yield* Effect.scoped(Effect.zipRight(Rabbit.pausedBroker, Effect.flip(connection.closed)))
      const elapsed = Date.now() - started
      assert.strictEqual(error._tag, "ConnectionLost")
      if (error._tag === "ConnectionLost") assert.strictEqual(error.reason, "HeartbeatTimeout")
      assert.isAtLeast(elapsed, 1500)
      assert.isBelow(elapsed, Duration.toMillis("10 seconds"))
      assert.strictEqual(yield* Fiber.join(consumer), error)
    }), { timeout: 60_000 })
})
