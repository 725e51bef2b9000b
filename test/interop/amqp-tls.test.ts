/**
 * `amqps://` against RabbitMQ through a TLS-terminating proxy (the test broker has no TLS listener): RabbitMQ's
 * URI query options load the CA, the client certificate and its key from files, verification is on by default,
 * `server_name_indication` picks the name sent and checked, and a wrong CA or name is refused.
 */
import { afterAll, assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as NodeTls from "node:tls"
import * as Connection from "../../src/amqp/Connection.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"
import { makeAuthority, missingOpenssl } from "../support/tls.js"

const hasPeers = requirePeer("amqp tls: rabbitmq", Rabbit.brokerAvailable()) &&
  requirePeer("amqp tls: openssl", missingOpenssl())

const serverName = "rabbit.effect-wire.test"

/** Certificates on disk, as RabbitMQ's URI options name files: a CA, a broker and a client certificate, another CA. */
const files = (() => {
  if (!hasPeers) return undefined
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-wire-amqps-"))
  const ca = makeAuthority("effect-wire amqps CA")
  const other = makeAuthority("some other CA")
  const server = ca.issue(serverName, { names: [serverName] })
  const client = ca.issue("amqps-client", { client: true })
  const write = (name: string, content: string) => {
    const file = Path.join(dir, name)
    Fs.writeFileSync(file, content)
    return file
  }
  return {
    dir,
    ca: ca.cert,
    server,
    cacertfile: write("ca cert.pem", ca.cert),
    otherCa: write("other-ca.pem", other.cert),
    certfile: write("client.pem", client.cert),
    keyfile: write("client.key", client.key)
  }
})()

afterAll(() => {
  if (files !== undefined) Fs.rmSync(files.dir, { recursive: true, force: true })
})

interface Accepted {
  readonly servername: string | false
  readonly clientCommonName: string | undefined
}

/** A TLS server that asks for a client certificate and pipes each connection to RabbitMQ's 5672. */
const tlsProxy = Effect.acquireRelease(
  Effect.async<{
    readonly port: number
    readonly accepted: Array<Accepted>
    readonly server: NodeTls.Server
    readonly open: Set<Net.Socket>
  }>((resume) => {
    const accepted: Array<Accepted> = []
    const open = new Set<Net.Socket>()
    const server = NodeTls.createServer({
      cert: files!.server.cert,
      key: files!.server.key,
      ca: files!.ca,
      requestCert: true,
      rejectUnauthorized: true
    }, (socket) => {
      const peer = socket.getPeerCertificate()
      // Node sets `servername` on server-side sockets; its typings leave it out.
      const { servername } = socket as NodeTls.TLSSocket & { readonly servername: string | false }
      accepted.push({ servername, clientCommonName: peer.subject?.CN })
      const upstream = Net.connect(Rabbit.port, Rabbit.host)
      open.add(socket)
      const end = () => {
        open.delete(socket)
        socket.destroy()
        upstream.destroy()
      }
      socket.on("error", end).on("close", end)
      upstream.on("error", end).on("close", end)
      socket.pipe(upstream).pipe(socket)
    })
    server.on("tlsClientError", () => {})
    server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ port: (server.address() as Net.AddressInfo).port, accepted, server, open })))
  }),
  ({ open, server }) =>
    Effect.async<void>((resume) => {
      server.close(() => resume(Effect.void))
      // Connections still piping are cut so that close returns.
      for (const socket of open) socket.destroy()
    })
)

const amqps = (port: number, query: Record<string, string>) =>
  `amqps://guest:guest@127.0.0.1:${port}/?` +
  Object.entries(query).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join("&")

describe.skipIf(!hasPeers)("AMQP over TLS (amqps://)", () => {
  it.scopedLive("cacertfile, certfile, keyfile and server_name_indication from the URI: verified, mutual TLS, working", () =>
    Effect.gen(function*() {
      const proxy = yield* tlsProxy
      const connection = yield* Connection.make({
        url: amqps(proxy.port, {
          cacertfile: files!.cacertfile,
          certfile: files!.certfile,
          keyfile: files!.keyfile,
          verify: "verify_peer",
          server_name_indication: serverName
        }),
        connectionName: "amqps"
      })
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.publish("", queue, new TextEncoder().encode("over tls"))
      const got = yield* channel.get(queue, { noAck: true })
      assert.strictEqual(Option.map(got, (d) => d.text).pipe(Option.getOrNull), "over tls")
      assert.deepStrictEqual(proxy.accepted, [{ servername: serverName, clientCommonName: "amqps-client" }])
    }))

  it.scopedLive("a CA that did not sign the broker's certificate is refused; verify_none accepts it", () =>
    Effect.gen(function*() {
      const proxy = yield* tlsProxy
      const query = { cacertfile: files!.otherCa, certfile: files!.certfile, keyfile: files!.keyfile, server_name_indication: serverName }
      const refused = yield* Effect.flip(Connection.make({ url: amqps(proxy.port, query) }))
      assert.strictEqual(refused._tag, "ConnectionFailed")
      if (refused._tag === "ConnectionFailed") {
        assert.strictEqual(refused.reason, "Unreachable")
        const cause = refused.cause as { readonly reason?: string; readonly code?: string } | undefined
        assert.strictEqual(cause?.reason, "Tls")
        assert.include(["SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE"], cause?.code)
      }
      assert.strictEqual(proxy.accepted.length, 0)
      const insecure = yield* Connection.make({ url: amqps(proxy.port, { ...query, verify: "verify_none" }) })
      assert.strictEqual(insecure.tuned.channelMax, 2047)
    }))

  it.scopedLive("a server name the certificate does not carry is refused", () =>
    Effect.gen(function*() {
      const proxy = yield* tlsProxy
      const refused = yield* Effect.flip(Connection.make({
        url: amqps(proxy.port, {
          cacertfile: files!.cacertfile,
          certfile: files!.certfile,
          keyfile: files!.keyfile,
          server_name_indication: "elsewhere.test"
        })
      }))
      assert.strictEqual(refused._tag, "ConnectionFailed")
      if (refused._tag === "ConnectionFailed") {
        assert.strictEqual((refused.cause as { readonly code?: string } | undefined)?.code, "ERR_TLS_CERT_ALTNAME_INVALID")
      }
    }))

  it.scopedLive("without a client certificate the proxy refuses the handshake; a missing file is a UriError", () =>
    Effect.gen(function*() {
      const proxy = yield* tlsProxy
      const noClientCert = yield* Effect.flip(Connection.make({
        url: amqps(proxy.port, { cacertfile: files!.cacertfile, server_name_indication: serverName }),
        connectionTimeout: "5 seconds"
      }))
      assert.include(["ConnectionFailed", "ConnectionLost"], noClientCert._tag)
      const missing = yield* Effect.flip(Connection.make({
        url: amqps(proxy.port, { cacertfile: Path.join(files!.dir, "nope.pem") })
      }))
      assert.strictEqual(missing._tag, "UriError")
      if (missing._tag === "UriError") {
        assert.strictEqual(missing.reason, "File")
        assert.include(missing.detail, "cacertfile=")
      }
    }))
})
