/**
 * `ChannelPool` against the real RabbitMQ: publishes are bounded by channels × in-flight places, a channel the
 * broker closes is replaced, interrupted publishers leave no channel open, and a pool over a recovering
 * connection keeps publishing across a forced close.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import type { ChannelOptions } from "../../src/amqp/Channel.js"
import * as ChannelPool from "../../src/amqp/ChannelPool.js"
import * as Connection from "../../src/amqp/Connection.js"
import * as Recovery from "../../src/amqp/Recovery.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("amqp channel pool: rabbitmq", Rabbit.brokerControlAvailable())

const bytes = (s: string) => new TextEncoder().encode(s)

/** The connection's real channels, counted as they open and close and as publishes run on them. */
const counted = (connection: Connection.AmqpConnection) => {
  const stats = { opened: 0, closed: 0, publishing: 0, maxPublishing: 0 }
  const source = {
    channel: (options?: ChannelOptions) =>
      Effect.acquireRelease(
        Effect.tap(connection.channel(options), () => Effect.sync(() => stats.opened++)),
        () => Effect.sync(() => stats.closed++)
      ).pipe(Effect.map((channel) => ({
        publish: (exchange: string, routingKey: string, body: Uint8Array, options?: Parameters<typeof channel.publish>[3]) =>
          Effect.acquireUseRelease(
            Effect.sync(() => {
              stats.publishing++
              stats.maxPublishing = Math.max(stats.maxPublishing, stats.publishing)
            }),
            () => channel.publish(exchange, routingKey, body, options),
            () => Effect.sync(() => stats.publishing--)
          )
      })))
  }
  return { stats, source }
}

describe.skipIf(!hasBroker)("ChannelPool against RabbitMQ", () => {
  it.scopedLive("publishes are bounded by size × inFlight and all confirmed", () =>
    Effect.gen(function*() {
      const connection = yield* Connection.make({ url: Rabbit.url(), connectionName: "pool-bounded" })
      const control = yield* connection.channel()
      const { queue } = yield* control.queueDeclare("", { exclusive: true })
      const { source, stats } = counted(connection)
      const pool = yield* ChannelPool.make(source, { size: 3, inFlight: 4 })
      yield* Effect.forEach(
        Array.from({ length: 600 }, (_, i) => i),
        (i) => pool.publish("", queue, bytes(`m${i}`)),
        { concurrency: 100, discard: true }
      )
      assert.strictEqual(stats.opened, 3)
      assert.isAtMost(stats.maxPublishing, 12)
      assert.isAtLeast(stats.maxPublishing, 4)
      assert.strictEqual((yield* control.queueDeclare(queue, { passive: true })).messageCount, 600)
    }), { timeout: 60_000 })

  it.scopedLive("a channel the broker closes fails its publish with ChannelClosed 404 and is replaced", () =>
    Effect.gen(function*() {
      const connection = yield* Connection.make({ url: Rabbit.url(), connectionName: "pool-replaced" })
      const control = yield* connection.channel()
      const { queue } = yield* control.queueDeclare("", { exclusive: true })
      const { source, stats } = counted(connection)
      const pool = yield* ChannelPool.make(source, { size: 2, inFlight: 8 })
      const error = yield* Effect.flip(pool.publish("effect-wire.no-such-exchange", "x", bytes("lost")))
      assert.strictEqual(error._tag, "ChannelClosed")
      if (error._tag === "ChannelClosed") assert.strictEqual(error.replyCode, 404)
      yield* Effect.forEach(Array.from({ length: 200 }, (_, i) => i), (i) => pool.publish("", queue, bytes(`m${i}`)), {
        concurrency: 32,
        discard: true
      })
      assert.strictEqual((yield* control.queueDeclare(queue, { passive: true })).messageCount, 200)
      // Two channels at a time; the closed one was replaced once.
      assert.strictEqual(stats.opened - stats.closed, 2)
      assert.strictEqual(stats.closed, 1)
    }), { timeout: 60_000 })

  it.scopedLive("interrupted publishers and a closed pool leave no channel open", () =>
    Effect.gen(function*() {
      const connection = yield* Connection.make({ url: Rabbit.url(), connectionName: "pool-interrupted" })
      const control = yield* connection.channel()
      const { queue } = yield* control.queueDeclare("", { exclusive: true })
      const { source, stats } = counted(connection)
      const poolScope = yield* Scope.make()
      const pool = yield* Scope.extend(ChannelPool.make(source, { size: 4, inFlight: 2 }), poolScope)
      const publishers = yield* Effect.fork(Effect.forEach(
        Array.from({ length: 2000 }, (_, i) => i),
        (i) => pool.publish("", queue, bytes(`m${i}`)),
        { concurrency: 200, discard: true }
      ))
      yield* Effect.sleep("30 millis")
      yield* Fiber.interrupt(publishers)
      assert.strictEqual(stats.publishing, 0)
      yield* Scope.close(poolScope, Exit.void)
      assert.strictEqual(stats.opened, stats.closed)
      // The connection is still healthy, and the broker agrees about the channels.
      const channel = yield* connection.channel({ confirm: true })
      yield* channel.publish("", queue, bytes("after"))
    }), { timeout: 60_000 })

  it.scopedLive("a pool over a recovering connection keeps publishing across a forced close", () =>
    Effect.gen(function*() {
      const name = "pool-recovering"
      const amqp = yield* Recovery.make({ url: Rabbit.url(), connectionName: name })
      const control = yield* amqp.channel()
      const queue = "effect-wire.recovery.pool"
      yield* control.queueDeclare(queue, { durable: true })
      yield* control.queuePurge(queue)
      yield* Effect.addFinalizer(() => Effect.ignore(Rabbit.rabbitmqctl(["delete_queue", queue])))
      const pool = yield* ChannelPool.make(amqp, { size: 3, inFlight: 16 })
      let confirmed = 0
      const publishing = yield* Effect.fork(Effect.forEach(
        Array.from({ length: 3000 }, (_, i) => i),
        (i) => Effect.tap(pool.publish("", queue, bytes(`m${i}`), { properties: { deliveryMode: 2 } }), () => confirmed++),
        { concurrency: 64, discard: true }
      ))
      while (confirmed < 300) yield* Effect.sleep("10 millis")
      yield* Rabbit.closeConnection(name)
      yield* Fiber.join(publishing)
      assert.strictEqual(confirmed, 3000)
      const count = (yield* Effect.flatMap(control.current, (ch) => ch.queueDeclare(queue, { passive: true }))).messageCount
      // At least once: publishes unconfirmed at the loss were sent again.
      assert.isAtLeast(count, 3000)
    }), { timeout: 60_000 })
})
