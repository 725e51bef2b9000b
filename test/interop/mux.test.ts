/**
 * muxado v2 against real Go peers built from both Go modules (github.com/inconshreveable/muxado and
 * golang.ngrok.com/muxado/v2), in both directions, over loopback TCP.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Heartbeat from "../../src/mux/Heartbeat.js"
import * as Frame from "../../src/mux/Frame.js"
import * as Session from "../../src/mux/Session.js"
import * as MuxStream from "../../src/mux/Stream.js"
import * as TypedSession from "../../src/mux/TypedSession.js"
import * as Server from "../../src/transport/Server.js"
import { goBinary, goLibs, goServer, spawnGo } from "../mux/goPeer.js"
import { ascii, pattern, sum } from "../mux/support.js"
import { missingFile, requirePeer } from "../support/peers.js"

const available = goLibs.every((lib) =>
  requirePeer(
    `mux interop (${lib})`,
    missingFile(goBinary(lib), "build it: cd test/interop/go && go build -o ../../../.peers/bin/muxado-" + lib + " ./cmd/muxado-" + lib)
  )
)

const readAll = (stream: MuxStream.MuxStream) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    for (;;) {
      const result = yield* stream.read
      if (result === MuxStream.Eof) return Buffer.concat(parts)
      parts.push(...result)
    }
  })

/** Our echo: every accepted stream is copied back, then half-closed. */
const echoHandler = (session: Session.Session) =>
  Effect.forever(
    Effect.flatMap(session.accept, (stream) =>
      Effect.forkScoped(Effect.flatMap(readAll(stream), (bytes) => Effect.zipRight(stream.write(bytes), stream.closeWrite)).pipe(Effect.ignore))
    )
  ).pipe(Effect.ignore)

const tsServer = <E>(handler: (session: Session.Session) => Effect.Effect<void, E, import("effect/Scope").Scope>) =>
  Effect.map(
    Session.serve({
      listen: Server.tcp({ host: "127.0.0.1", port: 0 }),
      handler: (s) => Effect.scoped(handler(s)),
      shutdownTimeout: "200 millis"
    }),
    (server) => (server.address._tag === "TcpAddress" ? server.address.port : 0)
  )

/** The bytes a traced Go peer read (`rx`) or wrote (`tx`), concatenated, as spaced hex. */
const traceOf = (lines: ReadonlyArray<string>, direction: "rx" | "tx") =>
  lines.filter((l) => l.startsWith(`${direction} `)).map((l) => l.slice(3)).join("").replace(/(..)(?!$)/g, "$1 ")

const hexOf = (s: string) => Buffer.from(s).toString("hex").replace(/(..)(?!$)/g, "$1 ")

// §9.1 of the spec, Go client C ↔ Go server S.
const traceC = [
  "00 00 0c 12 00 00 00 03 " + hexOf("hello muxado"),
  "00 00 00 11 00 00 00 03",
  "00 00 04 20 00 00 00 03 00 00 00 0c",
  "00 00 10 30 00 00 00 00 00 00 00 00 00 00 00 00 " + hexOf("no error")
].join(" ")
const traceS = [
  "00 00 04 20 00 00 00 03 00 00 00 0c",
  "00 00 0c 10 00 00 00 03 " + hexOf("hello muxado"),
  "00 00 00 11 00 00 00 03"
].join(" ")

describe.runIf(available).each(goLibs)("muxado interop with Go (%s)", (lib) => {
  it.scopedLive("§9.1 byte for byte on a real connection: what Go reads from our client and from our server", () =>
    Effect.gen(function*() {
      // Our client against a Go server: Go must read exactly the Go client's bytes.
      const { peer } = yield* goServer(lib, "echo", ["-once", "-trace"])
      const port = Number(peer.lines.find((l) => l.startsWith("listening "))!.split(":").pop())
      yield* Effect.scoped(Effect.gen(function*() {
        const session = yield* Session.connect({ host: "127.0.0.1", port })
        const stream = yield* session.open()
        yield* stream.write(ascii("hello muxado"))
        yield* stream.closeWrite
        assert.strictEqual((yield* readAll(stream)).toString(), "hello muxado")
        yield* session.close
      }))
      yield* peer.waitFor(/^end /)
      assert.strictEqual(traceOf(peer.lines, "rx"), traceC)
      assert.isTrue(traceOf(peer.lines, "tx").startsWith(traceS), traceOf(peer.lines, "tx"))
      // A Go client against our server: Go must read exactly the Go server's bytes (then our GOAWAY 15 may or
      // may not reach it, depending on how fast it closes its socket).
      const tsPort = yield* tsServer(echoHandler)
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "close", "-payload", "hello muxado", "-trace", "-addr", `127.0.0.1:${tsPort}`])
      yield* go.waitFor(/^end /)
      assert.isTrue(traceOf(go.lines, "rx").startsWith(traceS), traceOf(go.lines, "rx"))
      // (Go's own bytes differ from §9.1 here only because this Go client calls Close() after CloseWrite(),
      // which sends a second FIN.)
    }), { timeout: 30_000 })


  it.scopedLive("TS client → Go server: echo on 64 concurrent streams with checksums (payloads up to 3× the window)", () =>
    Effect.gen(function*() {
      const { port } = yield* goServer(lib, "echo")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      const results = yield* Effect.forEach(
        Array.from({ length: 64 }, (_, i) => i),
        (i) =>
          Effect.scoped(Effect.gen(function*() {
            const stream = yield* session.open()
            const payload = pattern(1 + ((i * 12_347) % (768 * 1024)), i + 1)
            const writer = yield* Effect.fork(Effect.zipRight(stream.write(payload), stream.closeWrite))
            const echoed = yield* readAll(stream)
            yield* Fiber.join(writer)
            return echoed.length === payload.length && sum(echoed) === sum(payload)
          })),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results.filter((ok) => !ok).length, 0)
      assert.strictEqual((yield* session.stats).streams, 0)
    }), { timeout: 60_000 })

  it.scopedLive("Go client → TS server: echo on 64 concurrent streams with checksums", () =>
    Effect.gen(function*() {
      const port = yield* tsServer(echoHandler)
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "echo", "-addr", `127.0.0.1:${port}`, "-streams", "64", "-bytes", "300000"])
      const line = yield* go.waitFor(/^(ok|FAIL)/, 40_000)
      assert.match(line, /^ok streams=64/)
      assert.strictEqual(yield* go.exited, 0)
    }), { timeout: 60_000 })

  it.scopedLive("half-close: the Go side reads our FIN as EOF and still writes back; a Go FIN ends our reads", () =>
    Effect.gen(function*() {
      const { port } = yield* goServer(lib, "echo")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      const stream = yield* session.open()
      yield* stream.write(ascii("half"))
      yield* stream.closeWrite
      assert.strictEqual((yield* readAll(stream)).toString(), "half")
      const error = yield* Effect.flip(stream.write(ascii("more")))
      assert.strictEqual(error.reason, "StreamClosed")
    }), { timeout: 30_000 })

  it.scopedLive("typed streams both ways: all four type bytes in the SYN frame, exact four-byte accept", () =>
    Effect.gen(function*() {
      const { port } = yield* goServer(lib, "typed")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      const typed = yield* TypedSession.make(session)
      for (const t of [1, 0x01020304, 0x7ffffffe]) {
        const stream = yield* typed.openTyped(t, ascii(`payload-${t}`))
        yield* stream.closeWrite
        const reply = yield* readAll(stream)
        assert.strictEqual(reply.readUInt32BE(0), t)
        assert.strictEqual(reply.subarray(4).toString(), `payload-${t}`)
      }
      // And the other way: a Go client opens typed streams, our typed session replies type + echo.
      const tsPort = yield* tsServer((s) =>
        Effect.gen(function*() {
          const t = yield* TypedSession.make(s)
          yield* Effect.forever(
            Effect.flatMap(t.acceptTyped, (stream) =>
              Effect.forkScoped(Effect.gen(function*() {
                const head = Buffer.alloc(4)
                head.writeUInt32BE(stream.streamType)
                yield* stream.write(head)
                yield* stream.write(yield* readAll(stream))
                yield* stream.closeWrite
              }).pipe(Effect.ignore))
            )
          )
        }).pipe(Effect.ignore)
      )
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "typed", "-addr", `127.0.0.1:${tsPort}`, "-streams", "20", "-bytes", "5000"])
      assert.match(yield* go.waitFor(/^(ok|FAIL)/), /^ok typed=20/)
    }), { timeout: 30_000 })

  it.scopedLive("heartbeat: our requester against Go's responder, and Go's requester against ours", () =>
    Effect.gen(function*() {
      const { port } = yield* goServer(lib, "typed")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      const typed = yield* TypedSession.make(session)
      const heartbeat = yield* Heartbeat.make(typed, { interval: "50 millis", tolerance: "1 second" })
      const events = yield* heartbeat.subscribe
      for (let i = 0; i < 5; i++) {
        const event = yield* Queue.take(events)
        assert.strictEqual(event._tag, "Beat", JSON.stringify(event))
      }
      const tsPort = yield* tsServer((s) => Effect.zipRight(TypedSession.make(s), Effect.never))
      const go = yield* spawnGo(lib, [
        "-role", "client", "-mode", "heartbeat", "-addr", `127.0.0.1:${tsPort}`,
        "-interval", "50ms", "-tolerance", "500ms", "-duration", "800ms"
      ])
      yield* go.waitFor(/^done/)
      const beats = go.lines.filter((l) => l.startsWith("beat "))
      assert.isAtLeast(beats.length, 5, go.lines.join(" | "))
      assert.strictEqual(go.lines.filter((l) => l === "timeout").length, 0)
    }), { timeout: 30_000 })

  it.scopedLive("GOAWAY and close: Go reads ours (Length = 8 + debug) and we read Go's, both directions", () =>
    Effect.gen(function*() {
      // Our close → Go sees GOAWAY 0 "no error".
      const closing = yield* goServer(lib, "echo", ["-once"])
      yield* Effect.scoped(Effect.gen(function*() {
        const session = yield* Session.connect({ host: "127.0.0.1", port: closing.port })
        const stream = yield* session.open()
        yield* stream.write(ascii("x"))
        yield* stream.closeWrite
        yield* readAll(stream)
        yield* session.close
      }))
      assert.match(yield* closing.peer.waitFor(/^end /), /^end local=15 remote=0 debug="no error"$/)
      // Our goAway with a code and debug.
      const custom = yield* goServer(lib, "echo", ["-once"])
      yield* Effect.scoped(Effect.gen(function*() {
        const session = yield* Session.connect({ host: "127.0.0.1", port: custom.port })
        const stream = yield* session.open({ eager: true })
        void stream
        yield* session.goAway(5, "custom debug text")
      }))
      assert.match(yield* custom.peer.waitFor(/^end /), /remote=5 debug="custom debug text"$/)
      // Go's GoAway(2, "bye") after one echo: we record it and the session ends.
      const going = yield* goServer(lib, "goaway", ["-code", "2", "-debug", "bye", "-once"])
      const session = yield* Session.connect({ host: "127.0.0.1", port: going.port })
      const stream = yield* session.open()
      yield* stream.write(ascii("before"))
      yield* stream.closeWrite
      assert.strictEqual((yield* readAll(stream)).toString(), "before")
      const end = yield* session.await
      assert.strictEqual(end.remote?.code, 2)
      assert.strictEqual(end.remote && Frame.debugText(end.remote), "bye")
      assert.strictEqual(end.remote?.lastStreamId, 3)
      // A Go client's Close() → our server session ends with GOAWAY 0 "no error".
      const ended = yield* Queue.unbounded<Session.SessionEnd>()
      const tsPort = yield* tsServer((s) =>
        Effect.zipRight(Effect.fork(echoHandler(s)), Effect.flatMap(s.await, (e) => Queue.offer(ended, e)))
      )
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "close", "-addr", `127.0.0.1:${tsPort}`])
      assert.match(yield* go.waitFor(/^(ok|FAIL)/), /^ok/)
      const goEnd = yield* Queue.take(ended)
      assert.strictEqual(goEnd.remote?.code, 0)
      assert.strictEqual(goEnd.remote && Frame.debugText(goEnd.remote), "no error")
    }), { timeout: 30_000 })

  it.scopedLive("drain: after Go's GoAway (no Close) our stream at `last` is still served, then drainTimeout closes the session", () =>
    Effect.gen(function*() {
      const { peer, port } = yield* goServer(lib, "drain", ["-code", "0", "-debug", "draining", "-once"])
      const session = yield* Session.connect({ host: "127.0.0.1", port, session: { drainTimeout: "1 second" } })
      const stream = yield* session.open()
      yield* stream.write(ascii("first"))
      assert.strictEqual(Buffer.from(yield* stream.readExactly(5)).toString(), "first")
      yield* peer.waitFor(/^goaway 0$/)
      const goAway = yield* Effect.flatten(session.remoteGoAway).pipe(
        Effect.retry(Schedule.spaced("10 millis")),
        Effect.timeout("5 seconds")
      )
      const seenAt = Date.now()
      assert.strictEqual(goAway.lastStreamId, 3)
      assert.strictEqual(Frame.debugText(goAway), "draining")
      // Go goes on serving stream 3, and refuses nothing we do not open.
      yield* stream.write(ascii("after goaway"))
      assert.strictEqual(Buffer.from(yield* stream.readExactly(12)).toString(), "after goaway")
      assert.strictEqual((yield* Effect.flip(session.open())).reason, "RemoteGoneAway")
      const end = yield* session.await
      const waited = Date.now() - seenAt
      assert.isAtLeast(waited, 700)
      assert.isBelow(waited, 3_000)
      assert.strictEqual(end.local.reason, "RemoteGoneAway")
      assert.match(end.local.detail ?? "", /^drain timeout: 1 stream still open/)
      assert.strictEqual((yield* Effect.flip(stream.read)).reason, "RemoteGoneAway")
      // Go read our GOAWAY (the transport closed right behind it, so its over-read does no harm).
      assert.match(yield* peer.waitFor(/^end /), /remote=0 debug="drain timeout"$/)
    }), { timeout: 30_000 })

  it.scopedLive("reset: Go reports our RST code; a Go backlog overflow refuses our streams with RST 9", () =>
    Effect.gen(function*() {
      const { peer, port } = yield* goServer(lib, "echo")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      const stream = yield* session.open()
      yield* stream.write(ascii("to be reset"))
      yield* Effect.sleep("50 millis")
      yield* stream.reset(7)
      assert.match(yield* peer.waitFor(/^stream error/), /code: 7/)
      // A Go server that never accepts: its backlog (128) fills, then it answers RST 9.
      const stalled = yield* goServer(lib, "stall", ["-streams", "0"])
      const busy = yield* Session.connect({ host: "127.0.0.1", port: stalled.port })
      const opened = yield* Effect.forEach(Array.from({ length: 130 }, (_, i) => i), () =>
        Effect.tap(busy.open(), (s) => s.write(ascii("syn"))))
      const refused = yield* Effect.forEach(opened.slice(128), (s) => Effect.flip(s.read))
      for (const error of refused) {
        assert.strictEqual(error.reason, "AcceptQueueFull")
        assert.strictEqual(error.code, 9)
      }
    }), { timeout: 30_000 })

  it.scopedLive("a peer that stops reading: Go stops at exactly one window; our buffers and queues stay bounded", () =>
    Effect.gen(function*() {
      // Go writes to us; nobody reads the stream here.
      const tsStats = yield* Queue.unbounded<Session.Stats>()
      const tsPort = yield* tsServer((s) =>
        Effect.gen(function*() {
          yield* s.accept
          yield* Effect.sleep("600 millis")
          yield* Queue.offer(tsStats, yield* s.stats)
          yield* Effect.never
        })
      )
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "stall", "-addr", `127.0.0.1:${tsPort}`, "-duration", "800ms"])
      const stats = yield* Queue.take(tsStats)
      assert.strictEqual(stats.bufferedBytes, 256 * 1024)
      assert.strictEqual(yield* go.waitFor(/^written /), "written 262144")
      // We write to a Go server that accepts and never reads: our write stops at the window too.
      const { port } = yield* goServer(lib, "stall")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      const stream = yield* session.open()
      const writer = yield* Effect.fork(stream.write(new Uint8Array(1024 * 1024)))
      yield* Effect.sleep("300 millis")
      assert.isNull(writer.unsafePoll())
      const ours = yield* session.stats
      assert.strictEqual(ours.queuedBytes, 0)
      yield* Fiber.interrupt(writer)
    }), { timeout: 30_000 })

  it.scopedLive("a Go writer blocked on our window resumes once we read (WNDINC as the application consumes)", () =>
    Effect.gen(function*() {
      const read = yield* Queue.unbounded<number>()
      const tsPort = yield* tsServer((s) =>
        Effect.gen(function*() {
          const stream = yield* s.accept
          yield* Effect.sleep("300 millis") // Go is blocked at 256 KiB by now
          let total = 0
          for (;;) {
            const result = yield* stream.read
            if (result === MuxStream.Eof) break
            for (const chunk of result) total += chunk.length
            if (total >= 4 * 1024 * 1024) break
          }
          yield* Queue.offer(read, total)
          yield* Effect.never
        }).pipe(Effect.ignore)
      )
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "stall", "-addr", `127.0.0.1:${tsPort}`, "-duration", "1500ms"])
      assert.isAtLeast(yield* Queue.take(read), 4 * 1024 * 1024)
      const written = Number((yield* go.waitFor(/^written /)).split(" ")[1])
      assert.isAtLeast(written, 4 * 1024 * 1024)
    }), { timeout: 30_000 })

  it.scopedLive("window growth: a Go writer uses the credit our fast reader adds beyond 256 KiB, and stops at the grown window", () =>
    Effect.gen(function*() {
      const total = 64 * 1024 * 1024
      const seen = yield* Queue.unbounded<{ readonly buffered: number; readonly read: number }>()
      const tsPort = yield* tsServer((s) =>
        Effect.gen(function*() {
          const stream = yield* s.accept
          let read = 0
          let paused = false
          for (;;) {
            const result = yield* stream.read
            if (result === MuxStream.Eof) break
            for (const chunk of result) read += chunk.length
            if (!paused && read >= 16 * 1024 * 1024) {
              // The window has grown by now; with nobody reading, Go fills it and waits.
              paused = true
              yield* Effect.sleep("300 millis")
              yield* Queue.offer(seen, { buffered: yield* stream.buffered, read })
            }
          }
          yield* Queue.offer(seen, { buffered: 0, read })
          const count = new Uint8Array(8)
          new DataView(count.buffer).setBigUint64(0, BigInt(read))
          yield* stream.write(count)
          yield* stream.closeWrite
          yield* Effect.never
        }).pipe(Effect.ignore)
      )
      const go = yield* spawnGo(lib, [
        "-role", "client", "-mode", "bulk", "-addr", `127.0.0.1:${tsPort}`, "-streams", "1", "-bytes", String(total)
      ])
      const paused = yield* Queue.take(seen)
      assert.isAbove(paused.buffered, 256 * 1024)
      assert.isAtMost(paused.buffered, 1024 * 1024)
      assert.strictEqual((yield* Queue.take(seen)).read, total)
      assert.match(yield* go.waitFor(/^bulk /, 30_000), new RegExp(`^bulk bytes=${total} `))
      assert.strictEqual(yield* go.exited, 0)
    }), { timeout: 60_000 })

  it.scopedLive("10,000 streams opened and closed, both directions", () =>
    Effect.gen(function*() {
      const { port } = yield* goServer(lib, "echo")
      const session = yield* Session.connect({ host: "127.0.0.1", port })
      yield* Effect.forEach(
        Array.from({ length: 10_000 }, (_, i) => i),
        (i) =>
          Effect.scoped(Effect.gen(function*() {
            const stream = yield* session.open()
            const byte = new Uint8Array([i & 0xff])
            yield* stream.write(byte)
            yield* stream.closeWrite
            const back = yield* readAll(stream)
            assert.strictEqual(back[0], i & 0xff)
          })),
        { concurrency: 64, discard: true }
      )
      assert.strictEqual((yield* session.stats).streams, 0)
      const tsPort = yield* tsServer(echoHandler)
      const go = yield* spawnGo(lib, ["-role", "client", "-mode", "echo", "-addr", `127.0.0.1:${tsPort}`, "-streams", "10000", "-bytes", "1", "-concurrency", "64"])
      assert.match(yield* go.waitFor(/^(ok|FAIL)/, 60_000), /^ok streams=10000/)
    }), { timeout: 120_000 })
})
