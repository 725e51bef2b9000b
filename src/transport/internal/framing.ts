/**
 * The incremental frame parsers behind `Framing`. Pure and synchronous: bytes in, frames out, bounded memory.
 *
 * A frame that lies inside one input chunk is returned as a `subarray` of it (no copy); only frames that span
 * chunks are assembled, into a buffer allocated once at the frame's final size after its length is known and
 * checked against the limit.
 */
import * as Either from "effect/Either"
import type { Decoder } from "../Framing.js"
import { FramingError } from "../Framing.js"

/** Reads the total frame length (header included) from the complete header at `offset`, or fails. */
export type Measure = (bytes: Uint8Array, offset: number) => number | FramingError

const slabSize = 16 * 1024
const slabThreshold = 1024

/**
 * Frames reassembled from pieces are cut from a shared slab, as Node's `Buffer` pool does: allocating a typed
 * array per small frame costs more than decoding it. A frame keeps its slab alive while it is referenced.
 */
class Allocator {
  private slab = new Uint8Array(0)
  private offset = 0

  allocate(size: number): Uint8Array {
    if (size > slabThreshold) return new Uint8Array(size)
    if (this.offset + size > this.slab.length) {
      this.slab = new Uint8Array(slabSize)
      this.offset = 0
    }
    const out = this.slab.subarray(this.offset, this.offset + size)
    this.offset += size
    return out
  }
}

/** Copies `source[start, end)` to `target` at `at`; short runs by hand, which beats creating a view. */
const copy = (target: Uint8Array, at: number, source: Uint8Array, start: number, end: number): void => {
  if (end - start <= 32) {
    for (let i = start; i < end; i++) target[at++] = source[i]!
  } else {
    target.set(source.subarray(start, end), at)
  }
}

const ok = <A>(value: A): Either.Either<A, FramingError> => Either.right(value)
const none: ReadonlyArray<Uint8Array> = []

/**
 * What every incremental decoder shares: after its first error it stays failed, a push that yields frames before
 * an error hands them out (the error is then in `error`), and input that ends inside a frame is `Truncated`.
 */
abstract class IncrementalDecoder implements Decoder {
  private failed: FramingError | undefined = undefined

  abstract get buffered(): number

  /** Decodes `chunk`, appending complete frames to `out`; returns the error that stops decoding, if any. */
  protected abstract run(chunk: Uint8Array, out: Array<Uint8Array>): FramingError | undefined
  /** Drops what is buffered, after a failure. */
  protected abstract reset(): void
  protected abstract truncated(buffered: number): string

  get error(): FramingError | undefined {
    return this.failed
  }

  push(chunk: Uint8Array): Either.Either<ReadonlyArray<Uint8Array>, FramingError> {
    if (this.failed !== undefined) return Either.left(this.failed)
    if (chunk.length === 0) return ok(none)
    const out: Array<Uint8Array> = []
    const error = this.run(chunk, out)
    return error === undefined || out.length > 0 ? ok(out) : Either.left(error)
  }

  pushAll(chunks: Iterable<Uint8Array>): Either.Either<ReadonlyArray<Uint8Array>, FramingError> {
    if (this.failed !== undefined) return Either.left(this.failed)
    const out: Array<Uint8Array> = []
    for (const chunk of chunks) {
      if (chunk.length === 0) continue
      const error = this.run(chunk, out)
      if (error !== undefined) return out.length > 0 ? ok(out) : Either.left(error)
    }
    return ok(out)
  }

  end(): Either.Either<void, FramingError> {
    if (this.failed !== undefined) return Either.left(this.failed)
    const buffered = this.buffered
    if (buffered === 0) return Either.void
    return Either.left(
      this.fail(new FramingError({ reason: "Truncated", size: buffered, detail: this.truncated(buffered) }))
    )
  }

  protected fail(error: FramingError): FramingError {
    this.failed = error
    this.reset()
    return error
  }
}

/**
 * Frames that announce their length in a fixed-size header: length-prefixed frames (`strip` = prefix size, the
 * frame handed out is the body) and header + body frames (`strip` = 0, the whole frame is handed out).
 */
export class LengthDecoder extends IncrementalDecoder {
  private readonly header: Uint8Array
  private headerFill = 0
  private frame: Uint8Array | undefined = undefined
  private frameFill = 0
  private readonly allocator = new Allocator()

  constructor(
    private readonly headerSize: number,
    private readonly strip: number,
    private readonly measure: Measure,
    private readonly maxFrameSize: number
  ) {
    super()
    this.header = new Uint8Array(headerSize)
  }

  get buffered(): number {
    return this.headerFill + this.frameFill
  }

  protected truncated(buffered: number): string {
    return `the input ended inside a frame (${buffered} bytes buffered)`
  }

  protected reset(): void {
    this.header.fill(0)
    this.headerFill = 0
    this.frame = undefined
    this.frameFill = 0
  }

  /** The delivered size of the frame whose header is at `offset`, or the error that rejects it. */
  private size(bytes: Uint8Array, offset: number): number | FramingError {
    const total = this.measure(bytes, offset)
    if (typeof total !== "number") return this.fail(total)
    if (!Number.isSafeInteger(total) || total < this.headerSize) {
      return this.fail(
        new FramingError({ reason: "InvalidLength", size: total, detail: `frame length ${total} is not valid` })
      )
    }
    const size = total - this.strip
    if (size > this.maxFrameSize) {
      return this.fail(
        new FramingError({ reason: "FrameTooLarge", size, maxFrameSize: this.maxFrameSize })
      )
    }
    return size
  }

  protected run(chunk: Uint8Array, out: Array<Uint8Array>): FramingError | undefined {
    const n = chunk.length
    const h = this.headerSize
    let off = 0
    while (off < n) {
      if (this.frame === undefined) {
        if (this.headerFill === 0 && n - off >= h) {
          // The header is in this chunk: read it in place.
          const size = this.size(chunk, off)
          if (typeof size !== "number") return size
          const total = size + this.strip
          if (n - off >= total) {
            out.push(chunk.subarray(off + this.strip, off + total))
            off += total
            continue
          }
          const frame = this.allocator.allocate(size)
          copy(frame, 0, chunk, off + this.strip, n)
          this.frame = frame
          this.frameFill = n - off - this.strip
          return undefined
        }
        const take = Math.min(h - this.headerFill, n - off)
        copy(this.header, this.headerFill, chunk, off, off + take)
        this.headerFill += take
        off += take
        if (this.headerFill < h) return undefined
        const size = this.size(this.header, 0)
        if (typeof size !== "number") return size
        this.headerFill = 0
        const frame = this.allocator.allocate(size)
        if (this.strip === 0) copy(frame, 0, this.header, 0, h)
        this.frameFill = h - this.strip
        if (this.frameFill === size) {
          this.frameFill = 0
          out.push(frame)
        } else {
          this.frame = frame
        }
      } else {
        const frame = this.frame
        const take = Math.min(frame.length - this.frameFill, n - off)
        copy(frame, this.frameFill, chunk, off, off + take)
        this.frameFill += take
        off += take
        if (this.frameFill === frame.length) {
          this.frame = undefined
          this.frameFill = 0
          out.push(frame)
        }
      }
    }
    return undefined
  }
}

/** Where `delimiter` first occurs in `bytes` at or after `from`, or -1. */
export const indexOf = (bytes: Uint8Array, delimiter: Uint8Array, from: number): number => {
  const k = delimiter.length
  const first = delimiter[0]!
  if (k === 1) return bytes.indexOf(first, from)
  let i = bytes.indexOf(first, from)
  while (i >= 0 && i + k <= bytes.length) {
    let j = 1
    while (j < k && bytes[i + j] === delimiter[j]) j++
    if (j === k) return i
    i = bytes.indexOf(first, i + 1)
  }
  return -1
}

/** The first `length` bytes of `chunks` in one buffer (the chunks hold at least that many). */
const concatPrefix = (allocator: Allocator, chunks: ReadonlyArray<Uint8Array>, length: number): Uint8Array => {
  if (chunks.length === 1) return chunks[0]!.subarray(0, length)
  const out = allocator.allocate(length)
  let offset = 0
  for (const chunk of chunks) {
    if (offset >= length) break
    const take = Math.min(chunk.length, length - offset)
    copy(out, offset, chunk, 0, take)
    offset += take
  }
  return out
}

/** Frames ended by a delimiter (which is not part of the frame). */
export class DelimiterDecoder extends IncrementalDecoder {
  private pending: Array<Uint8Array> = []
  private pendingBytes = 0
  private readonly allocator = new Allocator()

  constructor(private readonly delimiter: Uint8Array, private readonly maxFrameSize: number) {
    super()
  }

  get buffered(): number {
    return this.pendingBytes
  }

  protected truncated(buffered: number): string {
    return `the input ended before the delimiter (${buffered} bytes buffered)`
  }

  protected reset(): void {
    this.pending = []
    this.pendingBytes = 0
  }

  private tooLarge(size: number): FramingError {
    return this.fail(new FramingError({ reason: "FrameTooLarge", size, maxFrameSize: this.maxFrameSize }))
  }

  private takePending(length: number): Uint8Array {
    const frame = concatPrefix(this.allocator, this.pending, length)
    this.pending = []
    this.pendingBytes = 0
    return frame
  }

  protected run(chunk: Uint8Array, out: Array<Uint8Array>): FramingError | undefined {
    const d = this.delimiter
    const k = d.length
    const n = chunk.length
    let off = 0
    if (this.pendingBytes > 0 && k > 1) {
      // A delimiter may have started in the pending tail: probe the seam.
      const tailLength = Math.min(k - 1, this.pendingBytes)
      const headLength = Math.min(k - 1, n)
      const probe = new Uint8Array(tailLength + headLength)
      let filled = tailLength
      for (let i = this.pending.length - 1; filled > 0; i--) {
        const piece = this.pending[i]!
        const take = Math.min(piece.length, filled)
        probe.set(piece.subarray(piece.length - take), filled - take)
        filled -= take
      }
      probe.set(chunk.subarray(0, headLength), tailLength)
      for (let s = 0; s < tailLength && s + k <= probe.length; s++) {
        let j = 0
        while (j < k && probe[s + j] === d[j]) j++
        if (j === k) {
          const length = this.pendingBytes - tailLength + s
          if (length > this.maxFrameSize) return this.tooLarge(length)
          out.push(this.takePending(length))
          off = s + k - tailLength
          break
        }
      }
    }
    while (off < n) {
      const index = indexOf(chunk, d, off)
      if (index < 0) break
      const length = this.pendingBytes + index - off
      if (length > this.maxFrameSize) return this.tooLarge(length)
      if (this.pendingBytes > 0) {
        this.pending.push(chunk.subarray(off, index))
        out.push(this.takePending(length))
      } else {
        out.push(chunk.subarray(off, index))
      }
      off = index + k
    }
    if (off < n) {
      this.pending.push(off === 0 ? chunk : chunk.subarray(off))
      this.pendingBytes += n - off
      // At most k - 1 pending bytes can be the start of the delimiter; the rest is frame.
      const atLeast = this.pendingBytes - (k - 1)
      if (atLeast > this.maxFrameSize) return this.tooLarge(atLeast)
    }
    return undefined
  }
}
