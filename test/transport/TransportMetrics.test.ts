/**
 * The socket transports' counters, over real sockets: connections opened and closed on both ends, bytes read and
 * written end to end, and failures by reason and code. Counters are global to the process, so each test reads
 * how much they moved.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as MetricState from "effect/MetricState"
import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import * as Transport from "../../src/transport/Transport.js"
import * as Tls from "../../src/transport/Tls.js"
import * as TransportMetrics from "../../src/transport/TransportMetrics.js"
import * as Unix from "../../src/transport/Unix.js"
import { requirePeer } from "../support/peers.js"
import { makeAuthority, missingOpenssl } from "../support/tls.js"
import { echo } from "./support.js"

const labels = (tags: Record<string, string>) => Object.entries(tags).map(([k, v]) => MetricLabel.make(k, v))

const count = (metric: Metric.Metric.Counter<number>, tags: Record<string, string>) =>
  Effect.map(Metric.value(Metric.taggedWithLabels(metric, labels(tags))), (state) => state.count)

/** Every counter of one transport kind, at once. */
const snapshot = (transport: string) =>
  Effect.all({
    opened: count(TransportMetrics.connectionsOpened, { transport }),
    closed: count(TransportMetrics.connectionsClosed, { transport }),
    read: count(TransportMetrics.bytesRead, { transport }),
    written: count(TransportMetrics.bytesWritten, { transport })
  })

const errors = (tags: { transport: string; reason: string; code?: string }) =>
  count(TransportMetrics.errors, tags)

/** Errors with these tags, whatever their other tags (TLS error codes differ between OpenSSL versions). */
const errorsWhere = (tags: Record<string, string>) =>
  Effect.map(Metric.snapshot, (pairs) =>
    pairs.reduce((sum, pair) => {
      if (pair.metricKey.name !== "transport_errors") return sum
      const has = (k: string, v: string) => pair.metricKey.tags.some((t) => t.key === k && t.value === v)
      if (!Object.entries(tags).every(([k, v]) => has(k, v))) return sum
      return MetricState.isCounterState(pair.metricState) ? sum + Number(pair.metricState.count) : sum
    }, 0))

const hasOpenssl = requirePeer("TLS metrics test", missingOpenssl())

const delta = <A extends Record<string, number>>(before: A, after: A): A =>
  Object.fromEntries(Object.keys(before).map((k) => [k, after[k]! - before[k]!])) as A

/** Waits until the server has no connection left (its side closed too). */
const settled = (server: Server.Server) =>
  Effect.gen(function*() {
    while ((yield* server.connectionCount) > 0) yield* Effect.sleep("5 millis")
  })

const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const port = (probe.address() as Net.AddressInfo).port
    probe.close(() => resume(Effect.succeed(port)))
  })
})

describe("TransportMetrics", () => {
  it.scopedLive("counts connections on both ends and every byte, in batches, end to end", () =>
    Effect.gen(function*() {
      const before = yield* snapshot("tcp")
      const server = yield* Server.make({ listen: Server.tcp({ port: 0 }), handler: echo })
      const address = server.address
      if (address._tag !== "TcpAddress") return yield* Effect.die("tcp expected")
      yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* Tcp.connect({ host: address.host, port: address.port })
        const chunk = new Uint8Array(100_000).fill(3)
        let got = 0
        for (let i = 0; i < 10; i++) {
          // One write of one chunk, one of three: both paths count.
          if (i % 2 === 0) yield* client.write(chunk)
          else yield* client.writeAll([chunk.subarray(0, 10), chunk.subarray(10, 60_000), chunk.subarray(60_000)])
        }
        yield* client.shutdownWrite
        while (true) {
          const result = yield* client.read
          if (Transport.isEof(result)) break
          for (const c of result) got += c.length
        }
        assert.strictEqual(got, 1_000_000)
        yield* client.close()
      }))
      yield* settled(server)
      // Client and server: each side read and wrote the megabyte once.
      assert.deepStrictEqual(delta(before, yield* snapshot("tcp")), {
        opened: 2,
        closed: 2,
        read: 2_000_000,
        written: 2_000_000
      })
    }))

  it.scopedLive("Unix sockets count under their own tag", () =>
    Effect.gen(function*() {
      const before = yield* snapshot("unix")
      const tcpBefore = yield* snapshot("tcp")
      const path = Path.join(Os.tmpdir(), `effect-wire-metrics-${process.pid}.sock`)
      const server = yield* Server.make({ listen: Server.unix(path), handler: echo })
      yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* Unix.connect({ path })
        yield* client.write(new Uint8Array(5))
        yield* client.shutdownWrite
        while (!Transport.isEof(yield* client.read)) {
          // until the echo ends
        }
      }))
      yield* settled(server)
      assert.deepStrictEqual(delta(before, yield* snapshot("unix")), { opened: 2, closed: 2, read: 10, written: 10 })
      assert.deepStrictEqual(delta(tcpBefore, yield* snapshot("tcp")), { opened: 0, closed: 0, read: 0, written: 0 })
    }))

  it.scopedLive("counts failures by reason and code: refused connects, resets, idle timeouts, refused connections", () =>
    Effect.gen(function*() {
      const refusedBefore = yield* errors({ transport: "tcp", reason: "Connect", code: "ECONNREFUSED" })
      const resetBefore = yield* errors({ transport: "tcp", reason: "Read", code: "ECONNRESET" })
      const idleBefore = yield* errors({ transport: "tcp", reason: "IdleTimeout" })
      const maxBefore = yield* errors({ transport: "tcp", reason: "Refused" })
      const closedBefore = yield* errors({ transport: "tcp", reason: "Closed" })

      // A connect to a port nobody listens on.
      const port = yield* freePort
      yield* Effect.flip(Tcp.connect({ host: "127.0.0.1", port }))

      // A peer that resets: the server's side of the connection fails with ECONNRESET.
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: echo,
        maxConnections: 1,
        idleTimeout: Duration.millis(150)
      })
      if (server.address._tag !== "TcpAddress") return yield* Effect.die("tcp expected")
      const address = server.address
      yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* Tcp.connect({ host: address.host, port: address.port })
        yield* client.write(new Uint8Array(3))
        yield* client.read
        yield* client.abort()
        // Operations on the aborted transport fail, but the abort was ours: nothing counts.
        yield* Effect.flip(client.write(new Uint8Array(1)))
      }))
      yield* settled(server)

      // Past maxConnections: the second connection is turned away (Node closes it at once).
      yield* Effect.scoped(Effect.gen(function*() {
        const first = yield* Tcp.connect({ host: address.host, port: address.port })
        yield* first.write(new Uint8Array(1))
        yield* first.read
        const second = yield* Tcp.connect({ host: address.host, port: address.port })
        yield* Effect.either(second.read)
        // The first one, left silent, ends by the server's idle timeout.
        yield* Effect.either(first.read)
      }))
      yield* settled(server)

      assert.strictEqual((yield* errors({ transport: "tcp", reason: "Connect", code: "ECONNREFUSED" })) - refusedBefore, 1)
      assert.strictEqual((yield* errors({ transport: "tcp", reason: "Read", code: "ECONNRESET" })) - resetBefore, 1)
      assert.strictEqual((yield* errors({ transport: "tcp", reason: "IdleTimeout" })) - idleBefore, 1)
      assert.strictEqual((yield* errors({ transport: "tcp", reason: "Refused" })) - maxBefore, 1)
      assert.strictEqual((yield* errors({ transport: "tcp", reason: "Closed" })) - closedBefore, 0)
    }), { timeout: 20_000 })

  it.scopedLive.skipIf(!hasOpenssl)("TLS: a handshake that fails counts on both ends, a good one opens under the tls tag", () =>
    Effect.gen(function*() {
      const authority = makeAuthority()
      const stranger = makeAuthority("someone else")
      const pem = authority.issue("localhost", { names: ["localhost", "127.0.0.1"] })
      const server = yield* Server.make({
        listen: Server.tls({ port: 0, cert: pem.cert, key: Redacted.make(pem.key) }),
        handler: echo
      })
      const address = server.address
      if (address._tag !== "TcpAddress") return yield* Effect.die("tcp expected")
      const failedBefore = yield* errorsWhere({ transport: "tls", reason: "Tls" })
      const before = yield* snapshot("tls")
      // The client does not trust the server's CA: it fails, and the server sees the handshake fail.
      yield* Effect.flip(Tls.connect({ host: "localhost", port: address.port, ca: stranger.cert }))
      yield* Effect.scoped(Effect.gen(function*() {
        const client = yield* Tls.connect({ host: "localhost", port: address.port, ca: authority.cert })
        yield* client.write(new Uint8Array(7))
        yield* client.read
        yield* client.close()
      }))
      yield* settled(server)
      // Node reports the server's side of the failed handshake a moment after the client's.
      while ((yield* errorsWhere({ transport: "tls", reason: "Tls" })) - failedBefore < 2) yield* Effect.sleep("5 millis")
      assert.strictEqual((yield* errorsWhere({ transport: "tls", reason: "Tls" })) - failedBefore, 2)
      assert.deepStrictEqual(delta(before, yield* snapshot("tls")), { opened: 2, closed: 2, read: 14, written: 14 })
    }), { timeout: 20_000 })
})
