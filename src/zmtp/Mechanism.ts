/**
 * The security mechanism port: NULL, PLAIN and CURVE implement it.
 *
 * A mechanism runs its handshake over a `HandshakeIO` (command bodies in and out) right after the greetings, and
 * may return a `Cipher` that wraps every later frame (CURVE).
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type { Frame } from "./Frame.js"
import type { Metadata } from "./Metadata.js"
import type { ZmtpError } from "./ZmtpError.js"

/**
 * Command bodies in and out during a handshake.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandshakeIO {
  /** Sends one command (its body: length-prefixed name and data). */
  readonly send: (body: Uint8Array) => Effect.Effect<void, ZmtpError>
  /** The next command body from the peer; a message frame during the handshake is an error. */
  readonly receive: Effect.Effect<Uint8Array, ZmtpError>
}

/**
 * What a mechanism knows about the connection it secures.
 *
 * @since 0.1.0
 * @category models
 */
export interface HandshakeContext {
  /** Our properties (`Socket-Type`, `Identity`, …) to send in READY / INITIATE. */
  readonly metadata: Metadata
  /** The peer's address (`host:port`, a path or `memory:name`), for authenticators. */
  readonly peerAddress: string
}

/**
 * Encrypts and decrypts frames after a handshake (CURVE `MESSAGE` commands).
 *
 * @since 0.1.0
 * @category models
 */
export interface Cipher {
  /** The body of the `MESSAGE` command that carries one frame. */
  readonly encrypt: (more: boolean, command: boolean, body: Uint8Array) => Uint8Array
  /** The frame inside a `MESSAGE` command body. */
  readonly decrypt: (commandBody: Uint8Array) => Either.Either<Frame, ZmtpError>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HandshakeResult {
  /** The peer's properties. */
  readonly metadata: Metadata
  /** Set by mechanisms that encrypt traffic. */
  readonly cipher: Cipher | undefined
  /** Who the peer authenticated as (PLAIN username, CURVE public key in Z85), when known. */
  readonly userId: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Mechanism {
  /** The name in the greeting: `NULL`, `PLAIN`, `CURVE`. */
  readonly name: string
  /** Whether this side plays the server role (announced in the greeting; roles are configured, not negotiated). */
  readonly asServer: boolean
  readonly handshake: (io: HandshakeIO, context: HandshakeContext) => Effect.Effect<HandshakeResult, ZmtpError>
}
