import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { ConnectionState } from "../../../src/amqp/ConnectionState.js"
import type { Delivery } from "../../../src/amqp/Consumer.js"
import * as Recovery from "../../../src/amqp/Recovery.js"
import * as AutoBroker from "./autoBroker.js"

const until = (done: () => boolean, what = "condition") =>
  Effect.gen(function*() {
    while (!done()) yield* Effect.sleep("2 millis")
  }).pipe(Effect.timeout("5 seconds"), Effect.orDieWith(() => new Error(`timed out waiting for ${what}`)))

const connectedTo = (amqp: Recovery.RecoveringConnection, generation: number) =>
  amqp.states.pipe(Stream.filter((s) => s._tag === "Connected" && s.generation === generation), Stream.take(1), Stream.runDrain)

const describeState = (s: ConnectionState): string => {
  switch (s._tag) {
    case "Connected":
      return `Connected ${s.generation}`
    case "Reconnecting":
    case "Connecting":
      return `${s._tag} ${s.attempt}`
    case "Disconnected":
      return `Disconnected ${s.error._tag}`
    case "Closed":
      return `Closed ${s.error?._tag ?? ""}`.trim()
    case "Blocked":
      return "Blocked"
  }
}

/** The tag the broker gave a consumer (the client's own, or the one the auto broker generated). */
const tagOf = (consume: AutoBroker.Received) =>
  consume.method._tag === "BasicConsume" ? consume.method.consumerTag : ""

const setup = (options?: Partial<Recovery.Options>) =>
  Effect.gen(function*() {
    const broker = yield* AutoBroker.make
    const amqp = yield* Recovery.make({
      transport: broker.transport,
      schedule: Schedule.spaced("5 millis"),
      closeTimeout: "100 millis",
      ...options
    })
    return { broker, amqp }
  })

describe("Recovery over a scripted broker", () => {
  it.scopedLive("replays the topology in order: exchanges, queues (server-named ones renamed), bindings, then channels with confirm and prefetch", () =>
    Effect.gen(function*() {
      const { amqp, broker } = yield* setup()
      const channel = yield* amqp.channel({ confirm: true, prefetch: 5 })
      yield* channel.exchangeDeclare("ex", "direct")
      const { queue } = yield* channel.queueDeclare()
      assert.strictEqual(queue, "amq.gen-1-1")
      yield* channel.queueBind(queue, "ex", "k")
      yield* channel.queueDeclare("tmp")
      yield* channel.queueBind("tmp", "ex", "t")
      yield* channel.queueDelete("tmp")
      yield* channel.exchangeDeclare("gone", "fanout")
      yield* channel.exchangeDelete("gone")
      yield* channel.queueDeclare("jobs", { passive: true })

      yield* broker.connections[0]!.kill
      yield* connectedTo(amqp, 2)
      const replayed = AutoBroker.summary(broker.connections[1]!.received).map((s) => s.replace(/^\d+ /, ""))
      assert.deepStrictEqual(replayed, [
        "ChannelOpen",
        "ExchangeDeclare ex",
        "QueueDeclare ",
        "QueueBind amq.gen-2-1 ex k",
        "ChannelClose",
        "ChannelOpen",
        "ConfirmSelect",
        "BasicQos 5"
      ])
    }))

  it.scopedLive("a consumer stream goes on across a loss: it re-consumes the renamed queue, the redelivery arrives flagged, the old delivery's ack fails", () =>
    Effect.gen(function*() {
      const { amqp, broker } = yield* setup()
      const channel = yield* amqp.channel()
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      const got: Array<Delivery> = []
      const consumer = yield* channel.consume(queue).pipe(Stream.runForEach((d) => Effect.sync(() => got.push(d))), Effect.fork)
      const consumeOn = (index: number) =>
        Effect.gen(function*() {
          yield* until(() => broker.connections[index]?.received.some((r) => r.method._tag === "BasicConsume") === true, `consume on ${index}`)
          return broker.connections[index]!.received.find((r) => r.method._tag === "BasicConsume")!
        })
      const first = yield* consumeOn(0)
      assert.deepStrictEqual(AutoBroker.summary([first]).map((s) => s.replace(/^\d+ /, "")), ["BasicConsume amq.gen-1-1"])
      yield* broker.connections[0]!.deliver(first.channel, tagOf(first), 1, "a")
      yield* until(() => got.length === 1, "first delivery")

      yield* broker.connections[0]!.kill
      const second = yield* consumeOn(1)
      assert.deepStrictEqual(AutoBroker.summary([second]).map((s) => s.replace(/^\d+ /, "")), ["BasicConsume amq.gen-2-1"])
      yield* broker.connections[1]!.deliver(second.channel, tagOf(second), 1, "a", true)
      yield* until(() => got.length === 2, "redelivery")

      assert.deepStrictEqual(got.map((d) => [d.text, d.redelivered]), [["a", false], ["a", true]])
      const stale = yield* Effect.flip(got[0]!.ack())
      assert.strictEqual(stale._tag, "ConnectionLost")
      yield* got[1]!.ack()
      yield* until(() => broker.connections[1]!.received.some((r) => r.method._tag === "BasicAck"), "ack")
      assert.isNull(consumer.unsafePoll())
    }))

  it.scopedLive("refused attempts are reported as Reconnecting 1, 2, 3; hooks run around the recovery", () =>
    Effect.gen(function*() {
      const hooks: Array<string> = []
      const { amqp, broker } = yield* setup({
        beforeRecovery: (error) => Effect.sync(() => hooks.push(`before ${error._tag}`)),
        afterRecovery: (connection) => Effect.sync(() => hooks.push(`after ${connection.tuned.channelMax}`))
      })
      const states = yield* amqp.states.pipe(
        Stream.takeUntil((s) => s._tag === "Connected" && s.generation === 2),
        Stream.runCollect,
        Effect.fork
      )
      yield* Effect.sleep("10 millis")
      broker.refuse(2)
      yield* broker.connections[0]!.force
      const seen = Chunk.toArray(yield* Fiber.join(states)).map(describeState)
      assert.deepStrictEqual(seen, [
        "Connected 1",
        "Disconnected ConnectionClosed",
        "Reconnecting 1",
        "Reconnecting 2",
        "Reconnecting 3",
        "Connected 2"
      ])
      assert.strictEqual(broker.attempts(), 4)
      assert.deepStrictEqual(hooks, ["before ConnectionClosed", "after 2047"])
    }))

  it.scopedLive("connection.blocked and unblocked show as Blocked and Connected", () =>
    Effect.gen(function*() {
      const { amqp, broker } = yield* setup()
      const states = yield* amqp.states.pipe(Stream.take(3), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("10 millis")
      yield* broker.connections[0]!.block("low on memory")
      yield* Effect.sleep("10 millis")
      yield* broker.connections[0]!.block(undefined)
      const seen = Chunk.toArray(yield* Fiber.join(states))
      assert.deepStrictEqual(seen.map(describeState), ["Connected 1", "Blocked", "Connected 1"])
      const blocked = seen[1]!
      if (blocked._tag === "Blocked") assert.strictEqual(blocked.reason, "low on memory")
    }))

  it.scoped("the schedule sets the pace of attempts (TestClock)", () =>
    Effect.gen(function*() {
      const { amqp, broker } = yield* setup({ schedule: Schedule.spaced("1 second") })
      broker.refuse(2)
      const settle = Effect.repeatN(Effect.yieldNow(), 500)
      yield* broker.connections[0]!.force
      yield* settle
      assert.strictEqual(broker.attempts(), 2)
      yield* TestClock.adjust("999 millis")
      yield* settle
      assert.strictEqual(broker.attempts(), 2)
      yield* TestClock.adjust("1 millis")
      yield* settle
      assert.strictEqual(broker.attempts(), 3)
      assert.strictEqual(describeState(yield* amqp.state), "Reconnecting 2")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(broker.attempts(), 4)
      assert.strictEqual(describeState(yield* amqp.state), "Connected 2")
      // Close handshakes and the retired connection's grace period run on the test clock too.
      const closing = yield* Effect.fork(amqp.close)
      yield* TestClock.adjust("10 seconds")
      yield* Fiber.join(closing)
    }))

  it.scopedLive("when the schedule ends, the connection closes with GaveUp and waiting operations fail", () =>
    Effect.gen(function*() {
      const { amqp, broker } = yield* setup({ schedule: Schedule.spaced("5 millis").pipe(Schedule.intersect(Schedule.recurs(3))) })
      const channel = yield* amqp.channel()
      broker.refuse(100)
      yield* broker.connections[0]!.kill
      const error = yield* Effect.flip(amqp.closed)
      assert.strictEqual(error.reason, "GaveUp")
      assert.strictEqual(broker.attempts(), 1 + 4)
      const state = yield* amqp.state
      assert.strictEqual(describeState(state), "Closed ConnectionFailed")
      const refused = yield* Effect.flip(channel.queueDeclare("q"))
      assert.strictEqual(refused._tag, "RecoveryError")
    }))

  it.scopedLive("closing while reconnecting stops the attempts and ends in Closed", () =>
    Effect.gen(function*() {
      const { amqp, broker } = yield* setup()
      broker.refuse(1_000_000)
      yield* broker.connections[0]!.kill
      yield* until(() => broker.attempts() > 3)
      yield* amqp.close
      yield* amqp.closed
      const attempts = broker.attempts()
      yield* Effect.sleep("30 millis")
      assert.strictEqual(broker.attempts(), attempts)
      assert.strictEqual(describeState(yield* amqp.state), "Closed")
    }))
})
