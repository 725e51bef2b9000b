/**
 * ZMTP frames: a flags octet (MORE, LONG, COMMAND), a 1- or 8-octet size and a body.
 *
 * The encoder writes whole messages (and batches of messages) into one buffer; the decoder is incremental,
 * enforces a maximum message size before allocating, and returns errors as values.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ZmtpError } from "./ZmtpError.js"

/**
 * @since 0.1.0
 * @category constants
 */
export const MORE = 0x01

/**
 * @since 0.1.0
 * @category constants
 */
export const LONG = 0x02

/**
 * @since 0.1.0
 * @category constants
 */
export const COMMAND = 0x04

/**
 * The largest frame body this implementation accepts, whatever the configured limit: 2 GiB − 1.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxFrameSize = 0x7fffffff

/**
 * @since 0.1.0
 * @category models
 */
export interface Frame {
  readonly more: boolean
  readonly command: boolean
  readonly body: Uint8Array
}

/**
 * A message: one or more frames, in order.
 *
 * @since 0.1.0
 * @category models
 */
export type Message = ReadonlyArray<Uint8Array>

/**
 * Bytes of the header for a body of `size` bytes: 2 when it fits one octet, else 9.
 *
 * @since 0.1.0
 * @category encoding
 */
export const headerSize = (size: number): number => (size > 255 ? 9 : 2)

/**
 * Writes a frame header; returns the offset after it.
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeHeader = (out: Uint8Array, offset: number, flags: number, size: number): number => {
  if (size > 255) {
    out[offset] = flags | LONG
    const high = Math.floor(size / 0x100000000)
    out[offset + 1] = high >>> 24
    out[offset + 2] = (high >>> 16) & 0xff
    out[offset + 3] = (high >>> 8) & 0xff
    out[offset + 4] = high & 0xff
    out[offset + 5] = size >>> 24
    out[offset + 6] = (size >>> 16) & 0xff
    out[offset + 7] = (size >>> 8) & 0xff
    out[offset + 8] = size & 0xff
    return offset + 9
  }
  out[offset] = flags
  out[offset + 1] = size
  return offset + 2
}

/**
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame): Uint8Array => {
  const out = new Uint8Array(headerSize(frame.body.length) + frame.body.length)
  const offset = writeHeader(out, 0, (frame.more ? MORE : 0) | (frame.command ? COMMAND : 0), frame.body.length)
  out.set(frame.body, offset)
  return out
}

/**
 * A command frame around an already encoded command body.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeCommand = (body: Uint8Array): Uint8Array => encode({ more: false, command: true, body })

/**
 * Encoded size of a message.
 *
 * @since 0.1.0
 * @category encoding
 */
export const messageSize = (message: Message): number => {
  let size = 0
  for (const part of message) size += headerSize(part.length) + part.length
  return size
}

/**
 * Writes a message into `out` at `offset`; returns the offset after it.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeMessageInto = (message: Message, out: Uint8Array, offset: number): number => {
  const last = message.length - 1
  for (let i = 0; i <= last; i++) {
    const part = message[i]!
    offset = writeHeader(out, offset, i < last ? MORE : 0, part.length)
    out.set(part, offset)
    offset += part.length
  }
  return offset
}

/**
 * @since 0.1.0
 * @category encoding
 */
export const encodeMessage = (message: Message): Uint8Array => {
  const out = new Uint8Array(messageSize(message))
  encodeMessageInto(message, out, 0)
  return out
}

const noLimit = Number.POSITIVE_INFINITY

/**
 * An incremental frame decoder. Feed it chunks as they arrive; it appends complete frames to `out`.
 *
 * Bodies that arrive whole in one chunk are views into that chunk (no copy). A body is allocated only after its
 * size has passed the limit. A multipart message counts all its frames against `maxMessageSize`.
 *
 * @since 0.1.0
 * @category decoding
 */
export class Decoder {
  private header = new Uint8Array(9)
  private headerFilled = 0
  private body: Uint8Array | undefined
  private bodyFilled = 0
  private flags = 0
  private messageBytes = 0

  constructor(
    /** Maximum bytes of one message (all its frames). */
    readonly maxMessageSize: number = noLimit,
    /** Maximum bytes of one command body. */
    readonly maxCommandSize: number = noLimit
  ) {}

  /** Whether the decoder holds part of a frame. */
  get isIdle(): boolean {
    return this.headerFilled === 0 && this.body === undefined
  }

  /** Decodes what `chunk` completes; returns an error when the bytes break the grammar or a limit. */
  decode(chunk: Uint8Array, out: Array<Frame>): ZmtpError | undefined {
    let offset = 0
    const length = chunk.length
    while (offset < length) {
      if (this.body !== undefined) {
        const take = Math.min(this.body.length - this.bodyFilled, length - offset)
        this.body.set(chunk.subarray(offset, offset + take), this.bodyFilled)
        this.bodyFilled += take
        offset += take
        if (this.bodyFilled < this.body.length) return undefined
        this.emit(this.body, out)
        this.body = undefined
        continue
      }
      let flags: number
      let size: number
      if (this.headerFilled === 0 && length - offset >= 2) {
        // Fast path: the header is inside this chunk.
        flags = chunk[offset]!
        if ((flags & LONG) === 0) {
          size = chunk[offset + 1]!
          offset += 2
        } else if (length - offset >= 9) {
          const high = ((chunk[offset + 1]! << 24) | (chunk[offset + 2]! << 16) | (chunk[offset + 3]! << 8) | chunk[offset + 4]!) >>> 0
          const low = ((chunk[offset + 5]! << 24) | (chunk[offset + 6]! << 16) | (chunk[offset + 7]! << 8) | chunk[offset + 8]!) >>> 0
          size = high * 0x100000000 + low
          offset += 9
        } else {
          this.header.set(chunk.subarray(offset), 0)
          this.headerFilled = length - offset
          return undefined
        }
      } else {
        this.header[this.headerFilled++] = chunk[offset++]!
        const needed = this.headerFilled >= 1 && (this.header[0]! & LONG) !== 0 ? 9 : 2
        if (this.headerFilled < needed) continue
        flags = this.header[0]!
        const h = this.header
        size = needed === 2
          ? h[1]!
          : (((h[1]! << 24) | (h[2]! << 16) | (h[3]! << 8) | h[4]!) >>> 0) * 0x100000000 +
            (((h[5]! << 24) | (h[6]! << 16) | (h[7]! << 8) | h[8]!) >>> 0)
        this.headerFilled = 0
      }
      const error = this.check(flags, size)
      if (error !== undefined) return error
      this.flags = flags
      if (length - offset >= size) {
        this.emit(chunk.subarray(offset, offset + size), out)
        offset += size
      } else {
        this.body = new Uint8Array(size)
        this.bodyFilled = 0
      }
    }
    return undefined
  }

  private check(flags: number, size: number): ZmtpError | undefined {
    if ((flags & COMMAND) !== 0) {
      if ((flags & MORE) !== 0) {
        return new ZmtpError({ reason: "MalformedFrame", detail: "command frame with MORE set" })
      }
      if (this.messageBytes > 0) {
        return new ZmtpError({ reason: "MalformedFrame", detail: "command frame inside a multipart message" })
      }
      if (size > this.maxCommandSize || size > maxFrameSize) {
        return new ZmtpError({ reason: "MessageTooLarge", detail: `command of ${size} bytes` })
      }
      return undefined
    }
    if (this.messageBytes + size > this.maxMessageSize || size > maxFrameSize) {
      return new ZmtpError({ reason: "MessageTooLarge", detail: `message of more than ${this.maxMessageSize} bytes` })
    }
    return undefined
  }

  private emit(body: Uint8Array, out: Array<Frame>) {
    const flags = this.flags
    const command = (flags & COMMAND) !== 0
    const more = (flags & MORE) !== 0
    if (!command) this.messageBytes = more ? this.messageBytes + body.length : 0
    out.push({ more, command, body })
  }
}

/**
 * Decodes bytes that hold exactly one frame.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array): Either.Either<Frame, ZmtpError> => {
  const frames: Array<Frame> = []
  const decoder = new Decoder()
  const error = decoder.decode(bytes, frames)
  if (error !== undefined) return Either.left(error)
  if (frames.length !== 1 || !decoder.isIdle) {
    return Either.left(new ZmtpError({ reason: "MalformedFrame", detail: "bytes do not hold exactly one frame" }))
  }
  return Either.right(frames[0]!)
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const FrameFromSelf = Schema.Struct({
  more: Schema.Boolean,
  command: Schema.Boolean,
  body: Schema.Uint8ArrayFromSelf
}).pipe(Schema.filter((frame) => !(frame.more && frame.command) || "a command frame cannot have MORE"))

/**
 * `Schema<Frame, Uint8Array>` over the same codec the connections use.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FrameFromBytes: Schema.Schema<Frame, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  FrameFromSelf,
  {
    strict: true,
    decode: (bytes, _, ast) => Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.detail)),
    encode: (frame) => ParseResult.succeed(encode(frame))
  }
)
