/**
 * The one error family of the eMQP module.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * Why an eMQP operation failed.
 *
 * - `Malformed`: a message does not have the shape its command requires (frame count, envelope, a field).
 * - `UnknownCommand`: frame 2 names a command this implementation does not know.
 * - `UnsupportedVersion`: frame 1 is not `eMQP/1.0`.
 * - `Refused`: the broker refused a request (`NACK`): its queue buffer is full, no scheduler is registered, …
 * - `Timeout`: no answer within the deadline.
 * - `JobFailed`: the worker reported that the job failed, or the job was lost with its worker.
 * - `Disconnected`: the peer said goodbye (`KBYE`/`DISCONNECT`) or was declared dead by the heartbeat.
 * - `Closed`: the operation was attempted on a broker, worker or client that is shut down.
 * - `Socket`: the underlying ZMTP socket failed.
 *
 * @since 0.1.0
 * @category models
 */
export type EmqpErrorReason =
  | "Malformed"
  | "UnknownCommand"
  | "UnsupportedVersion"
  | "Refused"
  | "Timeout"
  | "JobFailed"
  | "Disconnected"
  | "Closed"
  | "Socket"

/**
 * @since 0.1.0
 * @category errors
 */
export class EmqpError extends Data.TaggedError("EmqpError")<{
  readonly reason: EmqpErrorReason
  /** The eMQP command involved (`REQUEST`, `INFORM`, …), when there is one. */
  readonly command?: string | undefined
  /** The message id involved: the request's id for `Refused`, `Timeout` and `JobFailed`. */
  readonly msgid?: string | undefined
  /** The broker's refusal code for `Refused` (`queue-full`, `no-scheduler`, …), or the number of frames seen. */
  readonly code?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.command !== undefined) parts.push(`command=${this.command}`)
    if (this.msgid !== undefined) parts.push(`msgid=${this.msgid}`)
    if (this.code !== undefined) parts.push(`code=${this.code}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}
