/**
 * The PLAIN mechanism (RFC 24): a username and password in clear, checked by a server-side authenticator.
 *
 * PLAIN protects nothing on the wire; use it on trusted networks or under TLS.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Command from "./Command.js"
import type { Mechanism } from "./Mechanism.js"
import * as Metadata from "./Metadata.js"
import { ZmtpError } from "./ZmtpError.js"

/**
 * What a PLAIN server's authenticator sees.
 *
 * @since 0.1.0
 * @category models
 */
export interface Credentials {
  readonly username: string
  readonly password: Redacted.Redacted<string>
  /** The client's address (`host:port`, a path or `memory:name`). */
  readonly address: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  readonly username: string
  readonly password: Redacted.Redacted<string> | string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  /** Allows (`true`) or denies (`false`) a client. */
  readonly authenticate: (credentials: Credentials) => Effect.Effect<boolean>
}

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const expect = (body: Uint8Array, name: string): Either.Either<Uint8Array, ZmtpError> =>
  Either.flatMap(Command.decodeRaw(body), (raw) => {
    if (raw.name === name) return Either.right(raw.data)
    if (raw.name === "ERROR") {
      const reason = raw.data.length > 0 ? decoder.decode(raw.data.subarray(1, 1 + raw.data[0]!)) : ""
      return Either.left(new ZmtpError({ reason: "AuthenticationFailed", code: reason, detail: "refused by the server" }))
    }
    return Either.left(new ZmtpError({ reason: "HandshakeFailed", detail: `expected ${name}, got ${raw.name}` }))
  })

/**
 * The body of a PLAIN `HELLO`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeHello = (username: string, password: string): Uint8Array => {
  const user = encoder.encode(username)
  const pass = encoder.encode(password)
  return Command.encodeRaw("HELLO", Uint8Array.of(user.length), user, Uint8Array.of(pass.length), pass)
}

/**
 * @since 0.1.0
 * @category decoding
 */
export const decodeHello = (data: Uint8Array): Either.Either<{ readonly username: string; readonly password: string }, ZmtpError> => {
  const userLength = data[0]
  if (userLength === undefined || 2 + userLength > data.length) {
    return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "truncated HELLO" }))
  }
  const passLength = data[1 + userLength]!
  if (2 + userLength + passLength !== data.length) {
    return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "HELLO lengths do not add up" }))
  }
  return Either.right({
    username: decoder.decode(data.subarray(1, 1 + userLength)),
    password: decoder.decode(data.subarray(2 + userLength))
  })
}

/**
 * The client side: HELLO, then INITIATE with our metadata after the server's WELCOME.
 *
 * @since 0.1.0
 * @category constructors
 */
export const client = (options: ClientOptions): Mechanism => ({
  name: "PLAIN",
  asServer: false,
  handshake: (io, context) =>
    Effect.gen(function*() {
      const password = typeof options.password === "string" ? options.password : Redacted.value(options.password)
      yield* io.send(encodeHello(options.username, password))
      yield* Effect.flatMap(io.receive, (body) => expect(body, "WELCOME"))
      yield* io.send(Command.encodeRaw("INITIATE", Metadata.encode(context.metadata)))
      const data = yield* Effect.flatMap(io.receive, (body) => expect(body, "READY"))
      const metadata = yield* Metadata.decode(data)
      return { metadata, cipher: undefined, userId: options.username }
    })
})

/**
 * The server side: the authenticator decides on HELLO; a refused client gets `ERROR "400"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const server = (options: ServerOptions): Mechanism => ({
  name: "PLAIN",
  asServer: true,
  handshake: (io, context) =>
    Effect.gen(function*() {
      const hello = yield* Effect.flatMap(io.receive, (body) => Either.flatMap(expect(body, "HELLO"), decodeHello))
      const allowed = yield* options.authenticate({
        username: hello.username,
        password: Redacted.make(hello.password),
        address: context.peerAddress
      })
      if (!allowed) {
        yield* io.send(Command.encode(Command.error("400"))).pipe(Effect.ignore)
        return yield* new ZmtpError({ reason: "AuthenticationFailed", code: "400", detail: `user ${hello.username} refused` })
      }
      yield* io.send(Command.encodeRaw("WELCOME"))
      const data = yield* Effect.flatMap(io.receive, (body) => expect(body, "INITIATE"))
      const metadata = yield* Metadata.decode(data)
      yield* io.send(Command.encode(Command.ready(context.metadata)))
      return { metadata, cipher: undefined, userId: hello.username }
    })
})
