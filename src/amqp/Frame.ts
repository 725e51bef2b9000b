/**
 * AMQP frames: the model, an incremental parser for a reader fiber, and encoders that write whole publishes
 * into one buffer.
 *
 * Layout: `type octet · channel short · size long · payload · 0xCE`. Types: 1 method, 2 content header, 3 body,
 * 8 heartbeat.
 *
 * @example
 * import { Frame } from "effect-wire/amqp"
 *
 * const parser = new Frame.Parser({ maxFrameSize: 131072 })
 * // in the reader fiber, for every chunk of `transport.read`:
 * const error = parser.feed(chunk, (frame) => dispatch(frame))
 *
 * @since 0.1.0
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { AmqpError } from "./AmqpError.js"
import * as C from "./Constants.js"
import * as Frames from "./internal/frames.js"
import * as Wire from "./internal/wire.js"
import * as Methods from "./Methods.js"
import * as Properties from "./Properties.js"
import * as Table from "./Table.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface MethodFrame {
  readonly _tag: "Method"
  readonly channel: number
  readonly method: Methods.Method
}

/**
 * A content header: the body size and the properties of the content that follows.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeaderFrame {
  readonly _tag: "Header"
  readonly channel: number
  /** 60 (basic): the only content class. */
  readonly classId: 60
  /** 0 when sent; kept as read. */
  readonly weight: number
  readonly bodySize: bigint
  readonly properties: Properties.BasicProperties
}

/**
 * A piece of a content body. A decoded payload is a view into the bytes read (no copy).
 *
 * @since 0.1.0
 * @category models
 */
export interface BodyFrame {
  readonly _tag: "Body"
  readonly channel: number
  readonly payload: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatFrame {
  readonly _tag: "Heartbeat"
  /** 0 in every valid heartbeat; kept as read so the connection can report a heartbeat on another channel. */
  readonly channel: number
}

/**
 * @since 0.1.0
 * @category models
 */
export type Frame = MethodFrame | HeaderFrame | BodyFrame | HeartbeatFrame

/**
 * Everything `basic.publish` needs, for the one-buffer publish encoder.
 *
 * @since 0.1.0
 * @category models
 */
export interface Publish {
  readonly channel: number
  /** Default: `""`, the default exchange. */
  readonly exchange?: string | undefined
  /** Default: `""`. */
  readonly routingKey?: string | undefined
  readonly mandatory?: boolean | undefined
  /** RabbitMQ 3.0+ closes the connection (540 NOT_IMPLEMENTED) when this is set. */
  readonly immediate?: boolean | undefined
  readonly properties?: Properties.BasicProperties | undefined
  readonly body: Uint8Array
}

// ---------------------------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category constructors
 */
export const method = (channel: number, method: Methods.Method): MethodFrame => ({ _tag: "Method", channel, method })

/**
 * @since 0.1.0
 * @category constructors
 */
export const header = (
  channel: number,
  bodySize: bigint,
  properties: Properties.BasicProperties = {}
): HeaderFrame => ({ _tag: "Header", channel, classId: 60, weight: 0, bodySize, properties })

/**
 * @since 0.1.0
 * @category constructors
 */
export const body = (channel: number, payload: Uint8Array): BodyFrame => ({ _tag: "Body", channel, payload })

/**
 * @since 0.1.0
 * @category constructors
 */
export const heartbeat: HeartbeatFrame = { _tag: "Heartbeat", channel: 0 }

// ---------------------------------------------------------------------------------------------------------------
// Protocol header
// ---------------------------------------------------------------------------------------------------------------

/**
 * The 8-byte protocol header: `"AMQP"`, then protocol id, major, minor, revision (`0 0 9 1` for AMQP 0-9-1).
 *
 * @since 0.1.0
 * @category models
 */
export interface ProtocolHeader {
  readonly protocolId: number
  readonly major: number
  readonly minor: number
  readonly revision: number
}

/**
 * Decodes the protocol header a client sends first (or a server sends back to refuse the version).
 *
 * @since 0.1.0
 * @category protocol header
 */
export const decodeProtocolHeader = (bytes: Uint8Array): Either.Either<ProtocolHeader, AmqpError> => {
  if (bytes.length !== 8 || bytes[0] !== 0x41 || bytes[1] !== 0x4d || bytes[2] !== 0x51 || bytes[3] !== 0x50) {
    return Either.left(
      new AmqpError({ reason: "Malformed", size: bytes.length, bytes: bytes.slice(0, 8), detail: "not an AMQP protocol header" })
    )
  }
  return Either.right({ protocolId: bytes[4]!, major: bytes[5]!, minor: bytes[6]!, revision: bytes[7]! })
}

/**
 * @since 0.1.0
 * @category protocol header
 */
export const encodeProtocolHeader = (header: ProtocolHeader): Uint8Array =>
  Uint8Array.of(0x41, 0x4d, 0x51, 0x50, header.protocolId, header.major, header.minor, header.revision)

/**
 * Whether a protocol header is AMQP 0-9-1's.
 *
 * @since 0.1.0
 * @category protocol header
 */
export const isAmqp091 = (header: ProtocolHeader): boolean =>
  header.protocolId === 0 && header.major === 0 && header.minor === 9 && header.revision === 1

// ---------------------------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------------------------

/**
 * Options of the encoders.
 *
 * @since 0.1.0
 * @category encoding
 */
export interface EncodeOptions {
  /** The negotiated `frame_max` (whole frame, 8 bytes of overhead included); 0 = no limit. Default: 131072. */
  readonly frameMax?: number | undefined
}

const frameMaxOf = (options: EncodeOptions | undefined) => options?.frameMax ?? C.FRAME_MAX_DEFAULT

/**
 * Encodes one frame. Fails with `FrameTooLarge` past `frameMax`, `ShortStringTooLong` or `InvalidValue` for
 * values the wire cannot carry.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame, options?: EncodeOptions): Either.Either<Uint8Array, AmqpError> => {
  const size = Frames.frameSize(frame, frameMaxOf(options))
  if (typeof size !== "number") return Either.left(size)
  const w = new Wire.Writer(new Uint8Array(size))
  Frames.writeFrame(w, frame)
  return Either.right(w.buf)
}

/**
 * Encodes a whole publish (`basic.publish` method frame, content header, body frames of at most
 * `frameMax − 8` bytes, none for an empty body) into one buffer.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodePublish = (publish: Publish, options?: EncodeOptions): Either.Either<Uint8Array, AmqpError> => {
  const frameMax = frameMaxOf(options)
  const size = Frames.publishSize(publish, frameMax)
  if (typeof size !== "number") return Either.left(size)
  const w = new Wire.Writer(new Uint8Array(size))
  Frames.writePublish(w, publish, frameMax)
  return Either.right(w.buf)
}

/**
 * An encoder that appends frames and publishes to a slab buffer, for a writer fiber that coalesces everything
 * pending into one write.
 *
 * `take()` hands out the bytes appended since the previous `take()` as a view of the slab; later appends never
 * touch bytes already taken, so a taken view stays valid while the write is in flight. A new slab is allocated
 * only when the current one is full.
 *
 * @since 0.1.0
 * @category encoding
 */
export class Encoder {
  /** The negotiated `frame_max` (0 = no limit); set it after `connection.tune-ok`. */
  frameMax: number
  private readonly slabSize: number
  private w: Wire.Writer
  private start = 0

  constructor(options?: EncodeOptions & {
    /** Bytes per slab. Default: 256 KiB. */
    readonly slabSize?: number | undefined
  }) {
    this.frameMax = frameMaxOf(options)
    this.slabSize = options?.slabSize ?? 256 * 1024
    this.w = new Wire.Writer(new Uint8Array(this.slabSize))
  }

  /** Bytes appended and not yet taken. */
  get pending(): number {
    return this.w.pos - this.start
  }

  private reserve(n: number): Wire.Writer {
    const w = this.w
    if (w.pos + n <= w.buf.length) return w
    const pending = w.pos - this.start
    const next = new Wire.Writer(new Uint8Array(Math.max(this.slabSize, pending + n)))
    next.buf.set(w.buf.subarray(this.start, w.pos))
    next.pos = pending
    this.w = next
    this.start = 0
    return next
  }

  /** Appends a whole publish; on error nothing is appended. */
  publish(publish: Publish): AmqpError | undefined {
    const size = Frames.publishSize(publish, this.frameMax)
    if (typeof size !== "number") return size
    Frames.writePublish(this.reserve(size), publish, this.frameMax)
    return undefined
  }

  /** Appends one frame; on error nothing is appended. */
  frame(frame: Frame): AmqpError | undefined {
    const size = Frames.frameSize(frame, this.frameMax)
    if (typeof size !== "number") return size
    Frames.writeFrame(this.reserve(size), frame)
    return undefined
  }

  /** The bytes appended since the last `take` (empty when nothing is pending). */
  take(): Uint8Array {
    const w = this.w
    const out = w.buf.subarray(this.start, w.pos)
    this.start = w.pos
    if (w.pos === w.buf.length) {
      this.w = new Wire.Writer(new Uint8Array(this.slabSize))
      this.start = 0
    }
    return out
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category decoding
 */
export interface ParserOptions {
  /**
   * The largest whole frame accepted (8 bytes of overhead included): the negotiated `frame_max`. A peer that
   * negotiated 0 ("no limit") still gets a cap: pass your own. Default: 131072.
   */
  readonly maxFrameSize?: number | undefined
}

/** Checks a frame header at `buf[at]` (7 bytes, 8 when it may be a protocol header); the payload size or an error. */
const checkHeader = (buf: Uint8Array, at: number, max: number, offset: number): number | AmqpError => {
  const type = buf[at]!
  const channel = (buf[at + 1]! << 8) | buf[at + 2]!
  if (type !== C.FRAME_METHOD && type !== C.FRAME_HEADER && type !== C.FRAME_BODY && type !== C.FRAME_HEARTBEAT) {
    if (type === 0x41 && buf[at + 1] === 0x4d && buf[at + 2] === 0x51 && buf[at + 3] === 0x50) {
      return new AmqpError({
        reason: "ProtocolVersionMismatch",
        offset,
        bytes: buf.slice(at, at + 8),
        detail: `the peer answered with its own protocol header (AMQP ${Array.from(buf.subarray(at + 4, at + 8)).join(" ")})`
      })
    }
    return new AmqpError({ reason: "UnknownFrameType", offset, frameType: type, channel, detail: `frame type ${type} is not 1, 2, 3 or 8` })
  }
  const size = buf[at + 3]! * 0x1000000 + ((buf[at + 4]! << 16) | (buf[at + 5]! << 8) | buf[at + 6]!)
  if (size + C.FRAME_OVERHEAD > max) {
    return new AmqpError({
      reason: "FrameTooLarge",
      offset,
      frameType: type,
      channel,
      size: size + C.FRAME_OVERHEAD,
      max,
      detail: "frame exceeds the maximum frame size"
    })
  }
  return size
}

/**
 * An incremental frame parser for a reader fiber: feed it every chunk read, in order, and it calls back with each
 * complete frame.
 *
 * - Frames split across reads at any byte are reassembled in one buffer of exactly the frame's size; frames that
 *   lie inside one chunk are decoded in place, and their body payloads are views of that chunk (so chunks must
 *   not be reused by the transport after they are handed over).
 * - A frame announcing more than `maxFrameSize` fails with `FrameTooLarge` before anything is buffered.
 * - The frame-end octet, frame types, class and method ids, and every argument are checked; the first error
 *   poisons the parser (the connection is over, per the spec's 501/505 handling).
 *
 * @since 0.1.0
 * @category decoding
 */
export class Parser {
  /** The current cap; raise or lower it after `connection.tune-ok`. */
  maxFrameSize: number
  private consumed = 0
  private readonly head = new Uint8Array(8)
  private headLen = 0
  private partial: Uint8Array | undefined = undefined
  private partialLen = 0
  private partialOffset = 0
  private failed: AmqpError | undefined = undefined
  private readonly reader = new Wire.Reader(new Uint8Array(0), 0, 0)

  constructor(options?: ParserOptions) {
    this.maxFrameSize = options?.maxFrameSize ?? C.FRAME_MAX_DEFAULT
  }

  /** The error that stopped the parser, if any. */
  get error(): AmqpError | undefined {
    return this.failed
  }

  /** Bytes fed so far. */
  get offset(): number {
    return this.consumed
  }

  /** Bytes held for an incomplete frame. */
  get buffered(): number {
    return this.partial !== undefined ? this.partialLen : this.headLen
  }

  /** Decodes the frame at `buf[at]` with payload `size` (all present); the frame or an error. */
  private frameAt(buf: Uint8Array, at: number, size: number, base: number): Frame | AmqpError {
    const endAt = at + 7 + size
    if (buf[endAt] !== C.FRAME_END) {
      return new AmqpError({
        reason: "BadFrameEnd",
        offset: base + endAt,
        frameType: buf[at],
        channel: (buf[at + 1]! << 8) | buf[at + 2]!,
        detail: `frame-end octet is 0x${buf[endAt]!.toString(16).padStart(2, "0")}, not 0xce`
      })
    }
    const r = this.reader
    r.reset(buf, at + 7, endAt, base)
    const frame = Frames.decodePayload(r, buf[at]!, (buf[at + 1]! << 8) | buf[at + 2]!)
    return frame === undefined || r.error !== undefined ? r.error! : frame
  }

  private fail(error: AmqpError): AmqpError {
    this.failed = error
    this.partial = undefined
    this.headLen = 0
    return error
  }

  /** Feeds one chunk; calls `onFrame` for every frame it completes. Returns the error that stopped it, if any. */
  feed(chunk: Uint8Array, onFrame: (frame: Frame) => void): AmqpError | undefined {
    if (this.failed !== undefined) return this.failed
    const len = chunk.length
    const base = this.consumed
    this.consumed += len
    let pos = 0
    while (pos < len) {
      const partial = this.partial
      if (partial !== undefined) {
        const n = Math.min(partial.length - this.partialLen, len - pos)
        partial.set(n === len ? chunk : chunk.subarray(pos, pos + n), this.partialLen)
        this.partialLen += n
        pos += n
        if (this.partialLen < partial.length) return undefined
        this.partial = undefined
        const frame = this.frameAt(partial, 0, partial.length - C.FRAME_OVERHEAD, this.partialOffset)
        if (frame instanceof AmqpError) return this.fail(frame)
        onFrame(frame)
        continue
      }
      const needed = this.headLen > 0 ? (this.head[0] === 0x41 ? 8 : 7) : chunk[pos] === 0x41 ? 8 : 7
      if (this.headLen > 0 || len - pos < needed) {
        const n = Math.min(needed - this.headLen, len - pos)
        this.head.set(chunk.subarray(pos, pos + n), this.headLen)
        this.headLen += n
        pos += n
        if (this.headLen < needed) return undefined
        const frameOffset = base + pos - this.headLen
        const size = checkHeader(this.head, 0, this.maxFrameSize, frameOffset)
        if (typeof size !== "number") return this.fail(size)
        const buf = new Uint8Array(size + C.FRAME_OVERHEAD)
        buf.set(this.head.subarray(0, 7))
        this.partial = buf
        this.partialLen = 7
        this.partialOffset = frameOffset
        this.headLen = 0
        continue
      }
      const size = checkHeader(chunk, pos, this.maxFrameSize, base + pos)
      if (typeof size !== "number") return this.fail(size)
      const total = size + C.FRAME_OVERHEAD
      if (len - pos >= total) {
        const frame = this.frameAt(chunk, pos, size, base)
        if (frame instanceof AmqpError) return this.fail(frame)
        pos += total
        onFrame(frame)
        continue
      }
      const buf = new Uint8Array(total)
      buf.set(chunk.subarray(pos), 0)
      this.partial = buf
      this.partialLen = len - pos
      this.partialOffset = base + pos
      return undefined
    }
    return undefined
  }

  /** Feeds chunks (a `transport.read` result) and returns the frames they complete. */
  push(...chunks: ReadonlyArray<Uint8Array>): Either.Either<Array<Frame>, AmqpError> {
    const frames: Array<Frame> = []
    const collect = (frame: Frame) => {
      frames.push(frame)
    }
    for (const chunk of chunks) {
      const error = this.feed(chunk, collect)
      if (error !== undefined) return Either.left(error)
    }
    return Either.right(frames)
  }
}

/**
 * Frames from a byte stream (for example `Transport.toStream(transport)`): one `Parser` per stream run, failing
 * the stream with the parser's `AmqpError`.
 *
 * @example
 * import { Frame } from "effect-wire/amqp"
 * import { Transport } from "effect-wire"
 *
 * const frames = Transport.toStream(transport).pipe(Frame.decodeStream({ maxFrameSize: 131072 }))
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeStream = (options?: ParserOptions) =>
<E, R>(self: Stream.Stream<Uint8Array, E, R>): Stream.Stream<Frame, E | AmqpError, R> =>
  Stream.suspend(() => {
    const parser = new Parser(options)
    return Stream.mapChunksEffect(self, (chunks) => {
      const frames: Array<Frame> = []
      const collect = (frame: Frame) => {
        frames.push(frame)
      }
      for (const chunk of chunks) {
        const error = parser.feed(chunk, collect)
        if (error !== undefined) return Effect.fail(error)
      }
      return Effect.succeed(Chunk.unsafeFromArray(frames))
    })
  })

/**
 * Decodes exactly one frame spanning all of `bytes`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array, options?: ParserOptions): Either.Either<Frame, AmqpError> => {
  const max = options?.maxFrameSize ?? C.FRAME_MAX_DEFAULT
  if (bytes.length < C.FRAME_OVERHEAD) {
    return Either.left(new AmqpError({ reason: "Malformed", offset: 0, size: bytes.length, detail: "shorter than a frame" }))
  }
  const size = checkHeader(bytes, 0, max, 0)
  if (typeof size !== "number") return Either.left(size)
  if (size + C.FRAME_OVERHEAD !== bytes.length) {
    return Either.left(
      new AmqpError({ reason: "Malformed", offset: 0, size: bytes.length, detail: `the frame announces ${size + C.FRAME_OVERHEAD} bytes` })
    )
  }
  const parser = new Parser({ maxFrameSize: max })
  let out: Frame | undefined
  const error = parser.feed(bytes, (frame) => {
    out = frame
  })
  return error !== undefined ? Either.left(error) : Either.right(out!)
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------------------

/**
 * The frame Schema (validation and Arbitrary generation of every frame type).
 *
 * @since 0.1.0
 * @category schemas
 */
export const Frame: Schema.Schema<Frame> = Schema.Union(
  Schema.TaggedStruct("Method", { channel: Table.Short, method: Methods.Method }),
  Schema.TaggedStruct("Header", {
    channel: Table.Short,
    classId: Schema.Literal(60),
    weight: Table.Short,
    bodySize: Table.LongLong,
    properties: Properties.BasicProperties
  }),
  Schema.TaggedStruct("Body", { channel: Table.Short, payload: Schema.Uint8ArrayFromSelf }),
  Schema.TaggedStruct("Heartbeat", { channel: Table.Short })
).annotations({ identifier: "Frame" })

/**
 * A frame from its bytes (exactly one frame, with no `frame_max` limit), running the parser's and the encoder's
 * own code.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FrameFromBytes: Schema.Schema<Frame, Uint8Array> = Schema.transformOrFail(Schema.Uint8ArrayFromSelf, Frame, {
  strict: true,
  decode: (bytes, _, ast) =>
    Either.mapLeft(decode(bytes, { maxFrameSize: Infinity }), (e) => new ParseResult.Type(ast, bytes, e.message)),
  encode: (frame, _, ast) => Either.mapLeft(encode(frame, { frameMax: 0 }), (e) => new ParseResult.Type(ast, frame, e.message))
}).annotations({ identifier: "FrameFromBytes" })
