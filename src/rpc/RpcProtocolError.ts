/**
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * Why an RPC connection ended or could not be used. It is the `cause` of the `RpcClientError` that in-flight
 * requests fail with, so callers can tell a lost connection from a silent peer or malformed input.
 *
 * - `Connect`: the connection could not be opened (`cause` holds the transport's error).
 * - `ConnectionLost`: the transport failed while open (`cause` holds its error).
 * - `ConnectionClosed`: the peer closed the connection.
 * - `HeartbeatTimeout`: nothing arrived from the peer for a whole heartbeat interval after a `Ping`.
 * - `Decode`: inbound bytes could not be decoded (bad framing, malformed message, a buffer over its limit).
 * - `Encode`: an outbound message could not be encoded by the serialization.
 * - `NotConnected`: a request was sent while the connection is down.
 *
 * @since 0.1.0
 * @category models
 */
export type RpcProtocolErrorReason =
  | "Connect"
  | "ConnectionLost"
  | "ConnectionClosed"
  | "HeartbeatTimeout"
  | "Decode"
  | "Encode"
  | "NotConnected"

/**
 * @since 0.1.0
 * @category errors
 */
export class RpcProtocolError extends Data.TaggedError("RpcProtocolError")<{
  readonly reason: RpcProtocolErrorReason
  /** The address of the peer, when known. */
  readonly address?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.address !== undefined) parts.push(`address=${this.address}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}
