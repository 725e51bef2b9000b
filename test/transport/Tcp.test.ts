/**
 * The stream transports (TCP, Unix, TLS) against the same expectations, client and server both ours, over real
 * sockets: echo, large transfers, half-close, reset, graceful close, read backpressure and clean interruption.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Address from "../../src/transport/Address.js"
import { adapterOf, withInlineReader } from "../../src/transport/internal/socket.js"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import * as Tls from "../../src/transport/Tls.js"
import * as Transport from "../../src/transport/Transport.js"
import type { TransportError } from "../../src/transport/TransportError.js"
import * as Unix from "../../src/transport/Unix.js"
import { requirePeer } from "../support/peers.js"
import { makeAuthority, missingOpenssl } from "../support/tls.js"
import { bytes, echo, readText } from "./support.js"

const text = (chunks: Transport.ReadResult) =>
  Transport.isEof(chunks) ? "<eof>" : new TextDecoder().decode(Transport.concat(chunks))

/** Reads until Eof; returns the byte count and SHA-256 of everything read. */
const drain = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    const hash = Crypto.createHash("sha256")
    let total = 0
    while (true) {
      const result = yield* transport.read
      if (Transport.isEof(result)) return { total, digest: hash.digest("hex") }
      for (const chunk of result) {
        hash.update(chunk)
        total += chunk.length
      }
    }
  })

/** Deterministic pseudo-random payload chunks. */
const payload = (totalBytes: number, chunkSize: number) => {
  const chunks: Array<Uint8Array> = []
  const seed = Crypto.createHash("sha256").update("effect-wire").digest()
  for (let offset = 0; offset < totalBytes; offset += chunkSize) {
    const chunk = new Uint8Array(Math.min(chunkSize, totalBytes - offset))
    for (let i = 0; i < chunk.length; i++) chunk[i] = seed[(offset + i) % seed.length]! ^ ((offset + i) >>> 8)
    chunks.push(chunk)
  }
  const hash = Crypto.createHash("sha256")
  for (const chunk of chunks) hash.update(chunk)
  return { chunks, digest: hash.digest("hex") }
}

interface Kind {
  readonly name: string
  readonly listen: () => Server.ListenOptions
  readonly connect: (
    address: Address.Address,
    options?: { readonly readHighWaterMark?: number }
  ) => Effect.Effect<Transport.Transport, TransportError, Scope.Scope>
  /** Whether `abort` makes the peer see ECONNRESET (Unix sockets have no reset: the peer reads Eof). */
  readonly resets: boolean
}

let socketCounter = 0
const socketPath = () => Path.join(Os.tmpdir(), `effect-wire-${process.pid}-${socketCounter++}.sock`)

const tcpKind: Kind = {
  name: "tcp",
  listen: () => Server.tcp({ port: 0 }),
  connect: (address, options) =>
    address._tag === "TcpAddress"
      ? Tcp.connect({ host: address.host, port: address.port, ...options })
      : Effect.die("not tcp"),
  resets: true
}

const unixKind: Kind = {
  name: "unix",
  listen: () => Server.unix(socketPath()),
  connect: (address, options) =>
    address._tag === "UnixAddress" ? Unix.connect({ path: address.path, ...options }) : Effect.die("not unix"),
  resets: false
}

// Skips the TLS runs loudly outside CI, fails under CI=true.
const hasOpenssl = requirePeer("TLS transport tests", missingOpenssl())
const authority = hasOpenssl ? makeAuthority() : undefined
const serverPem = authority?.issue("localhost", { names: ["localhost", "127.0.0.1"] })

const tlsKind: Kind = {
  name: "tls",
  listen: () => Server.tls({ port: 0, cert: serverPem!.cert, key: Redacted.make(serverPem!.key) }),
  connect: (address, options) =>
    address._tag === "TcpAddress"
      ? Tls.connect({ host: address.host, port: address.port, servername: "localhost", ca: authority!.cert, ...options })
      : Effect.die("not tcp"),
  resets: true
}

const kinds = hasOpenssl ? [tcpKind, unixKind, tlsKind] : [tcpKind, unixKind]

const handleTypes = ["TCPSocketWrap", "TCPServerWrap", "PipeWrap", "PipeServerWrap", "Timeout"]
/**
 * Open handles and timers by type, once the event loop has run its close callbacks: Node emits `close` for a
 * server before libuv's own close callback of the listening handle, one loop turn later.
 */
const handleCounts = Effect.async<Record<string, number>>((resume) =>
  void setImmediate(() => setImmediate(() => resume(Effect.sync(countHandles))))
)
const countHandles = () => {
  const counts: Record<string, number> = {}
  for (const type of handleTypes) counts[type] = 0
  for (const resource of process.getActiveResourcesInfo()) {
    if (resource in counts) counts[resource] = counts[resource]! + 1
  }
  return counts
}

for (const kind of kinds) {
  describe(`stream transport: ${kind.name}`, () => {
    const withServer = <E, R>(handler: (transport: Transport.Transport) => Effect.Effect<void, E, R>) =>
      Server.make({ listen: kind.listen(), handler, shutdownTimeout: Duration.millis(500) })

    it.scopedLive("echoes bytes and reports addresses", () =>
      Effect.gen(function*() {
        const server = yield* withServer(echo)
        const client = yield* kind.connect(server.address)
        yield* client.write(bytes("hello"))
        assert.strictEqual(yield* readText(client, 5), "hello")
        yield* client.writeAll([bytes("wo"), bytes("rld")])
        assert.strictEqual(yield* readText(client, 5), "world")
        const info = yield* client.info
        assert.deepStrictEqual(info.remote, server.address)
        assert.strictEqual(info.tls !== undefined, kind.name === "tls")
        if (info.tls !== undefined) {
          assert.isTrue(info.tls.authorized)
          assert.strictEqual(info.tls.peerCertificate?.subject["CN"], "localhost")
        }
      }))

    it.scopedLive("moves 32 MiB both ways intact (SHA-256 end to end)", () =>
      Effect.gen(function*() {
        const server = yield* withServer(echo)
        const client = yield* kind.connect(server.address)
        const { chunks, digest } = payload(32 * 1024 * 1024, 64 * 1024)
        const reader = yield* Effect.fork(drain(client))
        for (const chunk of chunks) yield* client.write(chunk)
        yield* client.shutdownWrite
        const received = yield* Fiber.join(reader)
        assert.strictEqual(received.total, 32 * 1024 * 1024)
        assert.strictEqual(received.digest, digest)
      }), { timeout: 60_000 })

    it.scopedLive("half-closes in both directions", () =>
      Effect.gen(function*() {
        const server = yield* withServer((transport) =>
          Effect.gen(function*() {
            const request = yield* drain(transport)
            // The client's side is shut: we still write, then shut ours.
            yield* transport.write(bytes(`got ${request.total}`))
            yield* transport.shutdownWrite
          })
        )
        const client = yield* kind.connect(server.address)
        yield* client.write(bytes("abc"))
        yield* client.shutdownWrite
        assert.strictEqual(text(yield* client.read), "got 3")
        assert.strictEqual(text(yield* client.read), "<eof>")
        assert.strictEqual((yield* Effect.flip(client.write(bytes("late")))).reason, "Closed")
        yield* client.close()
        assert.isTrue(Exit.isSuccess(yield* Effect.exit(client.closed)))
      }))

    it.scopedLive(kind.resets ? "abort resets the peer (ECONNRESET)" : "abort closes at once (the peer reads Eof)", () =>
      Effect.gen(function*() {
        const outcome = yield* Effect.makeLatch(false)
        let seen: string | undefined
        const server = yield* withServer((transport) =>
          Effect.gen(function*() {
            yield* transport.write(bytes("ready"))
            const result = yield* Effect.either(Effect.forever(transport.read.pipe(
              Effect.flatMap((r) => Transport.isEof(r) ? Effect.fail("eof" as const) : Effect.void)
            )))
            seen = result._tag === "Left"
              ? typeof result.left === "string" ? result.left : result.left.code ?? result.left.reason
              : undefined
            yield* outcome.open
          })
        )
        const client = yield* kind.connect(server.address)
        assert.strictEqual(yield* readText(client, 5), "ready")
        yield* client.abort()
        yield* outcome.await.pipe(Effect.timeout("5 seconds"))
        assert.strictEqual(seen, kind.resets ? "ECONNRESET" : "eof")
        assert.strictEqual((yield* Effect.flip(client.read)).reason, "Closed")
        assert.isTrue(Exit.isSuccess(yield* Effect.exit(client.closed)))
      }))

    it.scopedLive("close delivers every pending write before the FIN", () =>
      Effect.gen(function*() {
        const { chunks, digest } = payload(8 * 1024 * 1024, 256 * 1024)
        const server = yield* withServer((transport) =>
          Effect.gen(function*() {
            // Queue everything at once, then close without waiting for the writes.
            yield* Effect.fork(transport.writeAll(chunks))
            yield* Effect.yieldNow()
            yield* transport.close({ timeout: "20 seconds" })
          })
        )
        const client = yield* kind.connect(server.address)
        const received = yield* drain(client)
        assert.strictEqual(received.total, 8 * 1024 * 1024)
        assert.strictEqual(received.digest, digest)
      }), { timeout: 30_000 })

    it.scopedLive("a reader that stops reading pauses the socket and blocks the writer with bounded memory", () =>
      Effect.gen(function*() {
        let written = 0
        const chunk = new Uint8Array(64 * 1024)
        const server = yield* withServer((transport) =>
          Effect.forever(Effect.tap(transport.write(chunk), () => Effect.sync(() => written += chunk.length)))
        )
        const readHighWaterMark = 128 * 1024
        const client = yield* kind.connect(server.address, { readHighWaterMark })
        // Let the writer fill every buffer on the way: our side paused and the writer stalled.
        const adapter = adapterOf(client)!
        let last = -1
        while (last !== written || !adapter.isPaused) {
          last = written
          yield* Effect.sleep("300 millis")
        }
        assert.isTrue(adapter.isPaused, "socket paused")
        // Our side holds at most the mark, one socket read (64 KiB) and Node's readable buffer.
        assert.isAtMost(adapter.bufferedBytes, readHighWaterMark + 2 * 64 * 1024 + 64 * 1024)
        // The writer is stuck: everything it wrote sits in bounded kernel buffers, not in the process.
        assert.isAtMost(written, 64 * 1024 * 1024)
        const stuck = written
        yield* Effect.sleep("200 millis")
        assert.strictEqual(written, stuck)
        // Reading resumes the flow.
        let read = 0
        while (read < stuck + 1024 * 1024) {
          const result = yield* client.read
          if (Transport.isEof(result)) break
          for (const c of result) read += c.length
        }
        assert.isAbove(written, stuck)
      }), { timeout: 30_000 })

    it.scopedLive("tryWrite hands bytes over in order with writes, and refuses when Node's buffer is full or writing ended", () =>
      Effect.gen(function*() {
        const server = yield* withServer(echo)
        const client = yield* kind.connect(server.address)
        const adapter = adapterOf(client)!
        // Sync hand-overs and Effect writes interleaved in one burst arrive in call order.
        assert.isTrue(adapter.tryWrite(bytes("a")))
        yield* client.write(bytes("b"))
        assert.isTrue(adapter.tryWrite(bytes("c")))
        assert.isTrue(adapter.tryWrite(bytes("d")))
        yield* client.writeAll([bytes("e"), bytes("f")])
        assert.strictEqual(yield* readText(client, 6), "abcdef")
        // Past Node's mark (nothing leaves before the burst ends) it refuses, and nothing of the refused chunk is sent.
        const big = new Uint8Array(adapter.socket.writableHighWaterMark).fill(0x78)
        assert.isTrue(adapter.tryWrite(big))
        assert.isFalse(adapter.canWriteNow)
        assert.isFalse(adapter.tryWrite(bytes("never")))
        assert.strictEqual((yield* readText(client, big.length)).length, big.length)
        assert.isTrue(adapter.tryWrite(bytes("g")))
        assert.strictEqual(yield* readText(client, 1), "g")
        yield* client.shutdownWrite
        assert.isFalse(adapter.tryWrite(bytes("h")))
      }))

    it.scopedLive("an inline reader takes bytes while the read is parked; what it throws kills that read", () =>
      Effect.gen(function*() {
        const server = yield* withServer(echo)
        const client = yield* kind.connect(server.address)
        const taken: Array<string> = []
        const inline = (chunk: Uint8Array) => {
          const text = new TextDecoder().decode(chunk)
          if (text.includes("boom")) throw new Error("inline defect")
          taken.push(text)
          return true
        }
        const reads = yield* Effect.fork(withInlineReader(client, inline, Effect.exit(client.read)))
        yield* Effect.sleep("50 millis")
        yield* client.write(bytes("one"))
        while (taken.length === 0) yield* Effect.sleep("10 millis")
        assert.deepStrictEqual(taken, ["one"])
        yield* client.write(bytes("boom"))
        const exit = yield* Fiber.join(reads)
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), "the parked read dies")
        if (Exit.isFailure(exit)) assert.include(String(Cause.squash(exit.cause)), "inline defect")
      }))

    it.scopedLive("a write blocked on a peer that then aborts fails with the OS error", () =>
      Effect.gen(function*() {
        const peer = yield* Effect.makeLatch(false)
        const server = yield* withServer((transport) => Effect.zipRight(peer.await, transport.abort()))
        const client = yield* kind.connect(server.address)
        const chunk = new Uint8Array(256 * 1024)
        const writer = yield* Effect.fork(Effect.forever(client.write(chunk)))
        yield* Effect.sleep("300 millis")
        yield* peer.open
        const error = yield* Fiber.join(writer).pipe(Effect.flip, Effect.timeout("5 seconds"))
        assert.include(["Write", "Read"], error.reason)
        assert.include(["ECONNRESET", "EPIPE"], error.code)
        assert.strictEqual((yield* Effect.flip(client.closed)).code, error.code)
      }))

    it.scopedLive("an interrupted read loses nothing: the next read, from any fiber, gets the bytes", () =>
      Effect.gen(function*() {
        const server = yield* withServer(echo)
        const client = yield* kind.connect(server.address)
        // A read given up by a timeout, then one interrupted from outside, both parked when they end.
        assert.isTrue((yield* Effect.timeout(client.read, "20 millis").pipe(Effect.option))._tag === "None")
        const parked = yield* Effect.fork(client.read)
        yield* Effect.sleep("20 millis")
        yield* Fiber.interrupt(parked)
        yield* client.write(bytes("after"))
        // Let the echo arrive while nobody reads: the stale readers must not take it.
        yield* Effect.sleep("50 millis")
        const next = yield* Effect.fork(readText(client, 5))
        assert.strictEqual(yield* Fiber.join(next), "after")
        yield* client.write(bytes("again"))
        assert.strictEqual(yield* readText(client, 5), "again")
      }))

    it.scopedLive("a second concurrent reader is a defect", () =>
      Effect.gen(function*() {
        const server = yield* withServer(echo)
        const client = yield* kind.connect(server.address)
        const first = yield* Effect.fork(client.read)
        yield* Effect.sleep("20 millis")
        const second = yield* Effect.exit(client.read)
        assert.isTrue(Exit.isFailure(second) && Exit.causeOption(second).pipe((c) => c._tag === "Some" && c.value._tag === "Die"))
        yield* client.write(bytes("x"))
        assert.strictEqual(text(yield* Fiber.join(first)), "x")
      }))

    it.live("abort right after a half-close or a close releases the socket at once, with nothing left open", () =>
      Effect.gen(function*() {
        const before = yield* handleCounts
        yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* withServer(echo)
          // Our FIN is in flight when the abort comes: Node cannot reset the socket then.
          const halfClosed = yield* kind.connect(server.address)
          yield* halfClosed.shutdownWrite
          yield* halfClosed.abort().pipe(Effect.timeoutFail({ duration: "300 millis", onTimeout: () => "abort hung" }))
          assert.isTrue(Exit.isSuccess(yield* Effect.exit(halfClosed.closed)))
          // A graceful close under way, cut short.
          const closing = yield* kind.connect(server.address)
          yield* closing.write(bytes("bye"))
          const close = yield* Effect.fork(closing.close({ timeout: "1 minute" }))
          yield* Effect.yieldNow()
          yield* closing.abort().pipe(Effect.timeoutFail({ duration: "300 millis", onTimeout: () => "abort hung" }))
          yield* Fiber.join(close).pipe(Effect.timeoutFail({ duration: "300 millis", onTimeout: () => "close hung" }))
        }))
        const after = yield* handleCounts
        assert.deepStrictEqual({ ...after, Timeout: 0 }, { ...before, Timeout: 0 })
      }))

    it.live("interrupting connects, reads and writes leaves no handles or timers behind", () =>
      Effect.gen(function*() {
        const before = yield* handleCounts
        yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* withServer(echo)
          // A read blocked forever, then interrupted.
          const client = yield* kind.connect(server.address)
          const read = yield* Effect.fork(client.read)
          yield* Effect.sleep("20 millis")
          yield* Fiber.interrupt(read)
          // A writer blocked on a peer that does not read, interrupted.
          const stuck = yield* Server.make({
            listen: kind.listen(),
            handler: () => Effect.never,
            shutdownTimeout: Duration.millis(100)
          })
          const other = yield* kind.connect(stuck.address)
          const writer = yield* Effect.fork(Effect.forever(other.write(new Uint8Array(256 * 1024))))
          yield* Effect.sleep("100 millis")
          yield* Fiber.interrupt(writer)
          // A connect interrupted halfway, in its own scope.
          const connecting = yield* Effect.fork(Effect.scoped(kind.connect(server.address)))
          yield* Fiber.interrupt(connecting)
        }))
        const after = yield* handleCounts
        // Timers of the test runner come and go; ours must not add any.
        assert.isAtMost(after["Timeout"]!, before["Timeout"]!)
        assert.deepStrictEqual({ ...after, Timeout: 0 }, { ...before, Timeout: 0 })
      }), { timeout: 20_000 })
  })
}

describe("Tcp.connect", () => {
  it.scopedLive("fails with ECONNREFUSED on a closed port", () =>
    Effect.gen(function*() {
      const port = yield* freePort
      const error = yield* Effect.flip(Tcp.connect({ host: "127.0.0.1", port }))
      assert.strictEqual(error.reason, "Connect")
      assert.strictEqual(error.code, "ECONNREFUSED")
    }))

  it.scopedLive("an idle timeout ends a silent connection: reads and closed fail with IdleTimeout", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({ listen: Server.tcp({ port: 0 }), handler: () => Effect.never, shutdownTimeout: 100 })
      const address = server.address
      if (address._tag !== "TcpAddress") return
      const client = yield* Tcp.connect({ host: address.host, port: address.port, idleTimeout: Duration.millis(200) })
      const started = Date.now()
      const error = yield* Effect.flip(client.read)
      assert.strictEqual(error.reason, "IdleTimeout")
      assert.isAtLeast(Date.now() - started, 150)
      assert.strictEqual((yield* Effect.flip(client.closed)).reason, "IdleTimeout")
      assert.strictEqual((yield* Effect.flip(client.write(bytes("x")))).reason, "IdleTimeout")
    }))

  it.scopedLive("talks to a plain node:net peer", () =>
    Effect.gen(function*() {
      const server = Net.createServer({ allowHalfOpen: true }, (socket) => socket.pipe(socket))
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void server.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
      )
      const port = (server.address() as Net.AddressInfo).port
      const client = yield* Tcp.connect({ host: "127.0.0.1", port })
      yield* client.write(bytes("plain"))
      assert.strictEqual(yield* readText(client, 5), "plain")
      yield* client.shutdownWrite
      assert.strictEqual(text(yield* client.read), "<eof>")
      yield* client.close()
    }))
})

const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const port = (probe.address() as Net.AddressInfo).port
    probe.close(() => resume(Effect.succeed(port)))
  })
})
