/**
 * One muxado stream: a bidirectional byte stream inside a session, with its own 256 KiB flow-control window.
 *
 * Reads take what has arrived (and return credit to the peer as they do); writes are split into frames that
 * never exceed the peer's window, and wait for credit when it is used up. `closeWrite` half-closes (FIN),
 * `close` closes both directions, `reset` aborts with a code.
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Sink from "effect/Sink"
import * as Stream from "effect/Stream"
import * as Transport from "../transport/Transport.js"
import { TransportError } from "../transport/TransportError.js"
import { type StreamCore, StreamEof } from "./internal/stream.js"
import { ErrorCode, MuxError } from "./MuxError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/mux/Stream")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * The end of a stream's inbound bytes: the peer half-closed (FIN) and everything before it was read.
 *
 * @since 0.1.0
 * @category models
 */
export const Eof: typeof StreamEof = StreamEof

/**
 * @since 0.1.0
 * @category models
 */
export type Eof = typeof StreamEof

/**
 * @since 0.1.0
 * @category guards
 */
export const isEof = (u: unknown): u is Eof => u === Eof

/**
 * @since 0.1.0
 * @category models
 */
export interface MuxStream {
  readonly [TypeId]: TypeId
  /** The stream ID: odd for streams a client opened, even for a server's. */
  readonly id: number
  /** Whether this side opened the stream. */
  readonly local: boolean
  /** Everything buffered (one chunk per DATA frame, in order), waiting for at least one byte; or `Eof`. */
  readonly read: Effect.Effect<ReadonlyArray<Uint8Array> | Eof, MuxError>
  /** At most `max` bytes (at least one), or `Eof`. */
  readonly readUpTo: (max: number) => Effect.Effect<ReadonlyArray<Uint8Array> | Eof, MuxError>
  /** Exactly `n` bytes; the stream ending first fails with `StreamClosed`. */
  readonly readExactly: (n: number) => Effect.Effect<Uint8Array, MuxError>
  /** The inbound bytes until FIN. Pulling is what returns credit to the peer, so a slow consumer slows the peer. */
  readonly readable: Stream.Stream<Uint8Array, MuxError>
  /**
   * Sends bytes: completes when every frame is queued for the session's writer. Waits while the peer's window
   * is used up; interrupting the wait leaves no frame of the unsent rest queued.
   */
  readonly write: (bytes: Uint8Array) => Effect.Effect<void, MuxError>
  /** Writes every chunk of a `Stream`, then half-closes. */
  readonly writable: Sink.Sink<void, Uint8Array, never, MuxError>
  /** Sends an empty SYN now, so the peer can accept the stream before this side writes anything. */
  readonly openEagerly: Effect.Effect<void, MuxError>
  /** Half-close: the peer reads EOF after what was written; reading goes on. */
  readonly closeWrite: Effect.Effect<void, MuxError>
  /** Closes both directions (FIN if needed, unread data dropped). Never fails. */
  readonly close: Effect.Effect<void>
  /** Aborts the stream with an RST carrying `code` (default 7, StreamReset). Never fails. */
  readonly reset: (code?: number) => Effect.Effect<void>
  /** Bytes received and not yet read. */
  readonly buffered: Effect.Effect<number>
  /** Completes when both directions are closed; fails with the error that ended the stream otherwise. */
  readonly closed: Effect.Effect<void, MuxError>
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isMuxStream = (u: unknown): u is MuxStream => Predicate.hasProperty(u, TypeId)

const concat = (chunks: ReadonlyArray<Uint8Array>, size: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * Wraps a session's stream state; sessions call it, applications get streams from `open` and `accept`.
 *
 * @since 0.1.0
 * @category internal
 */
export const fromCore = (core: StreamCore): MuxStream => {
  const readUpTo = (max: number) => core.read(max)
  const read = core.read(Number.POSITIVE_INFINITY)
  const readExactly = (n: number): Effect.Effect<Uint8Array, MuxError> =>
    Effect.suspend(() => {
      const ready = core.takeExactlyNow(n)
      if (ready !== undefined) return Effect.succeed(concat(ready, n))
      // Fresh per run: the returned effect may be repeated.
      const parts: Array<Uint8Array> = []
      const loop = (got: number): Effect.Effect<Uint8Array, MuxError> =>
        got >= n
          ? Effect.succeed(concat(parts, n))
          : Effect.flatMap(core.read(n - got), (result) => {
            if (result === StreamEof) {
              return Effect.fail(
                new MuxError({
                  reason: "StreamClosed",
                  code: ErrorCode.StreamClosed,
                  streamId: core.id,
                  remote: true,
                  detail: `stream ended after ${got} of ${n} bytes`
                })
              )
            }
            let size = got
            for (const chunk of result) {
              parts.push(chunk)
              size += chunk.length
            }
            return loop(size)
          })
      return loop(0)
    })
  const readable = Stream.repeatEffectChunkOption(
    Effect.flatMap(
      Effect.mapError(read, Option.some),
      (result): Effect.Effect<Chunk.Chunk<Uint8Array>, Option.Option<MuxError>> =>
        result === StreamEof ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(result))
    )
  )
  const write = (bytes: Uint8Array) => core.write(bytes)
  const writable = Sink.forEach(write).pipe(Sink.zipRight(Sink.fromEffect(core.closeWrite)))
  return {
    [TypeId]: TypeId,
    id: core.id,
    local: core.local,
    read,
    readUpTo,
    readExactly,
    readable,
    write,
    writable,
    openEagerly: core.openEagerly,
    closeWrite: core.closeWrite,
    close: core.close,
    reset: (code = ErrorCode.StreamReset) => core.reset(code),
    buffered: Effect.sync(() => core.buffered),
    closed: Deferred.await(core.ended)
  }
}

const transportError = (error: MuxError, reason: "Read" | "Write" | "Closed"): TransportError =>
  new TransportError({ reason, code: error.reason, detail: error.message, cause: error })

/**
 * A stream as a `Transport`, so any protocol of this library (or any code written against the transport port)
 * can run over one muxado stream: `shutdownWrite` is FIN, `close` closes both directions, `abort` resets with 6
 * (StreamCancelled). Mux errors surface as `TransportError`s whose `code` is the `MuxError` reason.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toTransport = (stream: MuxStream, info: Transport.ConnectionInfo): Transport.Transport => {
  const writeAll = (chunks: ReadonlyArray<Uint8Array>) =>
    Effect.mapError(
      Effect.forEach(chunks, stream.write, { discard: true }),
      (error) => transportError(error, "Write")
    )
  return {
    [Transport.TypeId]: Transport.TypeId,
    read: Effect.mapBoth(stream.read, {
      onFailure: (error) => transportError(error, "Read"),
      onSuccess: (result): Transport.ReadResult =>
        result === Eof ? Transport.Eof : (result as readonly [Uint8Array, ...Array<Uint8Array>])
    }),
    write: (chunk) => writeAll([chunk]),
    writeAll,
    shutdownWrite: Effect.mapError(stream.closeWrite, (error) => transportError(error, "Write")),
    close: () => stream.close,
    abort: () => stream.reset(ErrorCode.StreamCancelled),
    closed: Effect.mapError(stream.closed, (error) => transportError(error, "Closed")),
    info: Effect.succeed(info)
  }
}
