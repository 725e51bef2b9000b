import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import { ChannelClosed, ConnectionClosed } from "../../../src/amqp/ClientError.js"
import { ChannelIds } from "../../../src/amqp/internal/client/channelIds.js"
import { Gate } from "../../../src/amqp/internal/client/gate.js"
import * as Heartbeat from "../../../src/amqp/internal/client/heartbeat.js"
import * as Writer from "../../../src/amqp/internal/client/writer.js"
import * as Frame from "../../../src/amqp/Frame.js"
import * as Methods from "../../../src/amqp/Methods.js"
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
  /** Collects frames from the peer end until `count` frames have arrived. */
  const frames = (transport: Transport.Transport, count: number) =>
    Effect.gen(function*() {
      const parser = new Frame.Parser({ maxFrameSize: 1 << 20 })
      const out: Array<Frame.Frame> = []
      while (out.length < count) {
        const read = yield* transport.read
        if (Transport.isEof(read)) break
        for (const chunk of read) assert.isUndefined(parser.feed(chunk, (f) => out.push(f)))
      }
      return out
    })

  const writer = (transport: Transport.Transport, check: (job: Writer.Job) => ChannelClosed | undefined = () => undefined) =>
    Writer.make({
      transport,
      capacity: 8,
      frameMax: 8192,
      activity: { lastRead: 0, lastWrite: 0 },
      check,
      onWriteError: () => Effect.void,
      stopped: () => new ConnectionClosed({ replyCode: 200, replyText: "stopped", classId: 0, methodId: 0, byBroker: false })
    })

  it.scoped("concurrent publishes on one channel with frame_max 8192: every message is M H B… with no interleaving", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair({ highWaterMark: 1 << 20 })
      const w = yield* writer(a)
      const size = 20_000
      const reader = yield* Effect.fork(frames(b, 40 * 5))
      yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => w.send({ channel: 1, publish: { channel: 1, routingKey: `k${i}`, body: new Uint8Array(size).fill(i) } }),
        { concurrency: "unbounded", discard: true }
      )
      const seen = yield* Fiber.join(reader)
      assert.strictEqual(seen.length, 200)
      const keys = new Set<string>()
      for (let j = 0; j < seen.length; j += 5) {
        const [m, h, ...bodies] = seen.slice(j, j + 5)
        assert.strictEqual(m!._tag, "Method")
        assert.strictEqual(h!._tag, "Header")
        const key = m!._tag === "Method" && m!.method._tag === "BasicPublish" ? m!.method.routingKey : ""
        keys.add(key)
        // 20,000 bytes in chunks of frame_max − 8.
        assert.deepStrictEqual(bodies.map((f) => (f._tag === "Body" ? f.payload.length : -1)), [8184, 8184, 3632])
        const fill = Number(key.slice(1))
        for (const f of bodies) if (f._tag === "Body") assert.isTrue(f.payload.every((x) => x === fill))
      }
      assert.strictEqual(keys.size, 40)
    }))

  it.scoped("a job written from the caller's fiber while the writer idles: later jobs queue behind it, bytes in order", () =>
    Effect.gen(function*() {
      // A pipe smaller than the first message: its write waits until the peer reads.
      const [a, b] = yield* Memory.pair({ highWaterMark: 16 * 1024 })
      const w = yield* writer(a)
      const publish = (key: string, size: number) => ({ channel: 1, publish: { channel: 1, routingKey: key, body: new Uint8Array(size) } })
      const direct = w.tryDirect(publish("direct", 60_000), () => Effect.die("queued"))
      assert.isDefined(direct, "an idle writer lets the caller write")
      const first = yield* Effect.fork(direct!)
      yield* Effect.yieldNow()
      // While that write is in flight nobody else may write directly; the next jobs queue.
      assert.isUndefined(w.tryDirect(publish("x", 1), () => Effect.void))
      const queued = yield* Effect.fork(Effect.forEach(["q1", "q2", "q3"], (key) => w.send(publish(key, 10)), {
        concurrency: "unbounded",
        discard: true
      }))
      // 60,000 bytes in frames of 8,184: method, header and 8 bodies; then three messages of 3 frames.
      const seen = yield* frames(b, 10 + 3 * 3)
      const keys = seen.flatMap((f) => f._tag === "Method" && f.method._tag === "BasicPublish" ? [f.method.routingKey] : [])
      assert.deepStrictEqual(keys, ["direct", "q1", "q2", "q3"])
      yield* Fiber.join(first)
      yield* Fiber.join(queued)
      assert.strictEqual(yield* w.pending, 0)
      // Idle again: after an event-loop turn (one direct write per turn) the next job may be written directly.
      yield* Effect.async<void>((resume) => void setImmediate(() => resume(Effect.void)))
      const again = w.tryDirect(publish("again", 1), () => Effect.die("queued"))
      assert.isDefined(again)
      yield* again!
      // A second one in the same turn goes through the writer, which coalesces what comes together.
      assert.isUndefined(w.tryDirect(publish("same turn", 1), () => Effect.void))
    }))

  it.scoped("refuses jobs for a channel the broker closed, writes forced frames, and fails bad encodings alone", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const closed = new ChannelClosed({ channel: 2, byBroker: true, replyCode: 404, replyText: "NOT_FOUND", classId: 60, methodId: 40 })
      const w = yield* writer(a, (job) => (job.channel === 2 && job.force !== true ? closed : undefined))
      const refused = yield* Effect.flip(w.send({ channel: 2, frame: Frame.heartbeat }))
      assert.strictEqual(refused._tag, "ChannelClosed")
      const tooLong = yield* Effect.flip(w.send({ channel: 1, publish: { channel: 1, routingKey: "é".repeat(128), body: new Uint8Array(1) } }))
      assert.strictEqual(tooLong._tag, "ClientRefused")
      yield* w.send({ channel: 2, frame: Frame.method(2, Methods.make("ChannelCloseOk", {})), force: true })
      yield* w.send({ channel: 1, frame: Frame.heartbeat })
      const seen = yield* frames(b, 2)
      assert.deepStrictEqual(seen.map((f) => `${f._tag}:${f.channel}`), ["Method:2", "Heartbeat:0"])
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
