import type * as Frame from "../Frame.js"
import { plainBytes } from "../../internal/plainBytes.js"
import { ErrorCode, MuxError } from "../MuxError.js"

const empty = new Uint8Array(0)

/** How much GOAWAY debug text is kept (Go keeps 1 MiB); the rest is skipped. */
const maxDebug = 1024 * 1024

/**
 * Called with each DATA header before its payload is read. Returning `false` skips the payload as it streams in
 * (the frame is still returned, with an empty payload and `skipped` set), so a frame for an unknown stream or one
 * that overruns its window never allocates `length` bytes.
 */
export interface DataFilter {
  // A method, not a closure: every session's is the same function, so the decoder's optimised code stays valid
  // from one session to the next.
  acceptData(streamId: number, flags: number, length: number): boolean
}

const enum State {
  Header,
  Payload
}

/**
 * The incremental muxado frame parser. `push` transport chunks, then call `next` until it returns `undefined`
 * (more bytes needed). Payloads that sit inside one chunk are returned as views of it, without copying.
 * After an error the decoder stays failed.
 */
export class Decoder {
  private chunks: Array<Uint8Array> = []
  private offset = 0
  private bytes = 0
  private state = State.Header
  private failure: MuxError | undefined
  // The current frame while its payload streams in.
  private type = 0
  private flags = 0
  private streamId = 0
  private length = 0
  private remaining = 0
  private keep = true
  private payload: Uint8Array = empty
  private filled = 0
  /** For the last DATA frame returned: how many payload bytes were skipped instead of kept. */
  skipped = 0
  private first = true

  /**
   * @param streaming deliver kept DATA payloads piece by piece as they arrive (each piece a `Data` with SYN on
   *   the first and FIN on the last), so a reader can consume, and grant credit for, the start of a large frame
   *   before its end arrives. Off for `decode`, which wants whole frames.
   */
  constructor(readonly streaming = false) {}

  private nextPiece(): Frame.Data | undefined {
    if (this.bytes === 0) return undefined
    const head = this.chunks[0]!
    const n = Math.min(head.length - this.offset, this.remaining)
    const payload = head.subarray(this.offset, this.offset + n)
    this.consume(n)
    this.remaining -= n
    const first = this.first
    this.first = false
    const last = this.remaining === 0
    if (last) this.state = State.Header
    return {
      _tag: "Data",
      streamId: this.streamId,
      syn: first && (this.flags & 0x2) !== 0,
      fin: last && (this.flags & 0x1) !== 0,
      payload
    }
  }

  /** Bytes pushed but not yet consumed. */
  get buffered(): number {
    return this.bytes
  }

  /** Whether a frame is partly read (a transport EOF now means a truncated frame). */
  get midFrame(): boolean {
    return this.state === State.Payload || this.bytes > 0
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return
    // Every chunk, header and payload view is a plain Uint8Array: Node's sockets give Buffers, and a Buffer among
    // Uint8Arrays (a header split across reads, an empty payload) is a new map for the optimised read path, which
    // then deoptimises, at a random moment of a transfer, and runs slower until it is optimised again.
    this.chunks.push(plainBytes(chunk))
    this.bytes += chunk.length
  }

  next(filter?: DataFilter): Frame.Frame | MuxError | undefined {
    if (this.failure !== undefined) return this.failure
    if (this.state === State.Header) {
      if (this.bytes < 8) return undefined
      const h = this.readHeader()
      const b3 = h[3]!
      this.length = (h[0]! << 16) | (h[1]! << 8) | h[2]!
      this.type = b3 >>> 4
      this.flags = b3 & 0x0f
      const rawId = ((h[4]! << 24) | (h[5]! << 16) | (h[6]! << 8) | h[7]!) >>> 0
      this.streamId = rawId
      const error = this.checkHeader(rawId)
      if (error !== undefined) return this.fail(error)
      this.remaining = this.length
      this.filled = 0
      this.skipped = 0
      this.keep = this.type === 1
        ? (filter === undefined || filter.acceptData(this.streamId, this.flags, this.length))
        : this.type <= 3
      this.payload = empty
      this.first = true
      this.state = State.Payload
    }
    if (this.streaming && this.type === 1 && this.keep && this.length > 0) return this.nextPiece()
    if (!this.readPayload()) return undefined
    this.state = State.Header
    return this.finish()
  }

  private fail(error: MuxError): MuxError {
    this.failure = error
    this.chunks = []
    this.bytes = 0
    return error
  }

  private readHeader(): Uint8Array {
    const head = this.chunks[0]!
    if (head.length - this.offset >= 8) {
      const view = head.subarray(this.offset, this.offset + 8)
      this.consume(8)
      return view
    }
    const out = new Uint8Array(8)
    this.copyInto(out, 0, 8)
    return out
  }

  private checkHeader(rawId: number): MuxError | undefined {
    const type = this.type
    if (type > 3) return undefined // unknown types are skipped whatever they hold
    if (rawId > 0x7fffffff) return protocol(`reserved bit set in stream id 0x${rawId.toString(16)}`)
    switch (type) {
      case 0:
        if (this.length !== 4) return frameSize(`illegal RST frame length: 0x${this.length.toString(16)}`)
        if (rawId === 0) return protocol("RST on stream 0")
        return undefined
      case 1:
        if (rawId === 0) return protocol("DATA on stream 0")
        return undefined
      case 2:
        if (this.length !== 4) return frameSize(`illegal WNDINC frame length: 0x${this.length.toString(16)}`)
        if (rawId === 0) return protocol("WNDINC on stream 0")
        return undefined
      default:
        if (this.length < 8) return frameSize(`illegal GOAWAY frame length: 0x${this.length.toString(16)}`)
        if (rawId !== 0) return protocol(`GOAWAY on stream 0x${rawId.toString(16)}`)
        return undefined
    }
  }

  /** Moves payload bytes from the chunks into the frame (or past them); `true` once the payload is complete. */
  private readPayload(): boolean {
    while (this.remaining > 0) {
      if (this.bytes === 0) return false
      const head = this.chunks[0]!
      const available = Math.min(head.length - this.offset, this.remaining)
      if (this.keep) {
        if (this.payload === empty && this.filled === 0 && available === this.length) {
          // The whole payload sits in one chunk: a view, no copy.
          this.payload = head.subarray(this.offset, this.offset + available)
        } else {
          if (this.payload === empty) {
            this.payload = new Uint8Array(this.type === 3 ? Math.min(this.length, 8 + maxDebug) : this.length)
          }
          const room = this.payload.length - this.filled
          const n = Math.min(room, available)
          if (n > 0) this.payload.set(head.subarray(this.offset, this.offset + n), this.filled)
          this.filled += n
        }
      } else {
        this.skipped += available
      }
      this.remaining -= available
      this.consume(available)
    }
    return true
  }

  private finish(): Frame.Frame | MuxError {
    const payload = this.payload
    this.payload = empty
    switch (this.type) {
      case 0:
        return { _tag: "Rst", streamId: this.streamId, code: u32(payload, 0) }
      case 1:
        return {
          _tag: "Data",
          streamId: this.streamId,
          syn: (this.flags & 0x2) !== 0,
          fin: (this.flags & 0x1) !== 0,
          payload
        }
      case 2: {
        const increment = u32(payload, 0) & 0x7fffffff
        if (increment === 0) return this.fail(protocol("WNDINC with increment 0"))
        return { _tag: "WndInc", streamId: this.streamId, increment }
      }
      case 3:
        return {
          _tag: "GoAway",
          lastStreamId: u32(payload, 0) & 0x7fffffff,
          code: u32(payload, 4),
          debug: payload.subarray(8)
        }
      default:
        return { _tag: "Unknown", type: this.type, flags: this.flags, streamId: this.streamId & 0x7fffffff, length: this.length }
    }
  }

  private consume(n: number): void {
    this.bytes -= n
    this.offset += n
    while (this.chunks.length > 0 && this.offset >= this.chunks[0]!.length) {
      this.offset -= this.chunks[0]!.length
      this.chunks.shift()
    }
  }

  private copyInto(out: Uint8Array, at: number, n: number): void {
    let written = 0
    while (written < n) {
      const head = this.chunks[0]!
      const take = Math.min(head.length - this.offset, n - written)
      out.set(head.subarray(this.offset, this.offset + take), at + written)
      written += take
      this.consume(take)
    }
  }
}

const u32 = (bytes: Uint8Array, offset: number): number =>
  ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0

const protocol = (detail: string) => new MuxError({ reason: "ProtocolError", code: ErrorCode.ProtocolError, detail })
const frameSize = (detail: string) => new MuxError({ reason: "FrameSizeError", code: ErrorCode.FrameSizeError, detail })
