/**
 * The one error family of the muxado module.
 *
 * Every way a session or a stream can end is a `MuxError` with a `reason`; the muxado wire code (a u32, as it
 * travels in RST and GOAWAY frames) is always kept in `code`, including codes this library has no name for.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

/**
 * The muxado v2 error codes, as they appear in RST and GOAWAY frames.
 *
 * @since 0.1.0
 * @category codes
 */
export const ErrorCode = {
  NoError: 0,
  ProtocolError: 1,
  InternalError: 2,
  FlowControlError: 3,
  StreamClosed: 4,
  StreamRefused: 5,
  StreamCancelled: 6,
  StreamReset: 7,
  FrameSizeError: 8,
  AcceptQueueFull: 9,
  EnhanceYourCalm: 10,
  RemoteGoneAway: 11,
  StreamsExhausted: 12,
  WriteTimeout: 13,
  SessionClosed: 14,
  PeerEOF: 15,
  ErrorUnknown: 0xff
} as const

/**
 * The name of a wire code, or `undefined` for a code muxado does not define.
 *
 * @since 0.1.0
 * @category codes
 */
export const codeName = (code: number): keyof typeof ErrorCode | undefined => {
  for (const name in ErrorCode) {
    if (ErrorCode[name as keyof typeof ErrorCode] === code) return name as keyof typeof ErrorCode
  }
  return undefined
}

/**
 * Why a muxado operation failed.
 *
 * - `ProtocolError` / `FrameSizeError`: malformed input from the peer (the session dies with GOAWAY 1 / 8).
 * - `FlowControl`: the peer overran a stream's receive window (the stream is reset with code 3).
 * - `StreamReset`: the stream was reset, by the peer (`remote: true`) or locally; `code` is the RST code.
 * - `StreamRefused` / `AcceptQueueFull`: the peer refused the stream (RST 5 / RST 9).
 * - `StreamClosed`: the operation needs a direction of the stream that is already closed.
 * - `RemoteGoneAway`: the peer sent GOAWAY; `lastStreamId`, `code` and `debug` are the frame's.
 * - `SessionClosed`: the session was closed locally.
 * - `ConnectionLost`: the transport failed or the peer closed it (`code` 15 for EOF, 0xFF for I/O errors).
 * - `WriteTimeout`: the transport did not take our bytes within the connection write timeout.
 * - `Timeout`: an operation with a deadline (typed stream header, write) did not complete in time.
 * - `StreamsExhausted`: no stream ID is left on this session.
 * - `InternalError`: the control path overflowed or an invariant broke.
 *
 * @since 0.1.0
 * @category models
 */
export type MuxErrorReason =
  | "ProtocolError"
  | "FrameSizeError"
  | "FlowControl"
  | "StreamReset"
  | "StreamRefused"
  | "AcceptQueueFull"
  | "StreamClosed"
  | "RemoteGoneAway"
  | "SessionClosed"
  | "ConnectionLost"
  | "WriteTimeout"
  | "Timeout"
  | "StreamsExhausted"
  | "InternalError"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/mux/MuxError")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category errors
 */
export class MuxError extends Data.TaggedError("MuxError")<{
  readonly reason: MuxErrorReason
  /** The muxado wire code (u32) that goes with this error. */
  readonly code: number
  /** The stream concerned, if any. */
  readonly streamId?: number | undefined
  /** Whether the peer caused it (an RST or GOAWAY it sent) rather than this side. */
  readonly remote?: boolean | undefined
  /** From a GOAWAY: the last stream the peer says it processed. */
  readonly lastStreamId?: number | undefined
  /** From a GOAWAY: the peer's debug text. */
  readonly debug?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TypeId]: TypeId = TypeId

  override get message(): string {
    const parts: Array<string> = [this.reason, `code=${this.code}`]
    if (this.streamId !== undefined) parts.push(`stream=${this.streamId}`)
    if (this.remote === true) parts.push("remote")
    if (this.lastStreamId !== undefined) parts.push(`last=${this.lastStreamId}`)
    if (this.debug !== undefined) parts.push(`debug=${JSON.stringify(this.debug)}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isMuxError = (u: unknown): u is MuxError => Predicate.hasProperty(u, TypeId)

/**
 * @since 0.1.0
 * @category guards
 */
export const isReason = <R extends MuxErrorReason>(u: unknown, reason: R): u is MuxError & { readonly reason: R } =>
  isMuxError(u) && u.reason === reason
