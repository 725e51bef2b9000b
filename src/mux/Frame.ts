/**
 * muxado v2 frames: the 8-byte header, the four frame types, and their codec.
 *
 * ```text
 * | length:24 | type:4 flags:4 | R:1 streamId:31 | payload (length bytes) |
 * ```
 *
 * The public face is `Frame` (a Schema of the tagged union) and `FrameFromBytes` (`Schema<Frame, Uint8Array>`).
 * Sessions use the same `encode` / `Decoder` functions directly.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { Decoder } from "./internal/decoder.js"
import { ErrorCode, MuxError } from "./MuxError.js"

export {
  /**
   * The incremental frame parser: push transport chunks, pull frames.
   *
   * @since 0.1.0
   * @category decoding
   */
  Decoder
} from "./internal/decoder.js"

/**
 * Frame type numbers (the high nibble of header byte 3).
 *
 * @since 0.1.0
 * @category constants
 */
export const FrameType = { Rst: 0, Data: 1, WndInc: 2, GoAway: 3 } as const

/**
 * DATA flags (the low nibble of header byte 3).
 *
 * @since 0.1.0
 * @category constants
 */
export const Flag = { Fin: 0x1, Syn: 0x2 } as const

/**
 * @since 0.1.0
 * @category constants
 */
export const HeaderSize = 8

/**
 * The largest payload a frame can carry: 16 MiB − 1.
 *
 * @since 0.1.0
 * @category constants
 */
export const MaxLength = 0xffffff

/**
 * The largest stream ID (31 bits; the reserved bit is never set).
 *
 * @since 0.1.0
 * @category constants
 */
export const MaxStreamId = 0x7fffffff

const U32 = Schema.Int.pipe(Schema.between(0, 0xffffffff))
const StreamId = Schema.Int.pipe(Schema.between(1, MaxStreamId))

/**
 * RST: the sender resets one stream with an error code.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Rst = Schema.TaggedStruct("Rst", { streamId: StreamId, code: U32 })

/**
 * @since 0.1.0
 * @category models
 */
export interface Rst extends Schema.Schema.Type<typeof Rst> {}

/**
 * DATA: stream bytes; `syn` opens the stream, `fin` half-closes it.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Data = Schema.TaggedStruct("Data", {
  streamId: StreamId,
  syn: Schema.Boolean,
  fin: Schema.Boolean,
  payload: Schema.Uint8ArrayFromSelf.pipe(Schema.filter((bytes) => bytes.length <= MaxLength))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Data extends Schema.Schema.Type<typeof Data> {}

/**
 * WNDINC: the receiver of a stream grants the sender `increment` more bytes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WndInc = Schema.TaggedStruct("WndInc", {
  streamId: StreamId,
  increment: Schema.Int.pipe(Schema.between(1, 0x7fffffff))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface WndInc extends Schema.Schema.Type<typeof WndInc> {}

/**
 * GOAWAY: the sender will process no stream above `lastStreamId`; `code` says why, `debug` is free text.
 *
 * @since 0.1.0
 * @category schemas
 */
export const GoAway = Schema.TaggedStruct("GoAway", {
  lastStreamId: Schema.Int.pipe(Schema.between(0, MaxStreamId)),
  code: U32,
  debug: Schema.Uint8ArrayFromSelf.pipe(Schema.filter((bytes) => bytes.length <= MaxLength - 8))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface GoAway extends Schema.Schema.Type<typeof GoAway> {}

/**
 * A frame of a type muxado does not define (4–15). Receivers skip its payload; only its length is kept.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Unknown = Schema.TaggedStruct("Unknown", {
  type: Schema.Int.pipe(Schema.between(4, 15)),
  flags: Schema.Int.pipe(Schema.between(0, 15)),
  streamId: Schema.Int.pipe(Schema.between(0, MaxStreamId)),
  length: Schema.Int.pipe(Schema.between(0, MaxLength))
})

/**
 * @since 0.1.0
 * @category models
 */
export interface Unknown extends Schema.Schema.Type<typeof Unknown> {}

/**
 * @since 0.1.0
 * @category schemas
 */
export const Frame = Schema.Union(Rst, Data, WndInc, GoAway, Unknown)

/**
 * @since 0.1.0
 * @category models
 */
export type Frame = Rst | Data | WndInc | GoAway | Unknown

/**
 * Writes a header at `offset`. The caller guarantees the ranges (see `encode` for the checked version).
 *
 * @since 0.1.0
 * @category encoding
 */
export const writeHeader = (
  buffer: Uint8Array,
  offset: number,
  length: number,
  type: number,
  flags: number,
  streamId: number
): void => {
  buffer[offset] = length >>> 16
  buffer[offset + 1] = (length >>> 8) & 0xff
  buffer[offset + 2] = length & 0xff
  buffer[offset + 3] = (type << 4) | flags
  buffer[offset + 4] = streamId >>> 24
  buffer[offset + 5] = (streamId >>> 16) & 0xff
  buffer[offset + 6] = (streamId >>> 8) & 0xff
  buffer[offset + 7] = streamId & 0xff
}

const writeU32 = (buffer: Uint8Array, offset: number, value: number): void => {
  buffer[offset] = value >>> 24
  buffer[offset + 1] = (value >>> 16) & 0xff
  buffer[offset + 2] = (value >>> 8) & 0xff
  buffer[offset + 3] = value & 0xff
}

/**
 * Checks the header ranges Go's packer checks: length 0…0xFFFFFF, stream ID 0…0x7FFFFFFF, type and flags nibbles.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeHeader = (
  length: number,
  type: number,
  flags: number,
  streamId: number
): Either.Either<Uint8Array, MuxError> => {
  if (!Number.isInteger(length) || length < 0 || length > MaxLength) {
    return Either.left(frameSize(`frame length out of range: ${length}`))
  }
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > MaxStreamId) {
    return Either.left(protocol(`stream id out of range: ${streamId}`))
  }
  if (!Number.isInteger(type) || type < 0 || type > 15 || !Number.isInteger(flags) || flags < 0 || flags > 15) {
    return Either.left(protocol(`frame type or flags out of range: ${type}/${flags}`))
  }
  const header = new Uint8Array(HeaderSize)
  writeHeader(header, 0, length, type, flags, streamId)
  return Either.right(header)
}

/**
 * Encodes a frame the caller knows to be valid (the session's hot path) into one buffer.
 *
 * @since 0.1.0
 * @category encoding
 */
export const unsafeEncode = (frame: Frame): Uint8Array => {
  switch (frame._tag) {
    case "Data": {
      const out = new Uint8Array(HeaderSize + frame.payload.length)
      writeHeader(out, 0, frame.payload.length, FrameType.Data, (frame.syn ? Flag.Syn : 0) | (frame.fin ? Flag.Fin : 0), frame.streamId)
      out.set(frame.payload, HeaderSize)
      return out
    }
    case "Rst":
      return u32Frame(FrameType.Rst, frame.streamId, frame.code)
    case "WndInc":
      return u32Frame(FrameType.WndInc, frame.streamId, frame.increment)
    case "GoAway": {
      // Length = 8 + len(debug), exactly as Go writes it.
      const out = new Uint8Array(HeaderSize + 8 + frame.debug.length)
      writeHeader(out, 0, 8 + frame.debug.length, FrameType.GoAway, 0, 0)
      writeU32(out, 8, frame.lastStreamId)
      writeU32(out, 12, frame.code)
      out.set(frame.debug, 16)
      return out
    }
    case "Unknown": {
      const out = new Uint8Array(HeaderSize + frame.length)
      writeHeader(out, 0, frame.length, frame.type, frame.flags, frame.streamId)
      return out
    }
  }
}

/**
 * An RST or WNDINC frame: header plus one u32.
 *
 * @since 0.1.0
 * @category encoding
 */
export const u32Frame = (type: number, streamId: number, value: number): Uint8Array => {
  const out = new Uint8Array(HeaderSize + 4)
  writeHeader(out, 0, 4, type, 0, streamId)
  writeU32(out, 8, value)
  return out
}

/**
 * Encodes a frame after checking every field the way Go's packer does.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame): Either.Either<Uint8Array, MuxError> => {
  const check = validate(frame)
  return check === undefined ? Either.right(unsafeEncode(frame)) : Either.left(check)
}

const inRange = (n: number, min: number, max: number) => Number.isInteger(n) && n >= min && n <= max

const validate = (frame: Frame): MuxError | undefined => {
  switch (frame._tag) {
    case "Data":
      if (!inRange(frame.streamId, 1, MaxStreamId)) return protocol(`DATA stream id out of range: ${frame.streamId}`)
      if (frame.payload.length > MaxLength) return frameSize(`DATA payload too large: ${frame.payload.length}`)
      return undefined
    case "Rst":
      if (!inRange(frame.streamId, 1, MaxStreamId)) return protocol(`RST stream id out of range: ${frame.streamId}`)
      if (!inRange(frame.code, 0, 0xffffffff)) return protocol(`RST code out of range: ${frame.code}`)
      return undefined
    case "WndInc":
      if (!inRange(frame.streamId, 1, MaxStreamId)) return protocol(`WNDINC stream id out of range: ${frame.streamId}`)
      if (!inRange(frame.increment, 1, 0x7fffffff)) return protocol(`WNDINC increment out of range: ${frame.increment}`)
      return undefined
    case "GoAway":
      if (!inRange(frame.lastStreamId, 0, MaxStreamId)) return protocol(`GOAWAY last stream id out of range`)
      if (!inRange(frame.code, 0, 0xffffffff)) return protocol(`GOAWAY code out of range: ${frame.code}`)
      if (frame.debug.length > MaxLength - 8) return frameSize(`GOAWAY debug too large: ${frame.debug.length}`)
      return undefined
    case "Unknown":
      if (!inRange(frame.type, 4, 15) || !inRange(frame.flags, 0, 15)) return protocol(`bad unknown frame type/flags`)
      if (!inRange(frame.streamId, 0, MaxStreamId)) return protocol(`stream id out of range: ${frame.streamId}`)
      if (!inRange(frame.length, 0, MaxLength)) return frameSize(`frame length out of range: ${frame.length}`)
      return undefined
  }
}

const protocol = (detail: string) => new MuxError({ reason: "ProtocolError", code: ErrorCode.ProtocolError, detail })
const frameSize = (detail: string) => new MuxError({ reason: "FrameSizeError", code: ErrorCode.FrameSizeError, detail })

/**
 * Decodes exactly one complete frame; trailing or missing bytes are errors.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array): Either.Either<Frame, MuxError> => {
  const decoder = new Decoder()
  decoder.push(bytes)
  const result = decoder.next()
  if (result === undefined) {
    return Either.left(
      new MuxError({ reason: "FrameSizeError", code: ErrorCode.FrameSizeError, detail: "short read: truncated frame" })
    )
  }
  if (result instanceof MuxError) return Either.left(result)
  if (decoder.buffered > 0) {
    return Either.left(
      new MuxError({ reason: "FrameSizeError", code: ErrorCode.FrameSizeError, detail: `${decoder.buffered} bytes after the frame` })
    )
  }
  return Either.right(result)
}

/**
 * One frame as bytes on the wire: `Schema.decode(FrameFromBytes)(bytes)` parses and validates a frame as a Go
 * reader does, `Schema.encode` packs it as a Go writer does.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FrameFromBytes: Schema.Schema<Frame, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  Schema.typeSchema(Frame),
  {
    strict: true,
    decode: (bytes, _, ast) =>
      Either.match(decode(bytes), {
        onLeft: (error) => ParseResult.fail(new ParseResult.Type(ast, bytes, error.message)),
        onRight: ParseResult.succeed
      }),
    encode: (frame, _, ast) =>
      Either.match(encode(frame), {
        onLeft: (error) => ParseResult.fail(new ParseResult.Type(ast, frame, error.message)),
        onRight: ParseResult.succeed
      })
  }
)

const textDecoder = new TextDecoder()
const textEncoder = new TextEncoder()

/**
 * A GOAWAY's debug bytes as text.
 *
 * @since 0.1.0
 * @category utils
 */
export const debugText = (frame: GoAway): string => textDecoder.decode(frame.debug)

/**
 * @since 0.1.0
 * @category constructors
 */
export const goAway = (lastStreamId: number, code: number, debug: string | Uint8Array = ""): GoAway => ({
  _tag: "GoAway",
  lastStreamId,
  code,
  debug: typeof debug === "string" ? textEncoder.encode(debug) : debug
})
