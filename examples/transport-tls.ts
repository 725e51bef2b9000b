/**
 * A TLS server and client with mutual authentication and ALPN, using certificates made on the spot with the
 * `openssl` CLI (the same helper the tests use).
 *
 *   npm run example examples/transport-tls.ts
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { Server, Tls, Transport } from "../src/transport/index.js"
import { makeAuthority } from "../test/support/tls.js"

const authority = makeAuthority("example CA")
const serverIdentity = authority.issue("localhost", { names: ["localhost", "127.0.0.1"] })
const clientIdentity = authority.issue("example client", { client: true })

const program = Effect.gen(function*() {
  const server = yield* Server.make({
    listen: Server.tls({
      port: 0,
      cert: serverIdentity.cert,
      key: Redacted.make(serverIdentity.key),
      ca: authority.cert,
      requestCert: true,
      alpnProtocols: ["greeting/1"]
    }),
    handler: (transport) =>
      Effect.gen(function*() {
        const { tls } = yield* transport.info
        const who = tls?.peerCertificate?.subject["CN"] ?? "stranger"
        yield* transport.write(new TextEncoder().encode(`hello, ${who} (${tls?.protocol}, ${tls?.alpnProtocol})\n`))
      })
  })
  if (server.address._tag !== "TcpAddress") return
  const port = server.address.port

  const reply = yield* Effect.scoped(Effect.gen(function*() {
    const transport = yield* Tls.connect({
      host: "localhost",
      port,
      ca: authority.cert,
      cert: clientIdentity.cert,
      key: Redacted.make(clientIdentity.key),
      alpnProtocols: ["greeting/1"]
    })
    const chunks = yield* transport.read
    yield* transport.close()
    return Transport.isEof(chunks) ? "" : new TextDecoder().decode(Transport.concat(chunks))
  }))
  yield* Console.log(reply.trim())
})

Effect.runPromise(Effect.scoped(program))
