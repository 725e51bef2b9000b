import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Framing from "../../src/transport/Framing.js"
import * as Memory from "../../src/transport/Memory.js"
import * as Transport from "../../src/transport/Transport.js"

const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const codec = Framing.lengthPrefixed({ prefixSize: 2 })
const frame = (i: number) => Either.getOrThrow(codec.encode(utf8(`frame-${String(i).padStart(4, "0")}`)))

/** Lets every runnable fiber run until all of them wait. */
const settle = Effect.forEach(Array.from({ length: 50 }), () => Effect.yieldNow(), { discard: true })

describe("Framing.dispatch", () => {
  it.scoped("handles every frame in order and ends when the peer ends", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const seen: Array<string> = []
      const dispatcher = yield* Effect.fork(
        Framing.dispatch(b, codec, (f) => Effect.sync(() => seen.push(text(f))), { queueSize: 3 })
      )
      // Many frames in one write, and one frame split over writes.
      yield* a.writeAll(Array.from({ length: 100 }, (_, i) => frame(i)))
      const last = frame(100)
      yield* a.write(last.subarray(0, 3))
      yield* a.write(last.subarray(3))
      yield* a.shutdownWrite
      yield* Fiber.join(dispatcher)
      assert.deepStrictEqual(seen, Array.from({ length: 101 }, (_, i) => `frame-${String(i).padStart(4, "0")}`))
    }))

  it.scoped("a full queue stops reading: the writer on the other side blocks until the handler catches up", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair({ highWaterMark: 256 })
      const gate = yield* Effect.makeLatch(false)
      let handled = 0
      const dispatcher = yield* Effect.fork(
        Framing.dispatch(b, codec, () => Effect.zipRight(gate.await, Effect.sync(() => handled++)), {
          queueSize: 4
        })
      )
      const total = 200 // 200 frames of 12 bytes: far more than the queue and the pipe hold
      let written = 0
      const writer = yield* Effect.fork(
        Effect.forEach(Array.from({ length: total }, (_, i) => frame(i)), (f) =>
          Effect.tap(a.write(f), () => Effect.sync(() => written++)), { discard: true })
      )
      yield* settle
      const stalledAt = written
      yield* settle
      assert.strictEqual(written, stalledAt, "the writer is blocked, not slowly progressing")
      // Bounded: the pipe (256 bytes ≈ 21 frames), one batch held by the reader, the queue of 4, the handler's 1.
      assert.isBelow(stalledAt, 60)
      assert.strictEqual(handled, 0)
      assert.isNull(writer.unsafePoll(), "the writer is still waiting")
      yield* gate.open
      yield* Fiber.join(writer)
      yield* a.shutdownWrite
      yield* Fiber.join(dispatcher)
      assert.strictEqual(written, total)
      assert.strictEqual(handled, total)
    }))

  it.scoped("a reset ends it with the typed transport error, after the frames received before", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const seen: Array<string> = []
      const dispatcher = yield* Effect.fork(Framing.dispatch(b, codec, (f) => Effect.sync(() => seen.push(text(f)))))
      yield* a.writeAll([frame(1), frame(2)])
      yield* settle
      yield* a.abort()
      const exit = yield* Fiber.await(dispatcher)
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error._tag === "TransportError" && error.code, "ECONNRESET")
      assert.deepStrictEqual(seen, ["frame-0001", "frame-0002"])
    }))

  it.scoped("malformed input ends it with the typed framing error", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const small = Framing.lengthPrefixed({ prefixSize: 2, maxFrameSize: 16 })
      const seen: Array<string> = []
      const dispatcher = yield* Effect.fork(Framing.dispatch(b, small, (f) => Effect.sync(() => seen.push(text(f)))))
      yield* a.writeAll([frame(7), Uint8Array.of(0x01, 0x00)])
      const error = yield* Effect.flip(Fiber.join(dispatcher))
      assert.strictEqual(error._tag === "FramingError" && error.reason, "FrameTooLarge")
      assert.deepStrictEqual(seen, ["frame-0007"])
    }))

  it.scoped("a handler failure stops it at once, and stops reading", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const error = yield* Framing.dispatch(b, codec, (f) => text(f) === "frame-0002" ? Effect.fail("bad frame" as const) : Effect.void).pipe(
        Effect.fork,
        Effect.tap(() => a.writeAll([frame(1), frame(2), frame(3)])),
        Effect.flatMap(Fiber.join),
        Effect.flip
      )
      assert.strictEqual(error, "bad frame")
      // Nobody reads b any more: a read of our own gets the next bytes (a second reader would be a defect).
      yield* a.write(utf8("next"))
      const next = yield* b.read
      assert.isFalse(Transport.isEof(next))
      assert.include(text(Transport.concat(next as ReadonlyArray<Uint8Array>)), "next")
    }))

  it.scoped("interrupting it leaves nothing running", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair({ highWaterMark: 64 })
      let handled = 0
      const gate = yield* Effect.makeLatch(false)
      const dispatcher = yield* Effect.fork(
        Framing.dispatch(b, codec, () => Effect.zipRight(gate.await, Effect.sync(() => handled++)), { queueSize: 1 })
      )
      const writer = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 50 }, (_, i) => frame(i)), (f) => a.write(f), { discard: true })
      )
      yield* settle
      assert.isNull(writer.unsafePoll(), "the writer is blocked by the full queue")
      yield* Fiber.interrupt(dispatcher)
      yield* gate.open
      yield* settle
      assert.strictEqual(handled, 0, "the handler was interrupted, not resumed")
      // The reader fiber is gone too: we read b ourselves (a second reader would be a defect) up to the last frame.
      let received = ""
      while (!received.includes("frame-0049")) {
        const chunks = yield* b.read
        if (Transport.isEof(chunks)) break
        received += text(Transport.concat(chunks))
      }
      yield* Fiber.join(writer)
      assert.include(received, "frame-0049")
    }))
})
