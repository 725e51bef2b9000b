import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Frame from "../../src/mux/Frame.js"
import * as Session from "../../src/mux/Session.js"
import * as MuxStream from "../../src/mux/Stream.js"
import * as Address from "../../src/transport/Address.js"
import * as Memory from "../../src/transport/Memory.js"
import * as Transport from "../../src/transport/Transport.js"
import { ascii, data, pattern, rawPeer, sum, text, toHex } from "./support.js"

const fast = { closeTimeout: "200 millis" } as const

/** Our session on one end of a memory pair, a raw frame peer on the other. */
const withRaw = (options: Session.Options) =>
  Effect.gen(function*() {
    const [a, b] = yield* Memory.pair({ highWaterMark: 1 << 20 })
    const session = yield* Session.make(a, { ...fast, ...options })
    return { session, raw: rawPeer(b), transport: a }
  })

/** Two of our sessions, client and server, on a memory pair. */
const twoSessions = (options?: Partial<Session.Options>) =>
  Effect.gen(function*() {
    const [a, b] = yield* Memory.pair()
    const client = yield* Session.make(a, { ...options, role: "client" })
    const server = yield* Session.make(b, { ...options, role: "server" })
    return { client, server }
  })

const readAll = (stream: MuxStream.MuxStream) =>
  Effect.map(Stream.runCollect(stream.readable), (chunks) => Buffer.concat(Chunk.toArray(chunks)))

describe("Session wire traces (spec §9)", () => {
  it.scopedLive("§9.1 as the server: WNDINC 12, echo, FIN, then GOAWAY 15 on the client's EOF", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, "hello muxado", { syn: true }), data(3, "", { fin: true }))
      const stream = yield* session.accept
      assert.strictEqual(stream.id, 3)
      const got = yield* readAll(stream)
      assert.strictEqual(got.toString(), "hello muxado")
      yield* stream.write(got)
      yield* stream.closeWrite
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 0c")
      assert.strictEqual(yield* raw.nextHex, "00 00 0c 10 00 00 00 03 " + toHex(ascii("hello muxado")))
      assert.strictEqual(yield* raw.nextHex, "00 00 00 11 00 00 00 03")
      yield* raw.send(Frame.goAway(0, 0, "no error"))
      yield* raw.transport.shutdownWrite
      assert.strictEqual(yield* raw.nextHex, "00 00 21 30 00 00 00 00 00 00 00 03 00 00 00 0f " + toHex(ascii("read EOF from remote peer")))
      assert.strictEqual(yield* raw.next, "eof")
      const end = yield* session.await
      assert.strictEqual(end.local.reason, "ConnectionLost")
      assert.strictEqual(end.local.code, 15)
      assert.strictEqual(end.remote?.code, 0)
    }))

  it.scopedLive("§9.1 as the client: lazy SYN on the first write, FIN apart, GOAWAY last=0 \"no error\" on close", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const stream = yield* session.open()
      assert.strictEqual(stream.id, 3)
      yield* stream.write(ascii("hello muxado"))
      yield* stream.closeWrite
      assert.strictEqual(yield* raw.nextHex, "00 00 0c 12 00 00 00 03 " + toHex(ascii("hello muxado")))
      assert.strictEqual(yield* raw.nextHex, "00 00 00 11 00 00 00 03")
      yield* raw.send(Frame.u32Frame(Frame.FrameType.WndInc, 3, 12), data(3, "hello muxado"), data(3, "", { fin: true }))
      assert.strictEqual((yield* readAll(stream)).toString(), "hello muxado")
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 0c")
      yield* Effect.fork(session.close)
      assert.strictEqual(yield* raw.nextHex, "00 00 10 30 00 00 00 00 00 00 00 00 00 00 00 00 " + toHex(ascii("no error")))
      assert.strictEqual(yield* raw.next, "eof")
      yield* raw.transport.shutdownWrite
      const end = yield* session.await
      assert.strictEqual(end.local.reason, "SessionClosed")
    }))

  it.scopedLive("a server's second stream is 4 after 2; a client's 5 after 3; a stream closed unwritten stays invisible", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      const s2 = yield* session.open()
      const s4 = yield* session.open()
      assert.deepStrictEqual([s2.id, s4.id], [2, 4])
      yield* s2.close
      yield* s4.write(ascii("x"))
      assert.strictEqual(yield* raw.nextHex, "00 00 01 12 00 00 00 04 78")
      const eager = yield* session.open({ eager: true })
      assert.strictEqual(yield* raw.nextHex, "00 00 00 12 00 00 00 06")
      yield* eager.closeWrite
      assert.strictEqual(yield* raw.nextHex, "00 00 00 11 00 00 00 06")
    }))

  it.scopedLive("closeWrite before any write sends SYN and FIN in separate frames (never SYN|FIN)", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const stream = yield* session.open()
      yield* stream.closeWrite
      assert.strictEqual(yield* raw.nextHex, "00 00 00 12 00 00 00 03")
      assert.strictEqual(yield* raw.nextHex, "00 00 00 11 00 00 00 03")
    }))
})

describe("Session faults (spec §12)", () => {
  it.scopedLive("unknown frame types are skipped; DATA on an unknown stream draws RST 4; an empty FIN there is ignored", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(
        { _tag: "Unknown", type: 7, flags: 0, streamId: 0, length: 3 },
        data(9, "", { fin: true }),
        data(11, "zz"),
        Frame.u32Frame(Frame.FrameType.WndInc, 13, 5),
        Frame.u32Frame(Frame.FrameType.Rst, 13, 5),
        data(3, "ok", { syn: true })
      )
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 0b 00 00 00 04")
      const stream = yield* session.accept
      assert.strictEqual(text((yield* stream.read) as ReadonlyArray<Uint8Array>), "ok")
      assert.strictEqual((yield* session.stats).streams, 1)
    }))

  it.scopedLive("a SYN with our own parity: GOAWAY 1 with Go's debug text, then the transport closes", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(4, "x", { syn: true }))
      const goAway = yield* raw.next
      assert.strictEqual(goAway !== "eof" && goAway._tag, "GoAway")
      if (goAway !== "eof" && goAway._tag === "GoAway") {
        assert.strictEqual(goAway.code, 1)
        assert.strictEqual(goAway.lastStreamId, 1)
        assert.strictEqual(Frame.debugText(goAway), "initiated stream id has wrong parity for remote endpoint: 0x4")
      }
      assert.strictEqual(yield* raw.next, "eof")
      yield* raw.transport.shutdownWrite
      const end = yield* session.await
      assert.strictEqual(end.local.reason, "ProtocolError")
    }))

  it.scopedLive("malformed frames: RST of length 3 → GOAWAY 8, WNDINC 0 → GOAWAY 1", () =>
    Effect.gen(function*() {
      for (const [bytes, code] of [["00 00 03 00 00 00 00 03 00 00 00", 8], ["00 00 04 20 00 00 00 03 00 00 00 00", 1]] as const) {
        const { raw } = yield* withRaw({ role: "server" })
        yield* raw.send(Uint8Array.from(bytes.split(" ").map((b) => parseInt(b, 16))))
        const frame = yield* raw.next
        assert.isTrue(frame !== "eof" && frame._tag === "GoAway" && frame.code === code)
        yield* raw.transport.shutdownWrite
      }
    }))

  it.scopedLive("receive window: exactly 256 KiB is accepted, one byte more draws RST 3 and fails the stream", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, new Uint8Array(256 * 1024), { syn: true }))
      const stream = yield* session.accept
      assert.strictEqual(yield* stream.buffered, 256 * 1024)
      yield* raw.send(data(3, "!"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 03 00 00 00 03")
      // What was buffered before the overrun can still be read; then the stream fails with FlowControl.
      const first = yield* stream.read
      assert.isTrue(first !== MuxStream.Eof)
      const error = yield* Effect.flip(stream.read)
      assert.strictEqual(error.reason, "FlowControl")
      assert.strictEqual(error.code, 3)
      // Late frames for the reset stream are swallowed, not answered with RST 4.
      yield* raw.send(data(3, "late"), data(5, "y", { syn: true }))
      const next = yield* session.accept
      assert.strictEqual(next.id, 5)
    }))

  it.scopedLive("receiveWindow: the extra credit goes out in one WNDINC after the peer's first frame, then binds", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server", receiveWindow: 1024 * 1024 })
      // The opener may only assume 256 KiB: a first frame of that size is accepted, and 768 KiB more is granted.
      yield* raw.send(data(3, new Uint8Array(256 * 1024), { syn: true }))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 0c 00 00")
      const stream = yield* session.accept
      // Up to the whole receive window unread is accepted; one byte more draws RST 3.
      yield* raw.send(data(3, new Uint8Array(512 * 1024)), data(3, new Uint8Array(256 * 1024)))
      while ((yield* stream.buffered) < 1024 * 1024) yield* Effect.sleep("1 millis")
      yield* raw.send(data(3, "!"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 03 00 00 00 03")
      const error = yield* Effect.flip(Effect.forever(stream.read))
      assert.strictEqual(error.code, 3)
    }))

  it.scopedLive("receiveWindow: a stream we open is granted the extra credit only once the peer has sent on it", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client", receiveWindow: 512 * 1024 })
      const stream = yield* session.open()
      yield* stream.write(new TextEncoder().encode("hi"))
      assert.strictEqual(yield* raw.nextHex, "00 00 02 12 00 00 00 03 68 69")
      yield* raw.send(data(3, "ok"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 04 00 00")
    }))

  it.scopedLive("window increments of several reads in one turn of the event loop leave summed, in one WNDINC", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, "abcdef", { syn: true }))
      const stream = yield* session.accept
      while ((yield* stream.buffered) < 6) yield* Effect.sleep("1 millis")
      // Three reads, with the writer free to run in between (a yield is a microtask, not an I/O turn).
      for (const n of [1, 2, 3]) {
        yield* stream.readUpTo(n)
        yield* Effect.yieldNow()
      }
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 06")
      // A read in a later turn is answered on its own, as Go answers every read.
      yield* raw.send(data(3, "g"))
      yield* stream.readUpTo(1)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 01")
    }))

  it.scopedLive("a held window increment leaves at once, in the same transport write, with a frame queued after it", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, "ping", { syn: true }))
      const stream = yield* session.accept
      const request = yield* stream.readExactly(4)
      yield* stream.write(request)
      const chunks = yield* Effect.orDie(raw.transport.read)
      assert.isTrue(Array.isArray(chunks))
      assert.strictEqual(
        toHex(Buffer.concat(chunks as ReadonlyArray<Uint8Array>)),
        "00 00 04 20 00 00 00 03 00 00 00 04 00 00 04 10 00 00 00 03 " + toHex(ascii("ping"))
      )
    }))

  it.scopedLive("window growth: a reader that drains its window within 20 ms gets it doubled, up to maxReceiveWindow", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server", maxReceiveWindow: 1024 * 1024 })
      const drain = (stream: MuxStream.MuxStream, n: number) =>
        Effect.gen(function*() {
          while ((yield* stream.buffered) < n) yield* Effect.sleep("1 millis")
          yield* stream.readUpTo(n)
        })
      yield* raw.send(data(3, new Uint8Array(256 * 1024), { syn: true }))
      const stream = yield* session.accept
      yield* drain(stream, 256 * 1024)
      // The read's credit and the growth leave summed: 256 KiB + 256 KiB.
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 08 00 00")
      yield* raw.send(data(3, new Uint8Array(512 * 1024)))
      yield* drain(stream, 512 * 1024)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 10 00 00")
      // At the ceiling: only the read's credit.
      yield* raw.send(data(3, new Uint8Array(1024 * 1024)))
      yield* drain(stream, 1024 * 1024)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 10 00 00")
      // The grown window binds: 1 MiB unread is accepted, one byte more draws RST 3.
      yield* raw.send(data(3, new Uint8Array(1024 * 1024)))
      while ((yield* stream.buffered) < 1024 * 1024) yield* Effect.sleep("1 millis")
      yield* raw.send(data(3, "!"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 03 00 00 00 03")
    }), { retry: 2 }) // growth depends on the reader draining a window within 20 ms of wall time

  it.scopedLive("window growth: a reader slower than 20 ms a window keeps Go's 256 KiB and its exact WNDINCs", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, new Uint8Array(256 * 1024), { syn: true }))
      const stream = yield* session.accept
      yield* Effect.sleep("40 millis")
      yield* stream.readUpTo(256 * 1024)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 04 00 00")
      yield* raw.send(data(3, new Uint8Array(256 * 1024)))
      yield* Effect.sleep("40 millis")
      yield* stream.readUpTo(256 * 1024)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 04 00 00")
    }))

  it.scopedLive("window growth: the session's budget (4 × the growth room) caps it; an ended stream gives its share back", () =>
    Effect.gen(function*() {
      // Each stream may grow by 256 KiB, the session by 1 MiB: four streams grow, the fifth waits for a share.
      const { raw, session } = yield* withRaw({ role: "server", maxReceiveWindow: 512 * 1024 })
      const streams: Array<MuxStream.MuxStream> = []
      for (const id of [3, 5, 7, 9, 11]) {
        yield* raw.send(data(id, new Uint8Array(256 * 1024), { syn: true }))
        const stream = yield* session.accept
        streams.push(stream)
        while ((yield* stream.buffered) < 256 * 1024) yield* Effect.sleep("1 millis")
        yield* stream.readUpTo(256 * 1024)
        const grown = id === 11 ? "00 04 00 00" : "00 08 00 00"
        assert.strictEqual(yield* raw.nextHex, `00 00 04 20 00 00 00 ${id.toString(16).padStart(2, "0")} ${grown}`)
      }
      yield* raw.send(data(3, "", { fin: true }))
      yield* streams[0]!.close
      yield* raw.next // stream 3's FIN
      yield* raw.send(data(11, new Uint8Array(256 * 1024)))
      while ((yield* streams[4]!.buffered) < 256 * 1024) yield* Effect.sleep("1 millis")
      yield* streams[4]!.readUpTo(256 * 1024)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 0b 00 08 00 00")
    }), { retry: 2 })

  it.scopedLive("accept backlog: streams beyond it are refused with RST 9 and forgotten", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server", acceptBacklog: 2 })
      yield* raw.send(data(3, "a", { syn: true }), data(5, "b", { syn: true }), data(7, "c", { syn: true }))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 07 00 00 00 09")
      const stats = yield* session.stats
      assert.strictEqual(stats.pendingAccepts, 2)
      assert.strictEqual(stats.streams, 2)
      assert.strictEqual((yield* session.accept).id, 3)
      assert.strictEqual((yield* session.accept).id, 5)
    }))

  it.scopedLive("send window: we stop at 256 KiB unacknowledged and resume on WNDINC; frames ≤ 64 KiB", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const stream = yield* session.open()
      const payload = pattern(300 * 1024, 7)
      const writer = yield* Effect.fork(stream.write(payload))
      let got = 0
      const parts: Array<Uint8Array> = []
      while (got < 256 * 1024) {
        const frame = yield* raw.next
        assert.isTrue(frame !== "eof" && frame._tag === "Data")
        if (frame !== "eof" && frame._tag === "Data") {
          assert.isAtMost(frame.payload.length, 64 * 1024)
          assert.strictEqual(frame.syn, got === 0)
          got += frame.payload.length
          parts.push(frame.payload)
        }
      }
      assert.strictEqual(got, 256 * 1024)
      yield* Effect.sleep("30 millis")
      assert.isNull(writer.unsafePoll())
      yield* raw.send(Frame.u32Frame(Frame.FrameType.WndInc, 3, 100 * 1024))
      while (got < payload.length) {
        const frame = yield* raw.next
        if (frame !== "eof" && frame._tag === "Data") {
          got += frame.payload.length
          parts.push(frame.payload)
        }
      }
      yield* Fiber.join(writer)
      assert.strictEqual(sum(Buffer.concat(parts)), sum(payload))
    }))

  it.scopedLive("fairness: two streams writing at once interleave on the wire, frame by frame, not stream by stream", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const a = yield* session.open({ eager: true })
      const b = yield* session.open({ eager: true })
      yield* raw.next
      yield* raw.next
      yield* raw.send(Frame.u32Frame(Frame.FrameType.WndInc, 3, 0x7fffffff), Frame.u32Frame(Frame.FrameType.WndInc, 5, 0x7fffffff))
      yield* Effect.sleep("10 millis")
      const payload = new Uint8Array(6 * 1024 * 1024)
      const writers = yield* Effect.fork(Effect.all([a.write(payload), b.write(payload)], { concurrency: 2, discard: true }))
      const order: Array<number> = []
      let bytes = 0
      while (bytes < 2 * payload.length) {
        const frame = yield* raw.next
        if (frame !== "eof" && frame._tag === "Data") {
          order.push(frame.streamId)
          bytes += frame.payload.length
        }
      }
      yield* Fiber.join(writers)
      // Whoever starts first gets a head start of about what the queues hold; once both streams have frames
      // queued, the writer alternates between them.
      const steady = order.slice(48, order.length - 48)
      let run = 1
      let longest = 1
      for (let i = 1; i < steady.length; i++) {
        run = steady[i] === steady[i - 1] ? run + 1 : 1
        longest = Math.max(longest, run)
      }
      assert.isAtMost(longest, 4, steady.join(","))
      assert.strictEqual(order.length, (2 * payload.length) / (64 * 1024))
    }))

  it.scopedLive("reset: ours sends RST with the code; the peer's fails reads and writes with StreamReset", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const a = yield* session.open()
      yield* a.write(ascii("x"))
      yield* raw.next
      yield* a.reset(6)
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 03 00 00 00 06")
      const writeError = yield* Effect.flip(a.write(ascii("y")))
      assert.strictEqual(writeError.reason, "StreamReset")
      const b = yield* session.open()
      yield* b.write(ascii("x"))
      yield* raw.next
      yield* raw.send(Frame.u32Frame(Frame.FrameType.Rst, 5, 42))
      const readError = yield* Effect.flip(b.read)
      assert.strictEqual(readError.reason, "StreamReset")
      assert.strictEqual(readError.code, 42)
      assert.isTrue(readError.remote)
      assert.strictEqual((yield* session.stats).streams, 0)
    }))

  it.scopedLive("a GOAWAY from the peer fails our streams above `last` and further opens with RemoteGoneAway", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const s3 = yield* session.open()
      const s5 = yield* session.open()
      yield* s3.write(ascii("a"))
      yield* s5.write(ascii("b"))
      yield* raw.next
      yield* raw.next
      yield* raw.send(Frame.goAway(3, 2, "going"))
      const error = yield* Effect.flip(s5.read)
      assert.strictEqual(error.reason, "RemoteGoneAway")
      assert.strictEqual(error.lastStreamId, 3)
      assert.strictEqual(error.debug, "going")
      const opened = yield* Effect.flip(session.open())
      assert.strictEqual(opened.reason, "RemoteGoneAway")
      // Stream 3 goes on.
      yield* raw.send(data(3, "still here"))
      assert.strictEqual(text((yield* s3.read) as ReadonlyArray<Uint8Array>), "still here")
      assert.strictEqual(Option.map(yield* session.remoteGoAway, (g) => g.code).pipe(Option.getOrNull), 2)
    }))

  it.scoped("after the peer's GOAWAY, streams at or below `last` drain until drainTimeout, then the session closes", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client", drainTimeout: "5 seconds" })
      const s3 = yield* session.open()
      const s5 = yield* session.open()
      yield* s3.write(ascii("a"))
      yield* s5.write(ascii("b"))
      yield* raw.next
      yield* raw.next
      yield* raw.send(Frame.goAway(3, 0, "draining"))
      assert.strictEqual((yield* Effect.flip(s5.read)).reason, "RemoteGoneAway")
      // Stream 3 is still served within the deadline, both ways.
      yield* TestClock.adjust("4 seconds")
      yield* raw.send(data(3, "late"))
      assert.strictEqual(text((yield* s3.read) as ReadonlyArray<Uint8Array>), "late")
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 04")
      yield* s3.write(ascii("reply"))
      assert.strictEqual(yield* raw.nextHex, "00 00 05 10 00 00 00 03 " + toHex(ascii("reply")))
      assert.strictEqual((yield* session.stats).streams, 1)
      // The deadline: GOAWAY 0 "drain timeout", the transport closes, stream 3 fails with the peer's GOAWAY.
      const reading = yield* Effect.fork(Effect.flip(s3.read))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* raw.nextHex, "00 00 15 30 00 00 00 00 00 00 00 00 00 00 00 00 " + toHex(ascii("drain timeout")))
      assert.strictEqual(yield* raw.next, "eof")
      yield* raw.transport.shutdownWrite
      const end = yield* session.await
      assert.strictEqual(end.local.reason, "RemoteGoneAway")
      assert.strictEqual(end.local.code, 0)
      assert.strictEqual(end.local.debug, "draining")
      assert.match(end.local.detail ?? "", /^drain timeout: 1 stream still open 5s after the peer's GOAWAY$/)
      const error = yield* Fiber.join(reading)
      assert.strictEqual(error.reason, "RemoteGoneAway")
      assert.strictEqual(error.streamId, undefined)
      assert.strictEqual((yield* session.stats).streams, 0)
    }))

  it.scoped("a session whose peer sent no GOAWAY never drains; drainTimeout infinity waits for ever", () =>
    Effect.gen(function*() {
      const quiet = yield* withRaw({ role: "client", drainTimeout: "1 second" })
      const patient = yield* withRaw({ role: "client", drainTimeout: Duration.infinity })
      const stream = yield* patient.session.open()
      yield* stream.write(ascii("a"))
      yield* patient.raw.next
      yield* patient.raw.send(Frame.goAway(3, 0, "draining"))
      const quietEnd = yield* Effect.fork(quiet.session.await)
      const patientEnd = yield* Effect.fork(patient.session.await)
      yield* TestClock.adjust("1 minute")
      assert.isTrue(Option.isNone(yield* Fiber.poll(quietEnd)))
      assert.isTrue(Option.isNone(yield* Fiber.poll(patientEnd)))
      yield* patient.raw.send(data(3, "still"))
      assert.strictEqual(text((yield* stream.read) as ReadonlyArray<Uint8Array>), "still")
      assert.isTrue(Option.isSome(yield* patient.session.remoteGoAway))
      // Cut the peers off, so that closing needs no clock.
      for (const { raw, session } of [quiet, patient]) {
        yield* raw.transport.abort()
        assert.strictEqual((yield* session.await).local.reason, "ConnectionLost")
      }
    }))

  it.scopedLive("a peer that never reads: the session dies with WriteTimeout and our memory stays bounded", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair({ highWaterMark: 64 * 1024 })
      const session = yield* Session.make(a, { role: "client", writeTimeout: "300 millis", ...fast })
      void b
      const stream = yield* session.open()
      yield* raw(b).send(Frame.u32Frame(Frame.FrameType.WndInc, 3, 0x7fffffff))
      const writer = yield* Effect.fork(Effect.forever(stream.write(new Uint8Array(64 * 1024))))
      yield* Effect.sleep("100 millis")
      const stats = yield* session.stats
      assert.isAtMost(stats.queuedBytes, 1024 * 1024 + 64 * 1024)
      const exit = yield* Fiber.await(writer)
      assert.isTrue(Exit.isFailure(exit))
      const end = yield* session.await
      assert.strictEqual(end.local.reason, "WriteTimeout")
      assert.strictEqual(end.local.code, 13)
    }))
})

const raw = rawPeer

describe("Stream write deadline", () => {
  it.scoped("streamWriteTimeout fails a write stuck on the window with Timeout; what fitted was sent, the rest never is", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions({ streamWriteTimeout: "2 seconds" })
      const stream = yield* client.open()
      const fiber = yield* Effect.fork(stream.write(new Uint8Array(300 * 1024)))
      const accepted = yield* server.accept
      yield* TestClock.adjust("3 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      if (Exit.isFailure(exit)) {
        const error = Option.getOrThrow(Cause.failureOption(exit.cause))
        assert.strictEqual(error.reason, "Timeout")
      }
      // Reading frees the window; no further byte of the timed-out write arrives.
      let total = 0
      while (total < 256 * 1024) {
        const r = yield* accepted.read
        if (r !== MuxStream.Eof) for (const c of r) total += c.length
      }
      yield* stream.write(ascii("next"))
      const next = yield* accepted.read
      assert.strictEqual(text(next as ReadonlyArray<Uint8Array>), "next")
      assert.strictEqual(total, 256 * 1024)
    }))
})

describe("Session config", () => {
  it.scoped("layerConfig reads role, closeTimeout and drainTimeout from Config; the drain deadline applies", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair({ highWaterMark: 1 << 20 })
      const raw = rawPeer(b)
      const provider = ConfigProvider.fromMap(
        new Map([["role", "client"], ["closeTimeout", "200 millis"], ["drainTimeout", "2 seconds"]])
      )
      const context = yield* Layer.build(
        Layer.provide(Session.layerConfig(Session.config), Layer.succeed(Transport.CurrentTransport, a))
      ).pipe(Effect.withConfigProvider(provider))
      const session = Context.get(context, Session.MuxSession)
      assert.strictEqual(session.role, "client")
      const stream = yield* session.open()
      yield* stream.write(ascii("x"))
      assert.strictEqual(yield* raw.nextHex, "00 00 01 12 00 00 00 03 78")
      yield* raw.send(Frame.goAway(3, 0, "bye"))
      const ended = yield* Effect.fork(session.await)
      yield* TestClock.adjust("1999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(ended)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* raw.nextHex, "00 00 15 30 00 00 00 00 00 00 00 00 00 00 00 00 " + toHex(ascii("drain timeout")))
      yield* raw.transport.shutdownWrite
      assert.strictEqual((yield* Fiber.join(ended)).local.reason, "RemoteGoneAway")
    }))
})

describe("Stream write order", () => {
  it.scopedLive("a small write behind a write waiting for window goes out after all of it, never in between", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "client" })
      const stream = yield* session.open()
      const big = pattern(300 * 1024, 9)
      const first = yield* Effect.fork(stream.write(big))
      // The big write has used the whole window (256 KiB) and waits; the small one must queue behind it.
      let seen = 0
      while (seen < 256 * 1024) {
        const frame = yield* raw.next
        if (frame !== "eof" && frame._tag === "Data") seen += frame.payload.length
      }
      const second = yield* Effect.fork(stream.write(ascii("tail")))
      yield* Effect.sleep("20 millis")
      assert.strictEqual((yield* session.stats).queuedBytes, 0)
      yield* raw.send({ _tag: "WndInc", streamId: 3, increment: 256 * 1024 })
      const rest: Array<Uint8Array> = []
      while (seen < big.length + 4) {
        const frame = yield* raw.next
        if (frame !== "eof" && frame._tag === "Data") {
          rest.push(frame.payload)
          seen += frame.payload.length
        }
      }
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      const tail = Buffer.concat(rest)
      assert.strictEqual(sum(tail.subarray(0, tail.length - 4)), sum(big.subarray(256 * 1024)))
      assert.strictEqual(tail.subarray(tail.length - 4).toString(), "tail")
    }))
})

describe("Stream as a Transport", () => {
  it.scoped("a muxado session runs inside one stream of another (toTransport), and `closed` reports the end", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions()
      const outerClient = yield* client.open({ eager: true })
      const outerServer = yield* server.accept
      const info = { local: Address.memory("inner-a"), remote: Address.memory("inner-b"), tls: undefined }
      const innerClient = yield* Session.make(MuxStream.toTransport(outerClient, info), { role: "client" })
      const innerServer = yield* Session.make(MuxStream.toTransport(outerServer, info), { role: "server" })
      yield* Effect.forkScoped(Effect.scoped(Effect.gen(function*() {
        const stream = yield* innerServer.accept
        yield* stream.write(yield* readAll(stream))
        yield* stream.closeWrite
      })).pipe(Effect.orDie))
      const stream = yield* innerClient.open()
      const payload = pattern(300 * 1024, 9)
      yield* Effect.fork(Effect.zipRight(stream.write(payload), stream.closeWrite))
      const echoed = yield* readAll(stream)
      assert.strictEqual(sum(echoed), sum(payload))
      yield* Effect.fork(innerClient.close)
      yield* innerServer.await
      yield* outerClient.closed
    }))
})

describe("Session faults, more", () => {
  it.scopedLive("a duplicate SYN for a live stream kills the session with GOAWAY 1 (as ngrok ≥ #7 does)", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, "a", { syn: true }), data(3, "b", { syn: true }))
      const frame = yield* raw.next
      assert.isTrue(frame !== "eof" && frame._tag === "GoAway" && frame.code === 1 && frame.lastStreamId === 3)
      yield* raw.transport.shutdownWrite
      assert.strictEqual((yield* session.await).local.reason, "ProtocolError")
    }))

  it.scopedLive("DATA after the peer's FIN draws RST 4; the stream's data before it is intact", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, "done", { syn: true, fin: true }), data(3, "late"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 00 00 00 00 03 00 00 00 04")
      const stream = yield* session.accept
      assert.strictEqual(text((yield* stream.read) as ReadonlyArray<Uint8Array>), "done")
      assert.strictEqual(yield* stream.read, MuxStream.Eof)
      // SYN|FIN means only that the peer half-closed: we can still answer.
      yield* stream.write(ascii("reply"))
      assert.strictEqual(yield* raw.nextHex, "00 00 04 20 00 00 00 03 00 00 00 04")
      assert.strictEqual(yield* raw.nextHex, "00 00 05 10 00 00 00 03 " + toHex(ascii("reply")))
    }))

  it.scopedLive("a truncated frame then EOF ends the session with ConnectionLost 15 and fails open streams", () =>
    Effect.gen(function*() {
      const { raw, session } = yield* withRaw({ role: "server" })
      yield* raw.send(data(3, "a", { syn: true }), Uint8Array.from([0, 0, 9, 0x10, 0, 0, 0, 3, 1, 2]))
      const stream = yield* session.accept
      yield* raw.transport.shutdownWrite
      const end = yield* session.await
      assert.strictEqual(end.local.reason, "ConnectionLost")
      assert.strictEqual(end.local.code, 15)
      assert.match(end.local.detail ?? "", /mid-frame/)
      yield* stream.read
      assert.strictEqual((yield* Effect.flip(stream.read)).reason, "ConnectionLost")
    }))

  it.scoped("metrics count streams, bytes, frames and session ends", () =>
    Effect.gen(function*() {
      const before = yield* Metric.value(Session.metrics.streamsOpened)
      const framesBefore = yield* Metric.value(Session.metrics.framesReceived)
      const { client, server } = yield* twoSessions()
      const stream = yield* client.open()
      yield* stream.write(ascii("counted"))
      const accepted = yield* server.accept
      yield* accepted.read
      assert.strictEqual((yield* Metric.value(Session.metrics.streamsOpened)).count - before.count, 1)
      assert.isAtLeast((yield* Metric.value(Session.metrics.framesReceived)).count - framesBefore.count, 1)
    }))
})

describe("Session between two of ours", () => {
  it.scoped("echo on 64 concurrent streams with checksums, both directions half-closed", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions()
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.flatMap(server.accept, (stream) =>
            Effect.forkScoped(stream.readable.pipe(Stream.run(stream.writable), Effect.orDie))
          )
        )
      )
      const results = yield* Effect.forEach(
        Array.from({ length: 64 }, (_, i) => i),
        (i) =>
          Effect.scoped(Effect.gen(function*() {
            const stream = yield* client.open()
            const payload = pattern(1000 + i * 7919, i + 1)
            yield* Effect.fork(Effect.zipRight(stream.write(payload), stream.closeWrite))
            const echoed = yield* readAll(stream)
            return [sum(payload), sum(echoed), echoed.length === payload.length] as const
          })),
        { concurrency: "unbounded" }
      )
      for (const [sent, got, sameLength] of results) {
        assert.strictEqual(got, sent)
        assert.isTrue(sameLength)
      }
      const stats = yield* client.stats
      assert.strictEqual(stats.streams, 0)
    }))

  it.scoped("a slow consumer on one stream does not stall the others (the reader never waits)", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions()
      const slow = yield* client.open()
      const fast = yield* client.open()
      yield* Effect.fork(slow.write(new Uint8Array(600 * 1024)))
      yield* fast.write(ascii("ping"))
      yield* fast.closeWrite
      const one = yield* server.accept
      const two = yield* server.accept
      const [first, second] = one.id === 3 ? [one, two] : [two, one]
      assert.deepStrictEqual([first.id, second.id], [3, 5])
      // Nobody reads stream 3: its buffer fills to the window and stops there.
      assert.strictEqual((yield* readAll(second)).toString(), "ping")
      const stats = yield* server.stats
      assert.isAtMost(stats.bufferedBytes, 256 * 1024)
      const total = yield* readAllCount(first, 600 * 1024)
      assert.strictEqual(total, 600 * 1024)
    }))

  it.scoped("10,000 streams opened, used and closed leave an empty table", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions()
      yield* Effect.forkScoped(
        Effect.forever(
          Effect.flatMap(server.accept, (stream) =>
            Effect.forkScoped(Effect.scoped(Effect.zipRight(stream.readExactly(1), stream.closeWrite)).pipe(Effect.orDie))
          )
        )
      )
      yield* Effect.forEach(
        Array.from({ length: 10_000 }, (_, i) => i),
        () =>
          Effect.scoped(Effect.gen(function*() {
            const stream = yield* client.open()
            yield* stream.write(ascii("x"))
            yield* stream.closeWrite
            const rest = yield* stream.read
            assert.strictEqual(rest, MuxStream.Eof)
          })),
        { concurrency: 64, discard: true }
      )
      assert.strictEqual((yield* client.stats).streams, 0)
      assert.strictEqual((yield* server.stats).streams, 0)
    }), { timeout: 60_000 })

  it.scopedLive("interrupting a scope mid-transfer closes the session: GOAWAY, transport closed, streams failed", () =>
    Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const server = yield* Session.make(b, { role: "server" })
      const scope = yield* Scope.make()
      const fiber = yield* Effect.forkDaemon(
        Effect.gen(function*() {
          const client = yield* Session.make(a, { role: "client" })
          const stream = yield* client.open()
          yield* Effect.forever(stream.write(new Uint8Array(32 * 1024)))
        }).pipe(Scope.extend(scope))
      )
      const accepted = yield* server.accept
      yield* accepted.readUpTo(1024)
      yield* Fiber.interrupt(fiber)
      yield* Scope.close(scope, Exit.void)
      yield* a.closed.pipe(Effect.ignore)
      const end = yield* server.await
      assert.strictEqual(end.remote?.code, 0)
      assert.strictEqual(end.local.reason, "ConnectionLost")
      // The stream's scope ended normally, so it was closed with FIN: the reader gets what was sent, then EOF.
      const total = yield* readAllCount(accepted, Number.POSITIVE_INFINITY)
      assert.isAtLeast(total, 32 * 1024)
      assert.isAtMost(total, 256 * 1024)
      assert.strictEqual(yield* accepted.read, MuxStream.Eof)
    }))

  it.scopedLive("a stream whose scope fails is reset with 6 (StreamCancelled), not closed with FIN", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions()
      const accepting = yield* Effect.fork(server.accept)
      yield* Effect.scoped(Effect.gen(function*() {
        const stream = yield* client.open()
        yield* stream.write(ascii("partial"))
        const accepted = yield* Fiber.join(accepting)
        assert.strictEqual(text((yield* accepted.read) as ReadonlyArray<Uint8Array>), "partial")
        return yield* Effect.fail("boom")
      })).pipe(Effect.ignore)
      const accepted = yield* Fiber.join(accepting)
      const error = yield* Effect.flip(accepted.read)
      assert.strictEqual(error.reason, "StreamReset")
      assert.strictEqual(error.code, 6)
      assert.isTrue(error.remote)
    }))

  it.scoped("stream write deadlines work with TestClock: a write blocked on window times out cleanly", () =>
    Effect.gen(function*() {
      const { client, server } = yield* twoSessions()
      const stream = yield* client.open()
      const fiber = yield* Effect.fork(
        stream.write(new Uint8Array(300 * 1024)).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => "timeout" as const }))
      )
      const accepted = yield* server.accept
      yield* TestClock.adjust("6 seconds")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      // Only what fitted in the window was sent.
      yield* Effect.yieldNow()
      assert.strictEqual(yield* accepted.buffered, 256 * 1024)
    }))
})

const readAllCount = (stream: MuxStream.MuxStream, max: number) =>
  Effect.gen(function*() {
    let total = 0
    while (total < max) {
      const result = yield* stream.read
      if (result === MuxStream.Eof) break
      for (const chunk of result) total += chunk.length
    }
    return total
  })
