import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ChannelClosed } from "../../../src/amqp/ClientError.js"
import { ChannelIds } from "../../../src/amqp/internal/client/channelIds.js"
import { Gate } from "../../../src/amqp/internal/client/gate.js"
import * as Heartbeat from "../../../src/amqp/internal/client/heartbeat.js"
import * as Writer from "../../../src/amqp/internal/client/writer.js"
import * as Memory from "../../../src/transport/Memory.js"
import * as Transport from "../../../src/transport/Transport.js"

describe("ChannelIds", () => {
  it("allocates 1..channelMax, refuses the next, and reuses a released id", () => {
    const ids = new ChannelIds(3)
    assert.deepStrictEqual([ids.allocate(), ids.allocate(), ids.allocate()], [1, 2, 3])
    assert.strictEqual(ids.allocate(), undefined)
    ids.release(2)
    assert.strictEqual(ids.allocate(), 2)
    ids.release(3)
    ids.release(1)
    assert.strictEqual(ids.allocate(), 1)
  })
})

describe("heartbeat", () => {
  const setup = Effect.gen(function*() {
    const activity: Heartbeat.Activity = { lastRead: 0, lastWrite: 0 }
    const sent = yield* Ref.make(0)
    const timedOut = yield* Ref.make<number | undefined>(undefined)
    const fiber = yield* Effect.fork(Heartbeat.run({
      interval: Duration.seconds(10),
      activity,
      send: Ref.update(sent, (n) => n + 1),
      onTimeout: (ms) => Ref.set(timedOut, ms)
    }))
    return { activity, sent, timedOut, fiber }
  })

  it.effect("with heartbeat 10 s and a silent peer: a heartbeat is sent by t=5 s, the peer is dead by t=20 s", () =>
    Effect.gen(function*() {
      const { fiber, sent, timedOut } = yield* setup
      yield* TestClock.adjust("5 seconds")
      assert.isAtLeast(yield* Ref.get(sent), 1)
      yield* TestClock.adjust("14 seconds")
      assert.isUndefined(yield* Ref.get(timedOut))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(timedOut), 20_000)
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(fiber)))
    }))

  it.effect("a chatty peer keeps the connection alive and our own writes suppress heartbeats", () =>
    Effect.gen(function*() {
      const activity: Heartbeat.Activity = { lastRead: 0, lastWrite: 0 }
      const sent = yield* Ref.make(0)
      const timedOut = yield* Ref.make(false)
      yield* Effect.fork(Heartbeat.run({
        interval: Duration.seconds(10),
        activity,
        send: Ref.update(sent, (n) => n + 1),
        onTimeout: () => Ref.set(timedOut, true)
      }))
      for (let t = 1; t <= 60; t++) {
        yield* TestClock.adjust("1 second")
        activity.lastRead = t * 1000
        activity.lastWrite = t * 1000
      }
      assert.isFalse(yield* Ref.get(timedOut))
      assert.strictEqual(yield* Ref.get(sent), 0)
    }))
})

describe("Writer", () => {
  const read = (transport: Transport.Transport, bytes: number) =>
    Transport.toStream(transport).pipe(
      Stream.mapConcat((c) => Array.from(c)),
      Stream.take(bytes),
      Stream.runCollect,
      Effect.map(Chunk.toArray)
    )

  it.scoped("writes each job's chunks contiguously, in queue order, from concurrent senders", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const writer = yield* Writer.make({
        transport: a,
        capacity: 16,
        activity: { lastRead: 0, lastWrite: 0 },
        check: () => undefined,
        onWriteError: () => Effect.void
      })
      // 50 jobs of 3 chunks each, tagged with their job number.
      yield* Effect.forEach(
        Array.from({ length: 50 }, (_, i) => i),
        (i) => writer.send(1, [Uint8Array.of(i), Uint8Array.of(i), Uint8Array.of(i)]),
        { concurrency: "unbounded", discard: true }
      )
      const bytes = yield* read(b, 150)
      for (let j = 0; j < 150; j += 3) {
        assert.strictEqual(bytes[j], bytes[j + 1])
        assert.strictEqual(bytes[j], bytes[j + 2])
      }
      assert.strictEqual(new Set(bytes).size, 50)
    }))

  it.scoped("refuses jobs for a closed channel without writing them, but writes forced frames", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const closed = new ChannelClosed({ channel: 2, byBroker: true, replyCode: 404, replyText: "NOT_FOUND", classId: 60, methodId: 40 })
      const writer = yield* Writer.make({
        transport: a,
        capacity: 16,
        activity: { lastRead: 0, lastWrite: 0 },
        check: (job) => (job.channel === 2 && !job.force ? closed : undefined),
        onWriteError: () => Effect.void
      })
      const refused = yield* Effect.flip(writer.send(2, [Uint8Array.of(9)]))
      assert.strictEqual(refused._tag, "ChannelClosed")
      yield* writer.send(2, [Uint8Array.of(7)], true)
      yield* writer.send(1, [Uint8Array.of(1)])
      assert.deepStrictEqual(yield* read(b, 2), [7, 1])
    }))
})

describe("Gate", () => {
  it.effect("publishes pass an open gate, wait while blocked, time out, and the state is a stream", () =>
    Effect.gen(function*() {
      const gate = yield* Gate.make("30 seconds", 2)
      yield* gate.pass
      const states = yield* gate.state.changes.pipe(
        Stream.dropWhile((s) => s._tag === "Unblocked"),
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      yield* Effect.yieldNow()
      yield* gate.block("low on memory")
      const waiting = yield* Effect.fork(gate.pass)
      const late = yield* Effect.fork(gate.pass)
      yield* Effect.yieldNow()
      const third = yield* Effect.flip(gate.pass)
      assert.strictEqual(third._tag, "ClientRefused")
      yield* TestClock.adjust("10 seconds")
      yield* gate.unblock
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(waiting)))
      assert.isTrue(Exit.isSuccess(yield* Fiber.await(late)))
      yield* gate.block("disk")
      const timedOut = yield* Effect.fork(gate.pass)
      yield* TestClock.adjust("31 seconds")
      const error = yield* Effect.flip(Fiber.join(timedOut))
      assert.strictEqual(error._tag, "Timeout")
      const seen = Chunk.toArray(yield* Fiber.join(states)).map((s) => s._tag)
      assert.deepStrictEqual(seen, ["Blocked", "Unblocked", "Blocked"])
    }))
})
