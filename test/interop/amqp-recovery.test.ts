/**
 * Recovery against the real RabbitMQ: forced closes, broker application restarts, a frozen broker, and a first
 * host that refuses connections. What users rely on is asserted: every confirmed message is received, the
 * consumer stream never ends, topology and server-named queues come back, and the time to resume is measured.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import type { ClientError } from "../../src/amqp/ClientError.js"
import type { ConnectionState } from "../../src/amqp/ConnectionState.js"
import type { Delivery } from "../../src/amqp/Consumer.js"
import * as Recovery from "../../src/amqp/Recovery.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("amqp recovery: rabbitmq control", Rabbit.brokerControlAvailable())

const bytes = (s: string) => new TextEncoder().encode(s)

/** Waits for the first state matching `f` from now on (the current one included). */
const waitFor = (amqp: Recovery.RecoveringConnection, f: (s: ConnectionState) => boolean) =>
  amqp.states.pipe(Stream.filter(f), Stream.take(1), Stream.runCollect, Effect.map((c) => Chunk.unsafeHead(c)))

const generationOf = (s: ConnectionState) => (s._tag === "Connected" ? s.generation : 0)

const report = (line: string) => Effect.sync(() => process.stderr.write(`amqp-recovery: ${line}\n`))

describe.skipIf(!hasBroker)("AMQP recovery against RabbitMQ", () => {
  it.scopedLive("confirmed messages survive forced closes and broker restarts; the consumer stream never ends", () =>
    Effect.gen(function*() {
      const name = "recovery-faults"
      const queue = "effect-wire.recovery.faults"
      const amqp = yield* Recovery.make({ url: Rabbit.url(), connectionName: name, heartbeat: "5 seconds" })
      const setup = yield* amqp.channel()
      yield* setup.queueDeclare(queue, { durable: true })
      yield* setup.queuePurge(queue)
      yield* Effect.addFinalizer(() => Effect.ignore(Rabbit.rabbitmqctl(["delete_queue", queue])))

      // Consumer: acks every 20th delivery with `multiple`, so a loss always leaves unacked deliveries behind.
      const received = new Map<number, number>()
      let redelivered = 0
      let unflaggedDuplicates = 0
      let staleAcks = 0
      const staleAckTags = new Set<string>()
      const consumerChannel = yield* amqp.channel({ prefetch: 200 })
      let count = 0
      const consumer = yield* consumerChannel.consume(queue).pipe(
        Stream.runForEach((d: Delivery) =>
          Effect.gen(function*() {
            const id = Number(d.properties.messageId)
            const seen = received.get(id) ?? 0
            received.set(id, seen + 1)
            if (d.redelivered) redelivered++
            else if (seen > 0) unflaggedDuplicates++
            if (++count % 20 === 0) {
              yield* d.ack({ multiple: true }).pipe(Effect.catchAll((e: ClientError) =>
                Effect.sync(() => {
                  staleAcks++
                  staleAckTags.add(e._tag)
                })
              ))
            }
          })
        ),
        Effect.fork
      )

      // Publishers: 8 fibers with confirms, each publish retried across losses until confirmed.
      const publisher = yield* amqp.channel({ confirm: true })
      const confirmed = new Set<number>()
      let next = 0
      let stop = false
      const worker = Effect.gen(function*() {
        while (!stop) {
          const id = next++
          yield* publisher.publish("", queue, bytes(`message ${id}`), {
            properties: { messageId: String(id), deliveryMode: 2 }
          })
          confirmed.add(id)
        }
      })
      const publishers = yield* Effect.fork(Effect.all(Array.from({ length: 8 }, () => worker), { concurrency: "unbounded", discard: true }))
      const progress = (n: number) =>
        Effect.gen(function*() {
          const target = confirmed.size + n
          while (confirmed.size < target) yield* Effect.sleep("20 millis")
        })

      let stopped = false
      yield* Effect.addFinalizer(() => (stopped ? Effect.orDie(Rabbit.startApp) : Effect.void))
      const resumes: Array<number> = []
      for (let cycle = 0; cycle < 3; cycle++) {
        yield* progress(200)
        const before = generationOf(yield* amqp.state)
        const closed = yield* Rabbit.closeConnection(name, `fault cycle ${cycle}`)
        assert.isAtLeast(closed, 1)
        yield* waitFor(amqp, (s) => generationOf(s) > before)
        yield* progress(200)

        const beforeRestart = generationOf(yield* amqp.state)
        stopped = true
        yield* Rabbit.stopApp
        yield* Effect.sleep("300 millis")
        yield* Rabbit.startApp
        stopped = false
        const back = Date.now()
        yield* waitFor(amqp, (s) => generationOf(s) > beforeRestart)
        resumes.push(Date.now() - back)
      }
      yield* progress(200)
      stop = true
      yield* Fiber.join(publishers)

      // Every confirmed message arrives (at least once).
      const deadline = Date.now() + 20_000
      const missing = () => [...confirmed].filter((id) => !received.has(id))
      while (missing().length > 0 && Date.now() < deadline) yield* Effect.sleep("50 millis")
      const duplicates = [...received.values()].reduce((n, c) => n + c - 1, 0)
      yield* report(
        `${confirmed.size} confirmed, ${received.size} distinct received, ${duplicates} duplicates ` +
          `(${redelivered} flagged redelivered, ${unflaggedDuplicates} unflagged: publishes retried after a loss), ` +
          `${staleAcks} acks refused after a loss (${[...staleAckTags].join(", ")}); ` +
          `resume after the broker is back: ${resumes.join(", ")} ms`
      )
      assert.deepStrictEqual(missing().slice(0, 10), [])
      assert.isAtLeast(confirmed.size, 1200)
      // Deliveries left unacked by a loss come back flagged.
      assert.isAbove(redelivered, 0)
      for (const tag of staleAckTags) assert.include(["ConnectionLost", "ConnectionClosed"], tag)
      // The consumer stream is still running.
      assert.isTrue(Option.isNone(yield* Fiber.poll(consumer)))
      for (const ms of resumes) assert.isBelow(ms, 5_000)
      yield* Fiber.interrupt(consumer)
    }), { timeout: 120_000 })

  it.scopedLive("two hosts: the first refuses connections, the second is used, and reconnects go straight to it", () =>
    Effect.gen(function*() {
      const name = "recovery-hosts"
      const amqp = yield* Recovery.make({
        url: Rabbit.url(),
        hosts: ["127.0.0.1:1", `${Rabbit.host}:${Rabbit.port}`],
        connectionName: name
      })
      const first = yield* amqp.state
      assert.deepStrictEqual(first._tag, "Connected")
      if (first._tag === "Connected") assert.strictEqual(first.host, `${Rabbit.host}:${Rabbit.port}`)
      const states = yield* amqp.states.pipe(
        Stream.takeUntil((s) => s._tag === "Connected" && s.generation === 2),
        Stream.runCollect,
        Effect.fork
      )
      yield* Effect.sleep("50 millis")
      yield* Rabbit.closeConnection(name)
      const seen = Chunk.toArray(yield* Fiber.join(states)).map((s) => s._tag === "Reconnecting" ? `Reconnecting ${s.attempt} ${s.host}` : s._tag)
      assert.deepStrictEqual(seen, ["Connected", "Disconnected", `Reconnecting 1 ${Rabbit.host}:${Rabbit.port}`, "Connected"])
    }), { timeout: 60_000 })

  it.scopedLive("topology comes back: exchange, server-named queue (renamed) and binding; old deliveries cannot be acked", () =>
    Effect.gen(function*() {
      const name = "recovery-topology"
      const exchange = "effect-wire.recovery.topology"
      const hooks: Array<string> = []
      const amqp = yield* Recovery.make({
        url: Rabbit.url(),
        connectionName: name,
        beforeRecovery: (error) => Effect.sync(() => hooks.push(`before ${error._tag}`)),
        afterRecovery: () => Effect.sync(() => hooks.push("after"))
      })
      const channel = yield* amqp.channel({ confirm: true })
      yield* channel.exchangeDeclare(exchange, "direct", { autoDelete: true })
      const { queue: firstName } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.queueBind(firstName, exchange, "k")
      const consumerChannel = yield* amqp.channel()
      const got: Array<Delivery> = []
      const consumer = yield* consumerChannel.consume(firstName).pipe(
        Stream.runForEach((d) => Effect.sync(() => got.push(d))),
        Effect.fork
      )
      const receive = (n: number) => Effect.gen(function*() {
        while (got.length < n) yield* Effect.sleep("10 millis")
      }).pipe(Effect.timeout("10 seconds"))
      yield* channel.publish(exchange, "k", bytes("one"))
      yield* receive(1)
      yield* Rabbit.closeConnection(name)
      yield* waitFor(amqp, (s) => generationOf(s) === 2)
      // Through the recovered exchange and binding to the renamed queue, and to the queue's first name.
      yield* channel.publish(exchange, "k", bytes("two"))
      yield* channel.publish("", firstName, bytes("three"), { mandatory: true })
      yield* receive(3)
      assert.deepStrictEqual(got.map((d) => d.text), ["one", "two", "three"])
      // The exclusive queue died with the first connection ("one" with it); the old delivery's ack is refused.
      const stale = yield* Effect.flip(got[0]!.ack())
      assert.include(["ConnectionLost", "ConnectionClosed"], stale._tag)
      yield* got[2]!.ack({ multiple: true })
      const queues = (yield* Rabbit.listQueues()).map((q) => q.name)
      assert.notInclude(queues, firstName)
      assert.strictEqual(queues.filter((q) => q.startsWith("amq.gen-")).length > 0, true)
      assert.deepStrictEqual(hooks, ["before ConnectionClosed", "after"])
      assert.isTrue(Option.isNone(yield* Fiber.poll(consumer)))
    }), { timeout: 60_000 })

  it.scopedLive("a publish left unconfirmed by a lost connection is retried, or fails with PublishInterrupted", () =>
    Effect.gen(function*() {
      const retrying = yield* Recovery.make({ url: Rabbit.url(), connectionName: "recovery-retry", heartbeat: "1 second" })
      const failing = yield* Recovery.make({
        url: Rabbit.url(),
        connectionName: "recovery-fail",
        heartbeat: "1 second",
        publishRecovery: "fail"
      })
      const a = yield* retrying.channel({ confirm: true })
      const b = yield* failing.channel({ confirm: true })
      const queue = "effect-wire.recovery.unconfirmed"
      yield* a.queueDeclare(queue, { durable: true })
      yield* a.queuePurge(queue)
      yield* Effect.addFinalizer(() => Effect.ignore(Rabbit.rabbitmqctl(["delete_queue", queue])))
      const [retried, interrupted] = yield* Effect.scoped(Effect.gen(function*() {
        yield* Rabbit.pausedBroker
        const retried = yield* Effect.fork(a.publish("", queue, bytes("retried"), { properties: { deliveryMode: 2 } }))
        const interrupted = yield* Effect.fork(Effect.flip(b.publish("", queue, bytes("interrupted"), { properties: { deliveryMode: 2 } })))
        // Two silent heartbeat intervals: both connections are lost while the publishes are unconfirmed.
        yield* waitFor(failing, (s) => s._tag === "Disconnected" || s._tag === "Reconnecting")
        return [retried, interrupted] as const
      }))
      const error = yield* Fiber.join(interrupted)
      assert.strictEqual(error._tag, "RecoveryError")
      if (error._tag === "RecoveryError") assert.strictEqual(error.reason, "PublishInterrupted")
      yield* Fiber.join(retried)
      const declared = yield* Effect.flatMap(a.current, (ch) => ch.queueDeclare(queue, { passive: true }))
      // "retried" is in the queue at least once; "interrupted" maybe (the broker may have taken it before freezing).
      assert.isAtLeast(declared.messageCount, 1)
    }), { timeout: 60_000 })
})
