/**
 * The one error family of the ZMTP module.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * Why a ZMTP operation failed.
 *
 * - `BadGreeting`: the peer's first bytes are not a ZMTP signature.
 * - `UnsupportedVersion`: the peer speaks ZMTP 1.0/2.0 (major version below 3).
 * - `MechanismMismatch`: the peer uses another security mechanism.
 * - `MalformedFrame` / `MalformedCommand`: bytes that break the ZMTP grammar.
 * - `MessageTooLarge`: a message exceeds the configured maximum size.
 * - `HandshakeFailed`: the mechanism handshake broke its own rules (unexpected command, bad box, bad nonce).
 * - `HandshakeTimeout`: greeting and handshake did not finish in time.
 * - `AuthenticationFailed`: credentials or keys were refused (by us, or by the peer through `ERROR`).
 * - `PeerError`: the peer sent an `ERROR` command; `code` holds its reason text.
 * - `IncompatibleSocketType`: the peer's `Socket-Type` cannot talk to ours.
 * - `HeartbeatTimeout`: the peer went silent past the heartbeat timeout or the TTL it asked for.
 * - `HostUnreachable`: a ROUTER in mandatory mode was asked to send to an unknown routing id.
 * - `InvalidEndpoint`: an endpoint string that is not `tcp://host:port`, `ipc://path` or `memory://name`.
 * - `WouldBlock`: a non-blocking send (`trySend`) found no room: every pipe it may use is at its high-water mark
 *   (or, for load-balanced types, there is no peer yet), as libzmq's `EAGAIN` with `ZMQ_DONTWAIT`.
 * - `InvalidState`: an operation out of the socket's order (a REQ sending twice, receiving on a PUB, …).
 * - `Transport`: the transport underneath failed; `cause` holds the `TransportError`.
 * - `Closed`: the socket or connection is closed.
 *
 * @since 0.1.0
 * @category models
 */
export type ZmtpErrorReason =
  | "BadGreeting"
  | "UnsupportedVersion"
  | "MechanismMismatch"
  | "MalformedFrame"
  | "MalformedCommand"
  | "MessageTooLarge"
  | "HandshakeFailed"
  | "HandshakeTimeout"
  | "AuthenticationFailed"
  | "PeerError"
  | "IncompatibleSocketType"
  | "HeartbeatTimeout"
  | "HostUnreachable"
  | "InvalidEndpoint"
  | "WouldBlock"
  | "InvalidState"
  | "Transport"
  | "Closed"

/**
 * @since 0.1.0
 * @category errors
 */
export class ZmtpError extends Data.TaggedError("ZmtpError")<{
  readonly reason: ZmtpErrorReason
  readonly detail?: string | undefined
  /** The endpoint of the connection involved, when there is one. */
  readonly endpoint?: string | undefined
  /** The reason text of a peer's `ERROR` command, or ZAP-style status such as `"400"`. */
  readonly code?: string | undefined
  /** The routing id involved (ROUTER sends). */
  readonly routingId?: Uint8Array | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.endpoint !== undefined) parts.push(`endpoint=${this.endpoint}`)
    if (this.code !== undefined) parts.push(`code=${this.code}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (reason: ZmtpErrorReason, detail?: string): ZmtpError => new ZmtpError({ reason, detail })

/**
 * @since 0.1.0
 * @category guards
 */
export const isZmtpError = (u: unknown): u is ZmtpError => u instanceof ZmtpError
