/**
 * Framing: cutting a byte stream into frames and back.
 *
 * Three framings cover the protocols of effect-wire and most others:
 *
 * - `lengthPrefixed`: a 1, 2, 4 or 8 byte length (big or little endian) before each frame;
 * - `delimiter`: frames ended by a byte sequence (`\n`, `\r\n`, `\0`, …);
 * - `headerLength`: a fixed-size header from which a function computes the body length — AMQP's 7-byte frame
 *   header (+ frame-end octet) and muxado's 8-byte header are the intended users.
 *
 * Each framing makes incremental `Decoder`s: plain objects that take chunks as they arrive and return the
 * complete frames so far, usable directly on `transport.read` results. The `Stream` transforms and `dispatch`
 * are built on the same decoders. A decoder never throws, never grows a buffer beyond the maximum frame size and
 * returns a frame that lies inside one chunk as a `subarray` of that chunk, without copying.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Channel from "effect/Channel"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Mailbox from "effect/Mailbox"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { DelimiterDecoder, LengthDecoder } from "./internal/framing.js"
import * as Transport from "./Transport.js"
import type { TransportError } from "./TransportError.js"

/**
 * Why framing failed.
 *
 * - `FrameTooLarge`: a frame is longer than the maximum frame size (`size` and `maxFrameSize` say by how much).
 * - `Truncated`: the input ended inside a frame (`size` bytes were left over).
 * - `InvalidLength`: a length prefix or header announced an impossible length.
 * - `InvalidHeader`: the header function of `headerLength` rejected a header.
 * - `InvalidFrame`: a frame cannot be encoded (for example it contains the delimiter).
 *
 * @since 0.1.0
 * @category models
 */
export type FramingErrorReason = "FrameTooLarge" | "Truncated" | "InvalidLength" | "InvalidHeader" | "InvalidFrame"

/**
 * @since 0.1.0
 * @category errors
 */
export class FramingError extends Data.TaggedError("FramingError")<{
  readonly reason: FramingErrorReason
  /** The size involved: the frame's length, or the bytes left over for `Truncated`. */
  readonly size?: number | undefined
  readonly maxFrameSize?: number | undefined
  readonly detail?: string | undefined
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.size !== undefined) parts.push(`size=${this.size}`)
    if (this.maxFrameSize !== undefined) parts.push(`maxFrameSize=${this.maxFrameSize}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}

/**
 * An incremental frame parser. Frames returned by `push` are views: into the pushed chunk when the frame lies
 * inside it, else into a buffer the decoder allocated (small frames share a 16 KiB slab). The caller must not
 * modify a chunk after pushing it, and must use a frame's `byteOffset` when it reads its `buffer`.
 *
 * When the input turns malformed after some complete frames of the same call, `push` returns those frames and
 * the decoder is failed: `error` holds the error, and every later call fails with it. Callers that must not
 * wait for more input check `error` after handling the frames.
 *
 * @since 0.1.0
 * @category models
 */
export interface Decoder {
  /** Adds a chunk; returns the frames it completed (often none, possibly many). */
  readonly push: (chunk: Uint8Array) => Either.Either<ReadonlyArray<Uint8Array>, FramingError>
  /** Adds several chunks, e.g. one `transport.read` result. */
  readonly pushAll: (chunks: Iterable<Uint8Array>) => Either.Either<ReadonlyArray<Uint8Array>, FramingError>
  /** The input ended: fails with `Truncated` when a partial frame is left. */
  readonly end: () => Either.Either<void, FramingError>
  /** Bytes held for the frame in progress. */
  readonly buffered: number
  /** The error that failed the decoder, if any. */
  readonly error: FramingError | undefined
}

/**
 * A framing that can decode: it makes a fresh `Decoder` for each byte stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Framer {
  readonly maxFrameSize: number
  readonly decoder: () => Decoder
}

/**
 * A framing that can also encode frames.
 *
 * @since 0.1.0
 * @category models
 */
export interface Codec extends Framer {
  /** The frame with its framing, in one new buffer. */
  readonly encode: (frame: Uint8Array) => Either.Either<Uint8Array, FramingError>
  /** The frame with its framing as chunks that share the frame's memory, for `transport.writeAll`. */
  readonly encodeChunks: (frame: Uint8Array) => Either.Either<ReadonlyArray<Uint8Array>, FramingError>
}

/**
 * The maximum frame size when none is given: 16 MiB.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxFrameSize = 16 * 1024 * 1024

/**
 * @since 0.1.0
 * @category models
 */
export interface LengthPrefixedOptions {
  /** Size of the length prefix in bytes. Default: 4. */
  readonly prefixSize?: 1 | 2 | 4 | 8 | undefined
  /** Byte order of the prefix. Default: `"big"`. */
  readonly endian?: "big" | "little" | undefined
  /** Whether the length counts the prefix itself. Default: `false`. */
  readonly includesPrefix?: boolean | undefined
  /** Largest frame body accepted or produced. Default: `defaultMaxFrameSize`. */
  readonly maxFrameSize?: number | undefined
}

const readLength = (bytes: Uint8Array, at: number, size: 1 | 2 | 4 | 8, little: boolean): number => {
  switch (size) {
    case 1:
      return bytes[at]!
    case 2:
      return little ? bytes[at]! | (bytes[at + 1]! << 8) : (bytes[at]! << 8) | bytes[at + 1]!
    case 4:
      return little
        ? bytes[at]! + bytes[at + 1]! * 0x100 + bytes[at + 2]! * 0x10000 + bytes[at + 3]! * 0x1000000
        : bytes[at]! * 0x1000000 + bytes[at + 1]! * 0x10000 + bytes[at + 2]! * 0x100 + bytes[at + 3]!
    case 8: {
      const first = readLength(bytes, at, 4, little)
      const second = readLength(bytes, at + 4, 4, little)
      const [high, low] = little ? [second, first] : [first, second]
      // Beyond 2^53 the length cannot be exact: report it as invalid.
      return high >= 0x200000 ? Number.POSITIVE_INFINITY : high * 0x100000000 + low
    }
  }
}

const writeLength = (target: Uint8Array, size: 1 | 2 | 4 | 8, little: boolean, length: number): void => {
  const view = new DataView(target.buffer, target.byteOffset, size)
  switch (size) {
    case 1:
      return view.setUint8(0, length)
    case 2:
      return view.setUint16(0, length, little)
    case 4:
      return view.setUint32(0, length, little)
    case 8:
      return view.setBigUint64(0, BigInt(length), little)
  }
}

/**
 * Frames preceded by their length.
 *
 * @example
 * ```ts
 * import { Framing } from "effect-wire/transport"
 *
 * // 2-byte little-endian length that counts itself
 * const framing = Framing.lengthPrefixed({ prefixSize: 2, endian: "little", includesPrefix: true })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const lengthPrefixed = (options?: LengthPrefixedOptions): Codec => {
  const prefixSize = options?.prefixSize ?? 4
  const little = options?.endian === "little"
  const includesPrefix = options?.includesPrefix ?? false
  const adjust = includesPrefix ? 0 : prefixSize
  const maxFrameSize = options?.maxFrameSize ?? defaultMaxFrameSize
  // The largest body the prefix can express.
  const prefixLimit = (prefixSize === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * prefixSize) - 1) - prefixSize + adjust
  const measure = (bytes: Uint8Array, at: number) => readLength(bytes, at, prefixSize, little) + adjust
  const prefix = (frame: Uint8Array): Either.Either<Uint8Array, FramingError> => {
    if (frame.length > maxFrameSize || frame.length > prefixLimit) {
      return Either.left(
        new FramingError({ reason: "FrameTooLarge", size: frame.length, maxFrameSize: Math.min(maxFrameSize, prefixLimit) })
      )
    }
    const header = new Uint8Array(prefixSize)
    writeLength(header, prefixSize, little, frame.length + prefixSize - adjust)
    return Either.right(header)
  }
  return {
    maxFrameSize,
    decoder: () => new LengthDecoder(prefixSize, prefixSize, measure, maxFrameSize),
    encode: (frame) =>
      Either.map(prefix(frame), (header) => {
        const out = new Uint8Array(prefixSize + frame.length)
        out.set(header)
        out.set(frame, prefixSize)
        return out
      }),
    encodeChunks: (frame) => Either.map(prefix(frame), (header) => [header, frame])
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DelimiterOptions {
  /** Largest frame accepted or produced, delimiter excluded. Default: `defaultMaxFrameSize`. */
  readonly maxFrameSize?: number | undefined
}

/**
 * Frames ended by a delimiter: a string (encoded as UTF-8) or bytes. The delimiter is not part of the frame.
 *
 * @since 0.1.0
 * @category constructors
 */
export const delimiter = (delimiter: string | Uint8Array, options?: DelimiterOptions): Codec => {
  const bytes = typeof delimiter === "string" ? new TextEncoder().encode(delimiter) : delimiter.slice()
  if (bytes.length === 0) {
    // An empty delimiter would match everywhere; reject it where it is made.
    return invalidFramer("the delimiter must not be empty")
  }
  const maxFrameSize = options?.maxFrameSize ?? defaultMaxFrameSize
  const check = (frame: Uint8Array): FramingError | undefined => {
    if (frame.length > maxFrameSize) {
      return new FramingError({ reason: "FrameTooLarge", size: frame.length, maxFrameSize })
    }
    if (frame.length >= bytes.length && indexOfBytes(frame, bytes) >= 0) {
      return new FramingError({ reason: "InvalidFrame", size: frame.length, detail: "the frame contains the delimiter" })
    }
    // A frame ending in a prefix of the delimiter would merge with it on the wire.
    for (let k = Math.min(bytes.length - 1, frame.length); k > 0; k--) {
      if (endsWithPrefix(frame, bytes, k)) {
        return new FramingError({
          reason: "InvalidFrame",
          size: frame.length,
          detail: "the frame ends with the start of the delimiter"
        })
      }
    }
    return undefined
  }
  return {
    maxFrameSize,
    decoder: () => new DelimiterDecoder(bytes, maxFrameSize),
    encode: (frame) => {
      const error = check(frame)
      if (error !== undefined) return Either.left(error)
      const out = new Uint8Array(frame.length + bytes.length)
      out.set(frame)
      out.set(bytes, frame.length)
      return Either.right(out)
    },
    encodeChunks: (frame) => {
      const error = check(frame)
      return error !== undefined ? Either.left(error) : Either.right([frame, bytes])
    }
  }
}

const indexOfBytes = (haystack: Uint8Array, needle: Uint8Array): number => {
  outer: for (let i = haystack.indexOf(needle[0]!); i >= 0 && i + needle.length <= haystack.length; i = haystack.indexOf(needle[0]!, i + 1)) {
    for (let j = 1; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return i
  }
  return -1
}

const endsWithPrefix = (frame: Uint8Array, delimiter: Uint8Array, k: number): boolean => {
  const start = frame.length - k
  for (let j = 0; j < k; j++) if (frame[start + j] !== delimiter[j]) return false
  return true
}

const invalidFramer = (detail: string): Codec => {
  const error = new FramingError({ reason: "InvalidFrame", detail })
  const failing: Decoder = {
    push: () => Either.left(error),
    pushAll: () => Either.left(error),
    end: () => Either.left(error),
    buffered: 0,
    error
  }
  return {
    maxFrameSize: 0,
    decoder: () => failing,
    encode: () => Either.left(error),
    encodeChunks: () => Either.left(error)
  }
}

/**
 * Newline-delimited frames (`\n`). A `\r` before the newline is kept: use `delimiter("\r\n")` for CRLF lines.
 *
 * @since 0.1.0
 * @category constructors
 */
export const lines = (options?: DelimiterOptions): Codec => delimiter("\n", options)

/**
 * @since 0.1.0
 * @category models
 */
export interface HeaderLengthOptions {
  /** Size of the fixed header in bytes. */
  readonly headerSize: number
  /**
   * The number of bytes that follow the header, computed from the complete header (frame-end octets or
   * trailers included), or a `FramingError` that rejects the header. The header passed in is only valid
   * during the call.
   */
  readonly bodyLength: (header: Uint8Array) => number | FramingError
  /** Largest whole frame (header + body) accepted. Default: `defaultMaxFrameSize`. */
  readonly maxFrameSize?: number | undefined
}

/**
 * Frames with a fixed-size header that determines the body length. Each frame is handed out whole, header
 * included.
 *
 * @example
 * ```ts
 * import { Framing } from "effect-wire/transport"
 *
 * // AMQP 0-9-1: type (1) channel (2) size (4), payload, frame-end 0xCE
 * const amqp = Framing.headerLength({
 *   headerSize: 7,
 *   bodyLength: (h) => ((h[3]! << 24) >>> 0) + (h[4]! << 16) + (h[5]! << 8) + h[6]! + 1,
 *   maxFrameSize: 131072
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const headerLength = (options: HeaderLengthOptions): Framer => {
  const { bodyLength, headerSize } = options
  const maxFrameSize = options.maxFrameSize ?? defaultMaxFrameSize
  if (!Number.isSafeInteger(headerSize) || headerSize < 1) {
    return invalidFramer(`headerSize must be a positive integer, got ${headerSize}`)
  }
  const measure = (bytes: Uint8Array, at: number) => {
    const body = bodyLength(at === 0 && bytes.length === headerSize ? bytes : bytes.subarray(at, at + headerSize))
    if (typeof body !== "number") return body
    return body < 0 ? Number.NaN : headerSize + body
  }
  return {
    maxFrameSize,
    decoder: () => new LengthDecoder(headerSize, 0, measure, maxFrameSize)
  }
}

/**
 * The framing as a `Schema` from a complete byte buffer to its frames, for validating, decoding and encoding
 * captured traffic with the Schema tools. It runs the same decoder and encoder as the streaming paths; input
 * that ends inside a frame fails with the `Truncated` message.
 *
 * @since 0.1.0
 * @category schemas
 */
export const schema = (codec: Codec): Schema.Schema<ReadonlyArray<Uint8Array>, Uint8Array> =>
  Schema.transformOrFail(Schema.Uint8ArrayFromSelf, Schema.Array(Schema.Uint8ArrayFromSelf), {
    strict: true,
    decode: (bytes, _, ast) => {
      const fail = (error: FramingError) => ParseResult.fail(new ParseResult.Type(ast, bytes, error.message))
      const decoder = codec.decoder()
      const frames = decoder.push(bytes)
      if (Either.isLeft(frames)) return fail(frames.left)
      if (decoder.error !== undefined) return fail(decoder.error)
      const end = decoder.end()
      return Either.isLeft(end) ? fail(end.left) : ParseResult.succeed(frames.right)
    },
    encode: (frames, _, ast) => {
      const out: Array<Uint8Array> = []
      for (const frame of frames) {
        const encoded = codec.encodeChunks(frame)
        if (Either.isLeft(encoded)) return ParseResult.fail(new ParseResult.Type(ast, frames, encoded.left.message))
        for (const piece of encoded.right) out.push(piece)
      }
      return ParseResult.succeed(Transport.concat(out))
    }
  })

/**
 * The decoder as a `Channel` over byte chunks, failing with `FramingError` on malformed input and with
 * `Truncated` when the input ends inside a frame.
 *
 * @since 0.1.0
 * @category streams
 */
export const decodeChannel = <E = never>(
  framer: Framer
): Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, E | FramingError, E, void, unknown> =>
  Channel.suspend(() => {
    const decoder = framer.decoder()
    const loop: Channel.Channel<Chunk.Chunk<Uint8Array>, Chunk.Chunk<Uint8Array>, E | FramingError, E, void, unknown> =
      Channel.readWithCause({
        onInput: (input: Chunk.Chunk<Uint8Array>) => {
          const result = decoder.pushAll(input)
          if (Either.isLeft(result)) return Channel.fail(result.left)
          const frames = result.right
          const next = decoder.error === undefined ? loop : Channel.fail(decoder.error)
          return frames.length === 0
            ? next
            : Channel.zipRight(Channel.write(Chunk.unsafeFromArray(frames as Array<Uint8Array>)), next)
        },
        onFailure: (cause: Cause.Cause<E>) => Channel.failCause(cause),
        onDone: () => {
          const result = decoder.end()
          return Either.isLeft(result) ? Channel.fail(result.left) : Channel.void
        }
      })
    return loop
  })

/**
 * Cuts a byte stream into frames.
 *
 * @since 0.1.0
 * @category streams
 */
export const decode: {
  (framer: Framer): <E, R>(self: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, E | FramingError, R>
  <E, R>(self: Stream.Stream<Uint8Array, E, R>, framer: Framer): Stream.Stream<Uint8Array, E | FramingError, R>
} = dual(
  2,
  <E, R>(self: Stream.Stream<Uint8Array, E, R>, framer: Framer): Stream.Stream<Uint8Array, E | FramingError, R> =>
    Stream.pipeThroughChannel(self, decodeChannel<E>(framer))
)

/**
 * Frames a stream of frames into bytes.
 *
 * @since 0.1.0
 * @category streams
 */
export const encode: {
  (codec: Codec): <E, R>(self: Stream.Stream<Uint8Array, E, R>) => Stream.Stream<Uint8Array, E | FramingError, R>
  <E, R>(self: Stream.Stream<Uint8Array, E, R>, codec: Codec): Stream.Stream<Uint8Array, E | FramingError, R>
} = dual(
  2,
  <E, R>(self: Stream.Stream<Uint8Array, E, R>, codec: Codec): Stream.Stream<Uint8Array, E | FramingError, R> =>
    Stream.mapChunksEffect(self, (frames) => {
      const out: Array<Uint8Array> = []
      for (const frame of frames) {
        const encoded = codec.encodeChunks(frame)
        if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
        for (const piece of encoded.right) out.push(piece)
      }
      return Effect.succeed(Chunk.unsafeFromArray(out))
    })
)

/**
 * The frames arriving on a transport, ending when the peer ends its side.
 *
 * @since 0.1.0
 * @category streams
 */
export const frames = (
  transport: Transport.Transport,
  framer: Framer
): Stream.Stream<Uint8Array, TransportError | FramingError> => decode(Transport.toStream(transport), framer)

/**
 * Writes frames to a transport, encoded with `codec`, as one `writeAll`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const write = (
  transport: Transport.Transport,
  codec: Codec,
  ...frames: ReadonlyArray<Uint8Array>
): Effect.Effect<void, TransportError | FramingError> =>
  Effect.suspend((): Effect.Effect<void, TransportError | FramingError> => {
    const out: Array<Uint8Array> = []
    for (const frame of frames) {
      const encoded = codec.encodeChunks(frame)
      if (Either.isLeft(encoded)) return Effect.fail(encoded.left)
      for (const piece of encoded.right) out.push(piece)
    }
    return transport.writeAll(out)
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface DispatchOptions {
  /** Frames decoded ahead of the handler; at the limit the reader stops reading the transport. Default: 10. */
  readonly queueSize?: number | undefined
}

/**
 * A message protocol: one reader fiber decodes frames from the transport into a bounded queue, one dispatcher
 * calls `handler` for each frame, in order, one at a time.
 *
 * While the queue is full the reader stops pulling the transport, so a slow handler pauses the peer instead of
 * buffering without bound. The returned effect runs until the end:
 *
 * - it succeeds once the peer ended its side (`Eof`) and every frame received was handled;
 * - it fails with the `TransportError` that ended the transport (a reset, a close) or the `FramingError` of
 *   malformed input, after handling the frames received before it;
 * - it fails with the handler's error at once, and stops reading.
 *
 * Interrupting it stops both fibers. The transport stays open: its owner closes it.
 *
 * @since 0.1.0
 * @category combinators
 */
export const dispatch = <E, R>(
  transport: Transport.Transport,
  framer: Framer,
  handler: (frame: Uint8Array) => Effect.Effect<void, E, R>,
  options?: DispatchOptions
): Effect.Effect<void, E | TransportError | FramingError, R> =>
  Effect.gen(function*() {
    const queue = yield* Mailbox.make<Uint8Array, TransportError | FramingError>(
      Math.max(1, options?.queueSize ?? 10)
    )
    const decoder = framer.decoder()
    const read: Effect.Effect<void, TransportError | FramingError> = Effect.flatMap(transport.read, (result) => {
      if (Transport.isEof(result)) {
        const end = decoder.end()
        return Either.isLeft(end) ? Effect.fail(end.left) : Effect.void
      }
      const decoded = decoder.pushAll(result)
      if (Either.isLeft(decoded)) return Effect.fail(decoded.left)
      const frames = decoded.right
      const next = decoder.error === undefined ? read : Effect.fail(decoder.error)
      // Offering suspends while the queue is full, and so does the next read.
      return frames.length === 0 ? next : Effect.zipRight(offerEach(queue, frames), next)
    })
    // A forked child is interrupted when this fiber ends, whichever way.
    yield* Effect.fork(Effect.interruptible(Mailbox.into(read, queue)))
    while (true) {
      const frame = yield* queue.take.pipe(
        Effect.catchTag("NoSuchElementException", () => Effect.succeed(undefined))
      )
      if (frame === undefined) return
      yield* handler(frame)
    }
  })

const offerEach = (
  queue: Mailbox.Mailbox<Uint8Array, TransportError | FramingError>,
  frames: ReadonlyArray<Uint8Array>
): Effect.Effect<void> => {
  let i = 0
  // offer one by one so the queue never holds more than its capacity
  return Effect.whileLoop({
    while: () => i < frames.length,
    body: () => queue.offer(frames[i++]!),
    step: () => {}
  })
}
