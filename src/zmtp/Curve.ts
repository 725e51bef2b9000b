/**
 * The CURVE mechanism (RFC 25/26, CurveZMQ): X25519 key agreement and XSalsa20-Poly1305 boxes, with libzmq's
 * wire details (72-byte HELLO padding, `MESSAGEC`/`MESSAGES` nonce prefixes, `0x01` MORE / `0x02` COMMAND flags).
 *
 * Short nonces strictly increase per direction and are checked; the server keeps a fresh cookie key per
 * connection and can restrict clients to an allow-list or an authenticator.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import nacl from "tweetnacl"
import * as Command from "./Command.js"
import type { Frame } from "./Frame.js"
import type { Cipher, Mechanism } from "./Mechanism.js"
import * as Metadata from "./Metadata.js"
import * as Z85 from "./Z85.js"
import { ZmtpError } from "./ZmtpError.js"

/**
 * A permanent key pair; keys are 32 bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface KeyPair {
  readonly publicKey: Uint8Array
  readonly secretKey: Redacted.Redacted<Uint8Array>
}

/**
 * A key as 32 bytes or 40 Z85 characters.
 *
 * @since 0.1.0
 * @category models
 */
export type Key = Uint8Array | string

/**
 * @since 0.1.0
 * @category constructors
 */
export const keyPair = (): KeyPair => {
  const pair = nacl.box.keyPair()
  return { publicKey: pair.publicKey, secretKey: Redacted.make(pair.secretKey) }
}

/**
 * The key pair of a secret key.
 *
 * @since 0.1.0
 * @category constructors
 */
export const keyPairFromSecret = (secretKey: Key | Redacted.Redacted<Key>): Either.Either<KeyPair, ZmtpError> =>
  Either.map(toKey(Redacted.isRedacted(secretKey) ? Redacted.value(secretKey) : secretKey), (secret) => ({
    publicKey: nacl.scalarMult.base(secret),
    secretKey: Redacted.make(secret)
  }))

/**
 * Decodes a key given as bytes or Z85 text.
 *
 * @since 0.1.0
 * @category constructors
 */
export const toKey = (key: Key): Either.Either<Uint8Array, ZmtpError> => {
  const bytes = typeof key === "string" ? Z85.decode(key) : Either.right(key)
  return Either.flatMap(bytes, (b) =>
    b.length === 32
      ? Either.right(b)
      : Either.left(new ZmtpError({ reason: "HandshakeFailed", detail: "a CURVE key is 32 bytes (40 Z85 characters)" })))
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** The server's permanent public key. */
  readonly serverKey: Key
  /** Our permanent key pair. Default: a fresh one per socket. */
  readonly keyPair?: KeyPair | undefined
}

/**
 * What a CURVE server's authenticator sees.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientIdentity {
  readonly publicKey: Uint8Array
  /** The public key in Z85. */
  readonly z85: string
  readonly address: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly keyPair: KeyPair
  /** Client public keys allowed in; absent: any key, unless `authenticate` decides. */
  readonly allow?: ReadonlyArray<Key> | undefined
  /** Decides on a client after the allow-list. */
  readonly authenticate?: ((client: ClientIdentity) => Effect.Effect<boolean>) | undefined
}

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0))

const prefixes = {
  hello: ascii("CurveZMQHELLO---"),
  welcome: ascii("WELCOME-"),
  cookie: ascii("COOKIE--"),
  initiate: ascii("CurveZMQINITIATE"),
  vouch: ascii("VOUCH---"),
  ready: ascii("CurveZMQREADY---"),
  messageClient: ascii("CurveZMQMESSAGEC"),
  messageServer: ascii("CurveZMQMESSAGES")
}

/** A 24-byte nonce: prefix + 8-byte BE counter, or prefix + 16 bytes. */
const nonce = (prefix: Uint8Array, suffix: Uint8Array): Uint8Array => {
  const out = new Uint8Array(24)
  out.set(prefix)
  out.set(suffix, prefix.length)
  return out
}

const shortNonce = (counter: number): Uint8Array => {
  const out = new Uint8Array(8)
  const high = Math.floor(counter / 0x100000000)
  out[0] = high >>> 24
  out[1] = (high >>> 16) & 0xff
  out[2] = (high >>> 8) & 0xff
  out[3] = high & 0xff
  out[4] = counter >>> 24
  out[5] = (counter >>> 16) & 0xff
  out[6] = (counter >>> 8) & 0xff
  out[7] = counter & 0xff
  return out
}

const readCounter = (bytes: Uint8Array, offset: number): number =>
  (((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0) *
    0x100000000 +
  (((bytes[offset + 4]! << 24) | (bytes[offset + 5]! << 16) | (bytes[offset + 6]! << 8) | bytes[offset + 7]!) >>> 0)

const failed = (detail: string) => new ZmtpError({ reason: "HandshakeFailed", detail })

const concat = (...parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  let size = 0
  for (const part of parts) size += part.length
  const out = new Uint8Array(size)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

const equal = (a: Uint8Array, b: Uint8Array) => a.length === b.length && nacl.verify(a, b)

/** Reads a command by name, turning ERROR into a typed failure. */
const expect = (body: Uint8Array, name: string): Either.Either<Uint8Array, ZmtpError> =>
  Either.flatMap(Command.decodeRaw(body), (raw) => {
    if (raw.name === name) return Either.right(raw.data)
    if (raw.name === "ERROR") {
      const reason = raw.data.length > 0 ? new TextDecoder().decode(raw.data.subarray(1, 1 + raw.data[0]!)) : ""
      return Either.left(new ZmtpError({ reason: "AuthenticationFailed", code: reason, detail: "refused by the server" }))
    }
    return Either.left(failed(`expected ${name}, got ${raw.name}`))
  })

/**
 * Encrypts frames as MESSAGE commands and checks that the peer's nonces strictly increase.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCipher = (options: {
  readonly sharedKey: Uint8Array
  readonly isServer: boolean
  /** The next short nonce we send. */
  readonly nextNonce: number
  /** The last short nonce the peer used (its READY or INITIATE). */
  readonly peerNonce: number
}): Cipher => {
  const { sharedKey } = options
  const ours = options.isServer ? prefixes.messageServer : prefixes.messageClient
  const theirs = options.isServer ? prefixes.messageClient : prefixes.messageServer
  const name = ascii("\x07MESSAGE")
  let sendNonce = options.nextNonce
  let lastPeerNonce = options.peerNonce
  const sendBuffer = new Uint8Array(24)
  sendBuffer.set(ours)
  const receiveBuffer = new Uint8Array(24)
  receiveBuffer.set(theirs)
  return {
    encrypt: (more, command, body) => {
      const plaintext = new Uint8Array(body.length + 1)
      plaintext[0] = (more ? 0x01 : 0) | (command ? 0x02 : 0)
      plaintext.set(body, 1)
      const counter = shortNonce(sendNonce++)
      sendBuffer.set(counter, 16)
      const box = nacl.box.after(plaintext, sendBuffer, sharedKey)
      const out = new Uint8Array(8 + 8 + box.length)
      out.set(name)
      out.set(counter, 8)
      out.set(box, 16)
      return out
    },
    decrypt: (commandBody): Either.Either<Frame, ZmtpError> => {
      if (commandBody.length < 33 || !equal(commandBody.subarray(0, 8), name)) {
        return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "expected a CURVE MESSAGE" }))
      }
      const counter = readCounter(commandBody, 8)
      if (counter <= lastPeerNonce) {
        return Either.left(failed(`MESSAGE nonce ${counter} does not increase`))
      }
      receiveBuffer.set(commandBody.subarray(8, 16), 16)
      const plaintext = nacl.box.open.after(commandBody.subarray(16), receiveBuffer, sharedKey)
      if (plaintext === null) return Either.left(failed("MESSAGE box does not open"))
      lastPeerNonce = counter
      const flags = plaintext[0]!
      return Either.right({ more: (flags & 0x01) !== 0, command: (flags & 0x02) !== 0, body: plaintext.subarray(1) })
    }
  }
}

/**
 * The client side: HELLO, WELCOME, INITIATE (with a vouch for our transient key), READY.
 *
 * @since 0.1.0
 * @category constructors
 */
export const client = (options: ClientOptions): Mechanism => {
  const permanent = options.keyPair ?? keyPair()
  return {
    name: "CURVE",
    asServer: false,
    handshake: (io, context) =>
      Effect.gen(function*() {
        const serverKey = yield* toKey(options.serverKey)
        const transient = nacl.box.keyPair()
        let counter = 1
        const helloNonce = shortNonce(counter++)
        const helloBox = nacl.box(new Uint8Array(64), nonce(prefixes.hello, helloNonce), serverKey, transient.secretKey)
        yield* io.send(Command.encodeRaw("HELLO", Uint8Array.of(1, 0), new Uint8Array(72), transient.publicKey, helloNonce, helloBox))

        const welcome = yield* Effect.flatMap(io.receive, (body) => expect(body, "WELCOME"))
        if (welcome.length !== 160) return yield* failed("WELCOME must be 168 bytes")
        const welcomePlain = nacl.box.open(welcome.subarray(16), nonce(prefixes.welcome, welcome.subarray(0, 16)), serverKey, transient.secretKey)
        if (welcomePlain === null) return yield* failed("WELCOME box does not open (wrong server key?)")
        const serverTransient = welcomePlain.subarray(0, 32)
        const cookie = welcomePlain.subarray(32, 128)
        const sharedKey = nacl.box.before(serverTransient, transient.secretKey)

        const vouchNonce = nacl.randomBytes(16)
        const vouch = concat(
          vouchNonce,
          nacl.box(concat(transient.publicKey, serverKey), nonce(prefixes.vouch, vouchNonce), serverTransient, Redacted.value(permanent.secretKey))
        )
        const initiateNonce = shortNonce(counter++)
        const initiateBox = nacl.box.after(
          concat(permanent.publicKey, vouch, Metadata.encode(context.metadata)),
          nonce(prefixes.initiate, initiateNonce),
          sharedKey
        )
        yield* io.send(Command.encodeRaw("INITIATE", cookie, initiateNonce, initiateBox))

        const ready = yield* Effect.flatMap(io.receive, (body) => expect(body, "READY"))
        if (ready.length < 8 + 16) return yield* failed("READY is too short")
        const readyCounter = readCounter(ready, 0)
        const readyPlain = nacl.box.open.after(ready.subarray(8), nonce(prefixes.ready, ready.subarray(0, 8)), sharedKey)
        if (readyPlain === null) return yield* failed("READY box does not open")
        const metadata = yield* Metadata.decode(readyPlain)
        return {
          metadata,
          cipher: makeCipher({ sharedKey, isServer: false, nextNonce: counter, peerNonce: readyCounter }),
          userId: undefined
        }
      })
  }
}

/**
 * The server side: a fresh transient key and cookie key per connection; the client's permanent key is checked
 * against the allow-list and the authenticator. A refused client gets `ERROR "400"`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const server = (options: ServerOptions): Mechanism => ({
  name: "CURVE",
  asServer: true,
  handshake: (io, context) =>
    Effect.gen(function*() {
      const secretKey = Redacted.value(options.keyPair.secretKey)
      const publicKey = options.keyPair.publicKey
      const allow = options.allow === undefined ? undefined : yield* Effect.forEach(options.allow, toKey)

      const hello = yield* Effect.flatMap(io.receive, (body) => expect(body, "HELLO"))
      if (hello.length !== 194) return yield* failed("HELLO must be 200 bytes")
      if (hello[0] !== 1 || hello[1] !== 0) return yield* failed(`unsupported CURVE version ${hello[0]}.${hello[1]}`)
      const clientTransient = hello.slice(74, 106)
      const helloCounter = readCounter(hello, 106)
      const helloPlain = nacl.box.open(hello.subarray(114), nonce(prefixes.hello, hello.subarray(106, 114)), clientTransient, secretKey)
      if (helloPlain === null) return yield* failed("HELLO box does not open (client has the wrong server key?)")

      const transient = nacl.box.keyPair()
      const cookieKey = nacl.randomBytes(32)
      const cookieNonce = nacl.randomBytes(16)
      const cookie = concat(
        cookieNonce,
        nacl.secretbox(concat(clientTransient, transient.secretKey), nonce(prefixes.cookie, cookieNonce), cookieKey)
      )
      const welcomeNonce = nacl.randomBytes(16)
      yield* io.send(Command.encodeRaw(
        "WELCOME",
        welcomeNonce,
        nacl.box(concat(transient.publicKey, cookie), nonce(prefixes.welcome, welcomeNonce), clientTransient, secretKey)
      ))

      const initiate = yield* Effect.flatMap(io.receive, (body) => expect(body, "INITIATE"))
      if (initiate.length < 96 + 8 + 16 + 32 + 96) return yield* failed("INITIATE is too short")
      const cookiePlain = nacl.secretbox.open(initiate.subarray(16, 96), nonce(prefixes.cookie, initiate.subarray(0, 16)), cookieKey)
      if (cookiePlain === null || !equal(cookiePlain.subarray(0, 32), clientTransient) || !equal(cookiePlain.subarray(32), transient.secretKey)) {
        return yield* failed("INITIATE cookie is not ours")
      }
      const initiateCounter = readCounter(initiate, 96)
      if (initiateCounter <= helloCounter) return yield* failed("INITIATE nonce does not increase")
      const sharedKey = nacl.box.before(clientTransient, transient.secretKey)
      const initiatePlain = nacl.box.open.after(initiate.subarray(104), nonce(prefixes.initiate, initiate.subarray(96, 104)), sharedKey)
      if (initiatePlain === null) return yield* failed("INITIATE box does not open")
      const clientKey = initiatePlain.slice(0, 32)
      const vouchPlain = nacl.box.open(
        initiatePlain.subarray(48, 128),
        nonce(prefixes.vouch, initiatePlain.subarray(32, 48)),
        clientKey,
        transient.secretKey
      )
      if (vouchPlain === null) return yield* failed("vouch does not open")
      if (!equal(vouchPlain.subarray(0, 32), clientTransient) || !equal(vouchPlain.subarray(32, 64), publicKey)) {
        return yield* failed("vouch does not match the connection's keys")
      }
      const metadata = yield* Metadata.decode(initiatePlain.subarray(128))

      const z85 = Either.getOrElse(Z85.encode(clientKey), () => "")
      let allowed = allow === undefined || allow.some((key) => equal(key, clientKey))
      if (allowed && options.authenticate !== undefined) {
        allowed = yield* options.authenticate({ publicKey: clientKey, z85, address: context.peerAddress })
      }
      if (!allowed) {
        yield* io.send(Command.encode(Command.error("400"))).pipe(Effect.ignore)
        return yield* new ZmtpError({ reason: "AuthenticationFailed", code: "400", detail: `client key ${z85} refused` })
      }

      let counter = 1
      const readyNonce = shortNonce(counter++)
      yield* io.send(Command.encodeRaw(
        "READY",
        readyNonce,
        nacl.box.after(Metadata.encode(context.metadata), nonce(prefixes.ready, readyNonce), sharedKey)
      ))
      return {
        metadata,
        cipher: makeCipher({ sharedKey, isServer: true, nextNonce: counter, peerNonce: initiateCounter }),
        userId: z85
      }
    })
})
