/**
 * The error family of the AMQP codec.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * Why encoding or decoding failed.
 *
 * - `FrameTooLarge`: a frame announced (or would need) more bytes than the negotiated `frame_max`.
 * - `BadFrameEnd`: the octet after the payload is not `0xCE`.
 * - `UnknownFrameType`: the frame type is not 1, 2, 3 or 8.
 * - `UnknownMethod`: the class id / method id pair is not an AMQP 0-9-1 (or RabbitMQ) method.
 * - `UnknownFieldType`: a field table or array holds a tag outside RabbitMQ's set.
 * - `Malformed`: the bytes are cut short, run past their frame, carry invalid UTF-8, unknown property flags, …
 * - `ShortStringTooLong`: a short string needs more than 255 bytes of UTF-8.
 * - `InvalidValue`: a value cannot be encoded as its wire type (out of range, not an integer, unsupported JS value).
 * - `ProtocolVersionMismatch`: the peer answered with its own protocol header (`AMQP x y z w`) instead of a frame.
 *
 * @since 0.1.0
 * @category models
 */
export type AmqpErrorReason =
  | "FrameTooLarge"
  | "BadFrameEnd"
  | "UnknownFrameType"
  | "UnknownMethod"
  | "UnknownFieldType"
  | "Malformed"
  | "ShortStringTooLong"
  | "InvalidValue"
  | "ProtocolVersionMismatch"

/**
 * A codec error, with the position and ids that locate it.
 *
 * @since 0.1.0
 * @category errors
 */
export class AmqpError extends Data.TaggedError("AmqpError")<{
  readonly reason: AmqpErrorReason
  /** Byte offset in the input (parser: from the start of the stream; decoders: from the start of their input). */
  readonly offset?: number | undefined
  readonly channel?: number | undefined
  readonly frameType?: number | undefined
  readonly classId?: number | undefined
  readonly methodId?: number | undefined
  /** The size involved: the announced frame size, the byte length of a too long short string, … */
  readonly size?: number | undefined
  /** The limit that was exceeded. */
  readonly max?: number | undefined
  /** The field table tag (`FieldTypeUnknown`) or the peer's protocol header bytes (`ProtocolVersionMismatch`). */
  readonly bytes?: Uint8Array | undefined
  /** Which field or argument, when known (`basic.publish.routingKey`, `headers.x-death`, …). */
  readonly field?: string | undefined
  readonly detail?: string | undefined
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.field !== undefined) parts.push(`field=${this.field}`)
    if (this.channel !== undefined) parts.push(`channel=${this.channel}`)
    if (this.frameType !== undefined) parts.push(`frameType=${this.frameType}`)
    if (this.classId !== undefined) parts.push(`classId=${this.classId}`)
    if (this.methodId !== undefined) parts.push(`methodId=${this.methodId}`)
    if (this.size !== undefined) parts.push(`size=${this.size}`)
    if (this.max !== undefined) parts.push(`max=${this.max}`)
    if (this.offset !== undefined) parts.push(`offset=${this.offset}`)
    if (this.bytes !== undefined) parts.push(`bytes=${Array.from(this.bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isAmqpError = (u: unknown): u is AmqpError => u instanceof AmqpError
