/**
 * TLS specifics with certificates made for the test run: verification on by default, SNI, ALPN, client
 * certificates, STARTTLS and handshake timeouts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Net from "node:net"
import type * as Address from "../../src/transport/Address.js"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import * as Tls from "../../src/transport/Tls.js"
import * as Transport from "../../src/transport/Transport.js"
import { requirePeer } from "../support/peers.js"
import { makeAuthority, missingOpenssl } from "../support/tls.js"
import { bytes, echo, readText } from "./support.js"

/** TCP handles open once the event loop has run its close callbacks. */
const tcpHandles = Effect.async<number>((resume) =>
  void setImmediate(() =>
    setImmediate(() =>
      resume(Effect.sync(() => process.getActiveResourcesInfo().filter((r) => r === "TCPSocketWrap").length))
    )
  )
)

const port = (address: Address.Address) => address._tag === "TcpAddress" ? address.port : -1

// Skips loudly outside CI, fails under CI=true.
const missing = requirePeer("Tls tests", missingOpenssl()) ? undefined : "openssl"

describe.skipIf(missing !== undefined)("Tls", () => {
  const ca = missing === undefined ? makeAuthority() : undefined!
  const otherCa = missing === undefined ? makeAuthority("another CA") : undefined!
  const localhost = missing === undefined ? ca.issue("localhost", { names: ["localhost", "127.0.0.1"] }) : undefined!
  const bTest = missing === undefined ? ca.issue("b.test", { names: ["b.test"] }) : undefined!
  const client = missing === undefined ? ca.issue("client one", { client: true }) : undefined!
  const strangerClient = missing === undefined ? otherCa.issue("stranger", { client: true }) : undefined!

  const tlsServer = <E, R>(
    handler: (transport: Transport.Transport) => Effect.Effect<void, E, R>,
    options?: Partial<Omit<Server.TlsListen, "_tag">>
  ) =>
    Server.make({
      listen: Server.tls({ port: 0, cert: localhost.cert, key: Redacted.make(localhost.key), ...options }),
      handler,
      shutdownTimeout: Duration.millis(500)
    })

  it.scopedLive("verifies the server by default and reports the session", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer(echo)
      const transport = yield* Tls.connect({ host: "localhost", port: port(server.address), ca: ca.cert })
      yield* transport.write(bytes("secret"))
      assert.strictEqual(yield* readText(transport, 6), "secret")
      const { tls } = yield* transport.info
      assert.isDefined(tls)
      assert.isTrue(tls!.authorized)
      assert.match(tls!.protocol ?? "", /^TLSv1\.[23]$/)
      assert.isString(tls!.cipher)
      assert.strictEqual(tls!.peerCertificate?.subject["CN"], "localhost")
      assert.strictEqual(tls!.peerCertificate?.issuer["CN"], "effect-wire test CA")
    }))

  it.scopedLive("refuses a server certificate from an unknown CA with reason Tls", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer(echo)
      const before = yield* tcpHandles
      const error = yield* Effect.flip(Tls.connect({ host: "localhost", port: port(server.address), ca: otherCa.cert }))
      assert.strictEqual(error.reason, "Tls")
      assert.include(["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY"], error.code)
      // Node's bundled roots do not know our CA either.
      const defaults = yield* Effect.flip(Tls.connect({ host: "localhost", port: port(server.address) }))
      assert.strictEqual(defaults.reason, "Tls")
      // Failed handshakes leave no socket open, on either side.
      yield* Effect.sleep("50 millis")
      assert.strictEqual(yield* tcpHandles, before)
    }))

  it.scopedLive("refuses a certificate for another name", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer(echo)
      const error = yield* Effect.flip(
        Tls.connect({ host: "127.0.0.1", port: port(server.address), servername: "b.test", ca: ca.cert })
      )
      assert.strictEqual(error.reason, "Tls")
      assert.strictEqual(error.code, "ERR_TLS_CERT_ALTNAME_INVALID")
    }))

  it.scopedLive("SNI picks the certificate by server name", () =>
    Effect.gen(function*() {
      const server = yield* tlsServer(echo, { sni: { "b.test": { cert: bTest.cert, key: Redacted.make(bTest.key) } } })
      const b = yield* Tls.connect({ host: "127.0.0.1", port: port(server.address), servername: "b.test", ca: ca.cert })
      assert.strictEqual((yield* b.info).tls?.peerCertificate?.subject["CN"], "b.test")
      assert.strictEqual((yield* b.info).tls?.servername, "b.test")
      const fallback = yield* Tls.connect({ host: "localhost", port: port(server.address), ca: ca.cert })
      assert.strictEqual((yield* fallback.info).tls?.peerCertificate?.subject["CN"], "localhost")
    }))

  it.scopedLive("ALPN: both ends see the negotiated protocol", () =>
    Effect.gen(function*() {
      const seen = yield* Queue.unbounded<string | undefined>()
      const server = yield* tlsServer(
        (transport) => Effect.flatMap(transport.info, (info) => Queue.offer(seen, info.tls?.alpnProtocol)),
        { alpnProtocols: ["amqp", "h2"] }
      )
      const transport = yield* Tls.connect({
        host: "localhost",
        port: port(server.address),
        ca: ca.cert,
        alpnProtocols: ["h2", "http/1.1"]
      })
      assert.strictEqual((yield* transport.info).tls?.alpnProtocol, "h2")
      assert.strictEqual(yield* Queue.take(seen), "h2")
    }))

  it.scopedLive("client certificates: verified ones are accepted and visible, others refused", () =>
    Effect.gen(function*() {
      const peers = yield* Queue.unbounded<string>()
      const server = yield* tlsServer(
        (transport) =>
          Effect.gen(function*() {
            const { tls } = yield* transport.info
            yield* Queue.offer(peers, `${tls?.authorized} ${tls?.peerCertificate?.subject["CN"]}`)
            yield* echo(transport)
          }),
        { requestCert: true, ca: ca.cert }
      )
      const events = yield* server.subscribe
      const good = yield* Tls.connect({
        host: "localhost",
        port: port(server.address),
        ca: ca.cert,
        cert: client.cert,
        key: Redacted.make(client.key)
      })
      yield* good.write(bytes("hi"))
      assert.strictEqual(yield* readText(good, 2), "hi")
      assert.strictEqual(yield* Queue.take(peers), "true client one")

      // TLS 1.3 finishes the client's handshake before the server has checked the certificate: the refusal
      // shows as a failed read (or handshake) on the client, and as a `Refused` event on the server.
      const attempt = (options: Partial<Tls.ConnectOptions>) =>
        Effect.scoped(Effect.gen(function*() {
          const transport = yield* Tls.connect({ host: "localhost", port: port(server.address), ca: ca.cert, ...options })
          yield* transport.write(bytes("x"))
          return yield* transport.read
        })).pipe(Effect.either)
      const stranger = yield* attempt({ cert: strangerClient.cert, key: Redacted.make(strangerClient.key) })
      const anonymous = yield* attempt({})
      // Never an echo: a TLS alert (reason Tls), a reset, or the end of the stream.
      for (const outcome of [stranger, anonymous]) {
        assert.isTrue(outcome._tag === "Left" || Transport.isEof(outcome.right), "refused")
      }
      if (stranger._tag === "Left") assert.include(["Tls", "Read"], stranger.left.reason)
      const refused: Array<Server.ServerEvent> = []
      while (refused.length < 2) {
        const event = yield* Queue.take(events)
        if (event._tag === "Refused") refused.push(event)
      }
      assert.deepStrictEqual(refused.map((e) => e._tag === "Refused" ? e.reason : ""), ["Tls", "Tls"])
      assert.strictEqual(Chunk.size(yield* Queue.takeAll(peers)), 0)
    }))

  it.scopedLive("STARTTLS: a plain TCP connection upgraded in place on both ends", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: (plain) =>
          Effect.gen(function*() {
            assert.strictEqual(yield* readText(plain, 9), "STARTTLS\n")
            yield* plain.write(bytes("GO\n"))
            const secured = yield* Tls.upgrade(plain, {
              role: "server",
              cert: localhost.cert,
              key: Redacted.make(localhost.key)
            })
            yield* echo(secured)
          }),
        shutdownTimeout: Duration.millis(500)
      })
      const plain = yield* Tcp.connect({ host: "127.0.0.1", port: port(server.address) })
      yield* plain.write(bytes("STARTTLS\n"))
      assert.strictEqual(yield* readText(plain, 3), "GO\n")
      const secured = yield* Tls.upgrade(plain, { role: "client", host: "localhost", ca: ca.cert })
      yield* secured.write(bytes("encrypted"))
      assert.strictEqual(yield* readText(secured, 9), "encrypted")
      assert.isTrue((yield* secured.info).tls?.authorized)
      // The plain transport was handed over.
      assert.strictEqual((yield* Effect.flip(plain.write(bytes("x")))).reason, "Closed")
    }))

  it.scopedLive("a server that never answers the handshake: ConnectTimeout, nothing left open", () =>
    Effect.gen(function*() {
      const silent = Net.createServer(() => {})
      const sockets = new Set<Net.Socket>()
      // Reads and ignores the ClientHello, so that it sees our FIN.
      silent.on("connection", (s) => {
        sockets.add(s)
        s.on("error", () => {}).resume()
      })
      yield* Effect.acquireRelease(
        Effect.async<void>((resume) => void silent.listen(0, "127.0.0.1", () => resume(Effect.void))),
        () =>
          Effect.async<void>((resume) => {
            for (const s of sockets) s.destroy()
            silent.close(() => resume(Effect.void))
          })
      )
      const error = yield* Effect.flip(Effect.scoped(Tls.connect({
        host: "localhost",
        port: (silent.address() as Net.AddressInfo).port,
        ca: ca.cert,
        connectTimeout: Duration.millis(300)
      })))
      assert.strictEqual(error.reason, "ConnectTimeout")
      // Our side of the timed-out connection is gone; only the silent server's own socket remains.
      assert.strictEqual(sockets.size, 1)
      const ours = [...sockets][0]!
      yield* Effect.sleep("50 millis")
      assert.isTrue(ours.readableEnded || ours.destroyed, "the server saw our side close")
    }))
})
