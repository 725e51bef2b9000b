/**
 * What the RPC protocols need from a connection, whatever carries it: a transport, a muxado stream, a ZMTP peer.
 */
import type * as Effect from "effect/Effect"
import * as Transport from "../../transport/Transport.js"
import type { TransportError } from "../../transport/TransportError.js"

export interface Connection<E> {
  /** What arrived since the last read (at least one chunk), or `Transport.Eof` when the peer is done. */
  readonly read: Effect.Effect<ReadonlyArray<Uint8Array> | Transport.Eof, E>
  /**
   * Writes one encoded message — or, on a byte stream, the chunks of several. Only the connection's writer fiber
   * calls it, so writes never interleave.
   */
  readonly write: (chunks: ReadonlyArray<Uint8Array>) => Effect.Effect<void, E>
  /** A byte stream (messages may be written together) rather than a message transport (one message per write). */
  readonly stream: boolean
  /** Graceful close within the transport's deadline. */
  readonly close: Effect.Effect<void>
  /** Immediate close. */
  readonly abort: Effect.Effect<void>
  /** For errors and logs. */
  readonly address: string | undefined
}

export const fromTransport = (transport: Transport.Transport, address?: string): Connection<TransportError> => ({
  read: transport.read,
  write: transport.writeAll,
  close: transport.close(),
  abort: transport.abort(),
  address,
  stream: true
})

export const eof: Transport.Eof = Transport.Eof
