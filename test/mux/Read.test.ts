import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Session from "../../src/mux/Session.js"
import * as MuxStream from "../../src/mux/Stream.js"
import * as Memory from "../../src/transport/Memory.js"
import * as Server from "../../src/transport/Server.js"
import * as Frame from "../../src/mux/Frame.js"
import { Decoder } from "../../src/mux/internal/decoder.js"
import { ascii, data, pattern, sum, text } from "./support.js"

/** Reads a stream to its end: the byte count and the running hash of every byte in order. */
const drain = (stream: MuxStream.MuxStream) =>
  Effect.gen(function*() {
    let total = 0
    let hash = 0
    for (;;) {
      const result = yield* stream.read
      if (result === MuxStream.Eof) return { total, hash }
      for (const chunk of result) {
        total += chunk.length
        hash = sum(chunk, hash)
      }
    }
  })

/** A stream between two sessions over a memory pair, opened with "a": our end and the peer's. */
const memoryStream = Effect.gen(function*() {
  const [a, b] = yield* Memory.pair()
  const client = yield* Session.make(a, { role: "client" })
  const server = yield* Session.make(b, { role: "server" })
  const stream = yield* client.open()
  yield* stream.write(ascii("a"))
  return { stream, accepted: yield* server.accept }
})

/** A server session on a loopback socket whose accepted streams go to `onStream`, and a client session. */
const overTcp = (onStream: (stream: MuxStream.MuxStream) => Effect.Effect<void>) =>
  Effect.gen(function*() {
    const server = yield* Session.serve({
      listen: Server.tcp({ host: "127.0.0.1", port: 0 }),
      handler: (session) =>
        Effect.forever(Effect.flatMap(session.accept, (stream) => Effect.forkScoped(onStream(stream)))).pipe(
          Effect.ignore
        )
    })
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    return yield* Session.connect({ host: "127.0.0.1", port })
  })

describe("Stream reads", () => {
  it("payloads from Node Buffers are plain Uint8Array views of the received bytes, not copies", () => {
    // Buffers and Uint8Arrays mixed in the read path make its optimised code deoptimise mid-transfer.
    const decoder = new Decoder(true)
    const wire = Buffer.concat([Frame.unsafeEncode(data(3, "hello", { syn: true })), Frame.unsafeEncode(data(3, "world"))])
    decoder.push(wire.subarray(0, 10))
    decoder.push(wire.subarray(10))
    const payloads: Array<Uint8Array> = []
    for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
      assert.isTrue(f._tag === "Data")
      if (f._tag === "Data") payloads.push(f.payload)
    }
    assert.deepStrictEqual(payloads.map((p) => p.constructor), [Uint8Array, Uint8Array, Uint8Array])
    assert.strictEqual(text(payloads), "helloworld")
    for (const payload of payloads) assert.strictEqual(payload.buffer, wire.buffer)
  })

  it.scopedLive("a read interrupted while it waits leaves the stream to the next reader (read and readUpTo)", () =>
    Effect.gen(function*() {
      const { stream, accepted } = yield* memoryStream
      assert.strictEqual(text((yield* accepted.read) as ReadonlyArray<Uint8Array>), "a")
      for (const [word, read] of [["b", accepted.read], ["c", accepted.readUpTo(16)]] as const) {
        const parked = yield* Effect.fork(read)
        yield* Effect.sleep("10 millis")
        yield* Fiber.interrupt(parked)
        // Another fiber reads next: the interrupted one left no reader behind.
        const next = yield* Effect.fork(read)
        yield* Effect.sleep("10 millis")
        yield* stream.write(ascii(word))
        assert.strictEqual(text((yield* Fiber.join(next)) as ReadonlyArray<Uint8Array>), word)
      }
    }))

  it.scopedLive("two readers at once: the second dies, the first still gets the bytes", () =>
    Effect.gen(function*() {
      const { stream, accepted } = yield* memoryStream
      yield* accepted.read
      const first = yield* Effect.fork(accepted.read)
      yield* Effect.sleep("10 millis")
      const second = yield* Effect.exit(accepted.read)
      assert.isTrue(second._tag === "Failure")
      yield* stream.write(ascii("b"))
      assert.strictEqual(text((yield* Fiber.join(first)) as ReadonlyArray<Uint8Array>), "b")
    }))

  it.scopedLive("over TCP, frames split across socket reads at any offset: every byte arrives in order", () =>
    Effect.gen(function*() {
      const results = new Map<number, { total: number; hash: number }>()
      const done = yield* Deferred.make<void>()
      const streams = 4
      const client = yield* overTcp((stream) =>
        Effect.gen(function*() {
          results.set(stream.id, yield* drain(stream))
          yield* stream.closeWrite
          if (results.size === streams) yield* Deferred.succeed(done, undefined)
        }).pipe(Effect.orDie)
      )
      // Odd write sizes (frames of 12,345 B, or cut by the window) put frame boundaries anywhere in a socket read.
      const perStream = 3 * 1024 * 1024
      const expected = new Map<number, { total: number; hash: number }>()
      yield* Effect.forEach(Array.from({ length: streams }, (_, i) => i), (i) =>
        Effect.gen(function*() {
          const stream = yield* client.open()
          const bytes = pattern(perStream, i + 1)
          expected.set(stream.id, { total: perStream, hash: sum(bytes) })
          for (let at = 0; at < perStream; at += 12_345) yield* stream.write(bytes.subarray(at, at + 12_345))
          yield* stream.closeWrite
          assert.strictEqual(yield* stream.read, MuxStream.Eof)
        }), { concurrency: "unbounded", discard: true })
      yield* Deferred.await(done)
      assert.deepStrictEqual([...results.entries()].sort(), [...expected.entries()].sort())
    }), { timeout: 30_000 })

  it.scopedLive("over TCP, a reader interrupted while it waits: the next read gets what arrives", () =>
    Effect.gen(function*() {
      const accepted = yield* Deferred.make<MuxStream.MuxStream>()
      const client = yield* overTcp((stream) => Effect.zipRight(Deferred.succeed(accepted, stream), Effect.never))
      const stream = yield* client.open()
      yield* stream.write(ascii("a"))
      const peer = yield* Deferred.await(accepted)
      assert.strictEqual(text((yield* peer.read) as ReadonlyArray<Uint8Array>), "a")
      const parked = yield* Effect.fork(peer.read)
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(parked)
      const next = yield* Effect.fork(peer.read)
      yield* Effect.sleep("20 millis")
      yield* stream.write(ascii("b"))
      assert.strictEqual(text((yield* Fiber.join(next)) as ReadonlyArray<Uint8Array>), "b")
    }))
})
