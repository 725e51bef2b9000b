/**
 * The transport port: a scoped duplex byte pipe with pulled reads.
 *
 * Every protocol of effect-wire (AMQP, muxado, ZMTP, eMQP) runs over a `Transport`, whatever carries the bytes:
 * TCP, Unix sockets, TLS or an in-memory pair.
 *
 * - `read` is pulled: while nobody reads, the peer is paused and memory stays bounded.
 * - `write` completes when the bytes are handed over (to the OS, or to the peer's buffer for memory pairs), and
 *   suspends while the outbound buffer is above its high-water mark.
 * - `shutdownWrite` half-closes; the peer's `read` then returns `Eof` while its writes still reach us.
 * - `close` is graceful with a deadline, `abort` is immediate. Closing the owning `Scope` aborts whatever is
 *   still open.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Stream from "effect/Stream"
import type { Address } from "./Address.js"
import type { TransportError } from "./TransportError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/transport/Transport")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The end of the inbound byte stream: the peer shut down its write side.
 *
 * @since 0.1.0
 * @category models
 */
export const Eof: unique symbol = Symbol.for("effect-wire/transport/Eof")

/**
 * @since 0.1.0
 * @category models
 */
export type Eof = typeof Eof

/**
 * @since 0.1.0
 * @category guards
 */
export const isEof = (u: unknown): u is Eof => u === Eof

/**
 * What one `read` returns: every chunk received since the last read (never empty), or `Eof`.
 *
 * @since 0.1.0
 * @category models
 */
export type ReadResult = readonly [Uint8Array, ...Array<Uint8Array>] | Eof

/**
 * TLS details of a connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsInfo {
  /** `TLSv1.3`, `TLSv1.2`, … */
  readonly protocol: string | undefined
  readonly cipher: string | undefined
  /** The protocol chosen by ALPN, if any. */
  readonly alpnProtocol: string | undefined
  /** The server name sent (client) or received (server) by SNI. */
  readonly servername: string | undefined
  /** Whether the peer's certificate was verified against the trusted CAs. */
  readonly authorized: boolean
  readonly authorizationError: string | undefined
  readonly peerCertificate: PeerCertificate | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PeerCertificate {
  readonly subject: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly issuer: Readonly<Record<string, string | ReadonlyArray<string>>>
  readonly subjectAltName: string | undefined
  readonly validFrom: string
  readonly validTo: string
  readonly fingerprint256: string
  readonly raw: Uint8Array
}

/**
 * Addresses and TLS details of a connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionInfo {
  readonly local: Address
  readonly remote: Address
  readonly tls: TlsInfo | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface CloseOptions {
  /** How long to wait for pending writes to drain and the peer to finish before aborting. Default: 5 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A connected duplex byte pipe.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transport {
  readonly [TypeId]: TypeId
  /** Pulls what has arrived since the last read, waiting for at least one chunk, or `Eof`. One reader at a time. */
  readonly read: Effect.Effect<ReadResult, TransportError>
  /** Writes one chunk; completes when it is handed over, suspends while the outbound buffer is full. */
  readonly write: (chunk: Uint8Array) => Effect.Effect<void, TransportError>
  /** Writes several chunks as one operation (one syscall where the platform allows). */
  readonly writeAll: (chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void, TransportError>
  /** Half-closes: no more writes, the peer reads `Eof`, reading goes on. */
  readonly shutdownWrite: Effect.Effect<void, TransportError>
  /** Graceful close: flush, half-close, wait for the peer within the deadline, then release. Never fails. */
  readonly close: (options?: CloseOptions) => Effect.Effect<void>
  /**
   * Immediate close: pending writes are dropped and a TCP peer sees a reset. Exception: while our FIN is being
   * sent (just after `shutdownWrite` or `close`; under TLS, any time after them) a socket cannot be reset, and the
   * peer sees the FIN, then the close. Never fails.
   */
  readonly abort: (cause?: unknown) => Effect.Effect<void>
  /** Completes when the transport is fully closed, with the error that closed it if it was not a clean close. */
  readonly closed: Effect.Effect<void, TransportError>
  readonly info: Effect.Effect<ConnectionInfo>
}

/**
 * The transport of the current connection, for programs written against "some connection".
 *
 * @since 0.1.0
 * @category tags
 */
export class CurrentTransport extends Context.Tag("effect-wire/transport/CurrentTransport")<
  CurrentTransport,
  Transport
>() {}

/**
 * @since 0.1.0
 * @category guards
 */
export const isTransport = (u: unknown): u is Transport => Predicate.hasProperty(u, TypeId)

/**
 * The inbound bytes as a `Stream` that ends at `Eof`. Pulling drives the transport's reads, so a slow consumer
 * pauses the peer.
 *
 * @since 0.1.0
 * @category streams
 */
export const toStream = (transport: Transport): Stream.Stream<Uint8Array, TransportError> =>
  Stream.repeatEffectChunkOption(
    Effect.flatMap(
      Effect.mapError(transport.read, Option.some),
      (result): Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<TransportError>> =>
        isEof(result) ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(result))
    )
  )

/**
 * @since 0.1.0
 * @category utils
 */
export const concat = (chunks: ReadonlyArray<Uint8Array>, size?: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const total = size ?? chunks.reduce((n, c) => n + c.length, 0)
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}
