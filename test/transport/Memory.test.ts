import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Memory from "../../src/transport/Memory.js"
import * as Transport from "../../src/transport/Transport.js"

const bytes = (s: string) => new TextEncoder().encode(s)
const text = (chunks: Transport.ReadResult) =>
  Transport.isEof(chunks) ? "<eof>" : new TextDecoder().decode(Transport.concat(chunks))

describe("Memory", () => {
  it.scoped("carries bytes both ways and reads Eof after shutdownWrite", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      yield* a.write(bytes("ping"))
      assert.strictEqual(text(yield* b.read), "ping")
      yield* b.writeAll([bytes("po"), bytes("ng")])
      assert.strictEqual(text(yield* a.read), "pong")
      yield* a.shutdownWrite
      assert.strictEqual(text(yield* b.read), "<eof>")
      // Half-closed: the other direction still works.
      yield* b.write(bytes("after"))
      assert.strictEqual(text(yield* a.read), "after")
    }))

  it.scoped("an interrupted read loses nothing: the next reader, in another fiber, gets the bytes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const parked = yield* Effect.fork(b.read)
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(parked)
      // The stale reader is woken by this write and must leave the bytes where they are.
      yield* a.write(bytes("kept"))
      const next = yield* Effect.fork(b.read)
      assert.strictEqual(text(yield* Fiber.join(next)), "kept")
      yield* a.write(bytes("more"))
      assert.strictEqual(text(yield* b.read), "more")
    }))

  it.scoped("a second concurrent reader is a defect; the first still gets the bytes", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const first = yield* Effect.fork(b.read)
      yield* Effect.yieldNow()
      const second = yield* Effect.exit(b.read)
      assert.isTrue(Exit.isFailure(second) && Exit.causeOption(second).pipe((c) => c._tag === "Some" && c.value._tag === "Die"))
      yield* a.write(bytes("x"))
      assert.strictEqual(text(yield* Fiber.join(first)), "x")
    }))

  it.scoped("a writer waits while the reader does not read: memory stays at the high-water mark", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair({ highWaterMark: 1024 })
      const chunk = new Uint8Array(512)
      let written = 0
      const writer = yield* Effect.fork(Effect.forever(Effect.tap(a.write(chunk), () => Effect.sync(() => written++))))
      yield* Effect.yieldNow({ priority: 1 })
      yield* Effect.sleep(0)
      // 512 + 512 fill the mark, the third write is accepted but waits.
      assert.isAtMost(written, 2)
      const first = yield* b.read
      assert.isFalse(Transport.isEof(first))
      assert.isAtMost(Transport.concat(first as ReadonlyArray<Uint8Array>).length, 1536)
      yield* Fiber.interrupt(writer)
    }))

  it.scoped("a write waiting for room fails when either side aborts, instead of waiting for ever", () =>
    Effect.gen(function*() {
      for (const aborting of ["writer", "reader"] as const) {
        const [a, b] = yield* Memory.pair({ highWaterMark: 1024 })
        const waiting = yield* Effect.fork(a.write(new Uint8Array(4096)))
        yield* Effect.yieldNow({ priority: 1 })
        assert.isNull(waiting.unsafePoll(), "the write should wait for room")
        yield* (aborting === "writer" ? a : b).abort()
        const exit = yield* Fiber.await(waiting).pipe(Effect.timeout("1 second"))
        assert.isTrue(Exit.isFailure(exit), `${aborting} abort: the waiting write must fail`)
      }
      // The same when the scope that owns the pair closes under the waiting writer.
      const scope = yield* Scope.make()
      const [a] = yield* Scope.extend(Memory.pair({ highWaterMark: 1024 }), scope)
      const waiting = yield* Effect.fork(a.write(new Uint8Array(4096)))
      yield* Effect.yieldNow({ priority: 1 })
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiting).pipe(Effect.timeout("1 second"))
      assert.isTrue(Exit.isFailure(exit), "scope closed: the waiting write must fail")
    }))

  it.scoped("abort resets the peer: its reads and writes fail with ECONNRESET / EPIPE and closed fails", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      yield* a.abort()
      const read = yield* Effect.flip(b.read)
      assert.strictEqual(read.code, "ECONNRESET")
      const closed = yield* Effect.exit(b.closed)
      assert.isTrue(Exit.isFailure(closed))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(a.closed)))
      assert.strictEqual((yield* Effect.flip(a.write(bytes("x")))).reason, "Closed")
    }))

  it.scoped("graceful close delivers pending bytes and completes when the peer ends", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      yield* a.write(bytes("last words"))
      const closing = yield* Effect.fork(a.close())
      const received = yield* Transport.toStream(b).pipe(Stream.decodeText(), Stream.mkString)
      assert.strictEqual(received, "last words")
      yield* b.close()
      yield* Fiber.join(closing)
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(a.closed)))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(b.closed)))
    }))

  it.effect("close in a finalizer still honours its deadline when the peer never reads", () =>
    Effect.gen(function*() {
      let peer: Memory.MemoryTransport | undefined
      // Finalizers run uninterruptibly: the deadline must fire there too.
      const closing = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const [a, b] = yield* Memory.pair({ highWaterMark: 16 })
        peer = b
        yield* Effect.fork(a.write(new Uint8Array(64)))
        yield* Effect.addFinalizer(() => a.close({ timeout: "1 second" }))
      })))
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(closing)
      // The deadline passed: `a` aborted, so the peer sees a reset.
      assert.strictEqual((yield* Effect.flip(peer!.read)).code, "ECONNRESET")
    }))
})
