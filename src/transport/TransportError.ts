/**
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * Why a transport operation failed.
 *
 * - `Connect` / `ConnectTimeout`: the connection could not be opened (or not in time).
 * - `Listen`: a server could not bind its address.
 * - `Read` / `Write`: the OS reported an error (reset by peer, broken pipe, …); `code` holds the errno name.
 * - `Closed`: the operation was attempted on a transport that is closed or aborted.
 * - `Tls`: the TLS handshake or verification failed.
 * - `IdleTimeout`: nothing was read or written for the configured idle time.
 * - `Refused`: a server turned the connection away (for example past `maxConnections`).
 * - `Unsupported`: the operation does not exist on this kind of transport.
 *
 * @since 0.1.0
 * @category models
 */
export type TransportErrorReason =
  | "Connect"
  | "ConnectTimeout"
  | "Listen"
  | "Read"
  | "Write"
  | "Closed"
  | "Tls"
  | "IdleTimeout"
  | "Refused"
  | "Unsupported"

/**
 * The one error of the transport layer.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransportError extends Data.TaggedError("TransportError")<{
  readonly reason: TransportErrorReason
  /** The address involved, formatted as `host:port`, a path or a memory name. */
  readonly address?: string | undefined
  /** The OS error code (`ECONNREFUSED`, `ECONNRESET`, `EPIPE`, …) or a TLS error code. */
  readonly code?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.address !== undefined) parts.push(`address=${this.address}`)
    if (this.code !== undefined) parts.push(`code=${this.code}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}

/**
 * Turns a Node.js error into a `TransportError`, keeping its errno code.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromNodeError = (
  reason: TransportErrorReason,
  cause: unknown,
  address?: string
): TransportError => {
  const code = typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string"
    ? cause.code
    : undefined
  const detail = cause instanceof Error ? cause.message : undefined
  return new TransportError({ reason, address, code, detail, cause })
}
