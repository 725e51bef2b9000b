import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import { Flag, FrameType, HeaderSize, writeHeader } from "../Frame.js"
import { ErrorCode, MuxError } from "../MuxError.js"
import type { Entry } from "./outbox.js"

type Resume<A, E> = (effect: Effect.Effect<A, E>) => void

/** The end of a stream's inbound bytes (the peer sent FIN). */
export const StreamEof: unique symbol = Symbol.for("effect-wire/mux/Stream/Eof")
export type StreamEof = typeof StreamEof

/** What a stream needs from its session. */
export interface Host {
  readonly windowSize: number
  /** Our receive buffer per stream (at least `windowSize`): the rest is granted on the peer's first frame. */
  readonly receiveWindow: number
  /** The receive window a stream whose reader keeps up may grow to (no growth when not above `receiveWindow`). */
  readonly maxReceiveWindow: number
  /**
   * Takes up to `bytes` of the session's budget for windows grown beyond `receiveWindow`, for a stream; returns
   * what it got (0 when the budget is spent).
   */
  readonly reserveWindow: (bytes: number) => number
  readonly frameCap: number
  readonly thresholdUpdates: boolean
  /** A deadline for each `write`, covering the wait for window and for the writer queue. */
  readonly streamWriteTimeout: Duration.Duration | undefined
  /** The session's error once it has ended. */
  readonly dead: MuxError | undefined
  readonly offer: (entry: Entry) => Effect.Effect<void, MuxError>
  /** Queues `entry` now if that needs no wait (see `Outbox.tryOffer`); `false` when nothing was queued. */
  readonly tryOffer: (entry: Entry) => boolean
  readonly grant: (streamId: number, increment: number) => void
  readonly sendRst: (streamId: number, code: number) => void
  /** Removes the stream from the table (and remembers a reset ID for a while). */
  readonly detach: (stream: StreamCore, reset: boolean) => void
}

/** Payloads up to this size are copied next to their header: one buffer per frame is cheaper than two. */
const copyBelow = 16 * 1024

/**
 * A reader that consumes a whole receive window within this time doubles it (up to `maxReceiveWindow`). Without
 * round-trip samples (muxado has no ping but the optional heartbeat), a window drained this fast is taken as a
 * sign that it, not the reader, limits the stream: every refill costs both processes a wake-up, and a process
 * descheduled for a few milliseconds stalls a 256 KiB window on a fast link.
 */
const fastWindowMillis = 20

/**
 * The state of one stream, shared by the session's reader fiber (which only ever calls the synchronous
 * `deliver*` / `fail*` methods) and the application fibers (`read`, `write`, `closeWrite`, `close`, `reset`).
 */
export class StreamCore {
  // inbound
  private chunks: Array<Uint8Array> = []
  private head = 0
  buffered = 0
  finReceived = false
  private readError: MuxError | undefined
  private reader: Resume<void, never> | undefined
  /** A parked `readAll`, resumed with the read itself. */
  private allReader: Resume<ReadonlyArray<Uint8Array> | StreamEof, MuxError> | undefined
  /** The fiber of the parked reader (either kind). */
  private readerFiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  private unacked = 0
  /** What the peer may have in flight and unread: `windowSize` until the extra receive credit is granted. */
  receiveLimit: number
  /** Bytes of the session's window budget this stream holds (its growth beyond `receiveWindow`). */
  grown = 0
  /** The current tuning epoch: when it began, and the bytes consumed since. */
  private epochStart = performance.now()
  private epochBytes = 0
  // outbound
  sendWindow: number
  synSent: boolean
  finSent = false
  private writeError: MuxError | undefined
  private writerWait: Resume<void, never> | undefined
  private readonly lock = Effect.unsafeMakeSemaphore(1)
  /** Writers holding or waiting for `lock`. */
  private writers = 0
  // lifecycle
  /** Completes when the stream is done in both directions, or fails with what ended it. */
  readonly ended = Deferred.unsafeMake<void, MuxError>(FiberId.none)
  attached = true
  isReset = false
  readClosed = false

  constructor(
    readonly id: number,
    readonly local: boolean,
    private readonly host: Host
  ) {
    this.sendWindow = host.windowSize
    this.receiveLimit = host.windowSize
    this.synSent = !local
  }

  // ---- reader-fiber side ------------------------------------------------------------------------------------

  deliver(payload: Uint8Array, fin: boolean): void {
    // The peer's first frame proves it knows the stream (Go ignores a WNDINC for a stream it does not know yet):
    // now it may have the whole receive window.
    if (this.receiveLimit < this.host.receiveWindow && !fin && !this.readClosed) {
      this.host.grant(this.id, this.host.receiveWindow - this.receiveLimit)
      this.receiveLimit = this.host.receiveWindow
    }
    if (payload.length > 0 && !this.readClosed) {
      this.chunks.push(payload)
      this.buffered += payload.length
    }
    if (fin) this.finReceived = true
    if (this.buffered > 0 || fin) this.wakeReader()
    if (fin) this.maybeDetach()
  }

  addWindow(increment: number): void {
    this.sendWindow += increment
    this.wakeWriter()
  }

  /** The stream ends with `error`: buffered data stays readable, then reads fail; writes fail at once. */
  fail(error: MuxError, reset: boolean): void {
    Deferred.unsafeDone(this.ended, Effect.fail(error))
    if (reset) this.isReset = true
    if (this.readError === undefined) this.readError = error
    if (this.writeError === undefined) this.writeError = error
    this.wakeReader()
    this.wakeWriter()
  }

  // ---- application side -------------------------------------------------------------------------------------

  /** Up to `max` buffered bytes (at least one), `StreamEof`, or the stream's error. */
  read(max: number): Effect.Effect<ReadonlyArray<Uint8Array> | StreamEof, MuxError> {
    if (max === Number.POSITIVE_INFINITY) return this.readAll
    return Effect.suspend(() => {
      const ready = this.takeNow(max)
      if (ready !== undefined) return ready
      return Effect.flatMap(this.waitReadable, () => this.read(max))
    })
  }

  /**
   * Everything buffered, made once per stream: a bulk reader parks once per transport read, and a wake-up hands
   * it the read itself, so a read allocates what the fiber needs to park and resume and nothing more.
   */
  readonly readAll: Effect.Effect<ReadonlyArray<Uint8Array> | StreamEof, MuxError> = Effect.suspend(() =>
    this.takeNow(Number.POSITIVE_INFINITY) ?? this.parkReadAll
  )

  private get readable(): boolean {
    return this.buffered > 0 || this.finReceived || this.readError !== undefined || this.readClosed
  }

  /**
   * Parks a reader. A parked reader has no canceler (an `Effect.async` with one wraps every park in an interrupt
   * handler, which costs more than the rest of the read): an interrupted reader leaves a stale resume that does
   * nothing when called, and the next reader takes its place. A second reader while a live one waits dies.
   */
  private readonly parkReadAll: Effect.Effect<ReadonlyArray<Uint8Array> | StreamEof, MuxError> = Effect
    .withFiberRuntime((fiber) => {
      if (this.readable) return this.readAll
      if (this.otherReader(fiber)) return Effect.dieMessage("mux stream: concurrent reads")
      this.readerFiber = fiber
      return this.parkedReadAll
    })

  private readonly parkedReadAll: Effect.Effect<ReadonlyArray<Uint8Array> | StreamEof, MuxError> = Effect.async(
    (resume) => {
      this.reader = undefined
      this.allReader = resume
    }
  )

  private readonly waitReadable: Effect.Effect<void> = Effect.withFiberRuntime((fiber) => {
    if (this.readable) return Effect.void
    if (this.otherReader(fiber)) return Effect.dieMessage("mux stream: concurrent reads")
    this.readerFiber = fiber
    return this.parkedWait
  })

  private readonly parkedWait: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.allReader = undefined
    this.reader = resume
  })

  /** Whether another fiber, still running, waits to read (a reader interrupted while parked does not count). */
  private otherReader(fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean {
    const other = this.readerFiber
    return (this.reader !== undefined || this.allReader !== undefined) && other !== undefined && other !== fiber &&
      other.unsafePoll() === null
  }

  private takeNow(max: number): Effect.Effect<ReadonlyArray<Uint8Array> | StreamEof, MuxError> | undefined {
    if (this.readClosed) return Effect.fail(this.closedError("read side closed"))
    if (this.buffered > 0) return Effect.succeed(this.takeChunks(max))
    if (this.finReceived) return Effect.succeed(StreamEof)
    if (this.readError !== undefined) return Effect.fail(this.readError)
    return undefined
  }

  /** Exactly `n` bytes if that many are buffered now (without waiting), else `undefined`. */
  takeExactlyNow(n: number): ReadonlyArray<Uint8Array> | undefined {
    return this.readClosed || this.buffered < n ? undefined : this.takeChunks(n)
  }

  /** Takes up to `max` buffered bytes (there is at least one) and returns their credit. */
  private takeChunks(max: number): Array<Uint8Array> {
    if (this.head === 0 && max >= this.buffered) {
      // All of it: the buffer itself is the result.
      const all = this.chunks
      const taken = this.buffered
      this.chunks = []
      this.buffered = 0
      this.consumed(taken)
      return all
    }
    const out: Array<Uint8Array> = []
    let taken = 0
    while (this.head < this.chunks.length && taken < max) {
      const chunk = this.chunks[this.head]!
      if (taken + chunk.length <= max) {
        out.push(chunk)
        taken += chunk.length
        this.head++
      } else {
        const n = max - taken
        out.push(chunk.subarray(0, n))
        this.chunks[this.head] = chunk.subarray(n)
        taken += n
      }
    }
    if (this.head === this.chunks.length) {
      this.chunks = []
      this.head = 0
    } else if (this.head > 64) {
      this.chunks = this.chunks.slice(this.head)
      this.head = 0
    }
    this.buffered -= taken
    this.consumed(taken)
    return out
  }

  /** Returns credit to the peer as the application consumes: per read (as Go does) or once half the window is. */
  private consumed(n: number): void {
    if (this.isReset || this.host.dead !== undefined) return
    const grown = this.tune(n)
    if (grown > 0) this.host.grant(this.id, grown)
    if (!this.host.thresholdUpdates) return this.host.grant(this.id, n)
    this.unacked += n
    if (this.unacked >= this.receiveLimit / 2) {
      this.host.grant(this.id, this.unacked)
      this.unacked = 0
    }
  }

  /**
   * Counts `n` consumed bytes in the current epoch; once a whole window is consumed, starts a new epoch and, if
   * that took less than `fastWindowMillis`, doubles the window within the limits. Returns the extra credit.
   */
  private tune(n: number): number {
    this.epochBytes += n
    if (this.epochBytes < this.receiveLimit || this.receiveLimit >= this.host.maxReceiveWindow) return 0
    const now = performance.now()
    const fast = now - this.epochStart < fastWindowMillis
    this.epochStart = now
    this.epochBytes = 0
    if (!fast || this.readClosed) return 0
    const extra = this.host.reserveWindow(Math.min(this.receiveLimit, this.host.maxReceiveWindow - this.receiveLimit))
    this.receiveLimit += extra
    this.grown += extra
    return extra
  }

  write(bytes: Uint8Array): Effect.Effect<void, MuxError> {
    if (bytes.length === 0) return Effect.void
    return Effect.suspend(() => {
      // The common case takes no lock and no deadline: nobody else is writing, the write is one frame within the
      // window, and the outbox has room, so the frame is queued now and there is nothing to wait for.
      const n = bytes.length
      if (this.writers === 0 && n <= this.sendWindow && n <= this.host.frameCap && this.writeBlocked() === undefined) {
        const synSent = this.synSent
        if (this.host.tryOffer(this.dataFrame(bytes, false))) {
          this.sendWindow -= n
          return Effect.void
        }
        this.synSent = synSent
      }
      return this.writeLocked(bytes)
    })
  }

  private writeLocked(bytes: Uint8Array): Effect.Effect<void, MuxError> {
    const write = this.locked(Effect.suspend(() => this.writeFrom(bytes, 0)))
    const timeout = this.host.streamWriteTimeout
    // Interruption by the deadline leaves only the frames already queued: the rest is never sent.
    return timeout === undefined ? write : Effect.timeoutFail(write, {
      duration: timeout,
      onTimeout: () =>
        new MuxError({
          reason: "Timeout",
          code: ErrorCode.StreamCancelled,
          streamId: this.id,
          detail: "write timed out waiting for the peer's window"
        })
    })
  }

  /** Runs `effect` holding the write lock; while it waits or runs, `write` takes no shortcut past it. */
  private locked<A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> {
    return Effect.suspend(() => {
      this.writers++
      return Effect.ensuring(
        this.lock.withPermits(1)(effect),
        Effect.sync(() => {
          this.writers--
        })
      )
    })
  }

  private writeFrom(bytes: Uint8Array, offset: number): Effect.Effect<void, MuxError> {
    const error = this.writeBlocked()
    if (error !== undefined) return Effect.fail(error)
    if (this.sendWindow <= 0) return Effect.flatMap(this.waitWindow, () => this.writeFrom(bytes, offset))
    const n = Math.min(this.sendWindow, this.host.frameCap, bytes.length - offset)
    this.sendWindow -= n
    const entry = this.dataFrame(bytes.subarray(offset, offset + n), false)
    const next = offset + n
    return next === bytes.length
      ? this.host.offer(entry)
      : Effect.flatMap(this.host.offer(entry), () => this.writeFrom(bytes, next))
  }

  private writeBlocked(): MuxError | undefined {
    if (this.writeError !== undefined) return this.writeError
    if (this.finSent) return this.closedError("write side closed")
    return this.host.dead
  }

  private readonly waitWindow: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.sendWindow > 0 || this.writeBlocked() !== undefined) return resume(Effect.void)
    this.writerWait = resume
    return Effect.sync(() => {
      if (this.writerWait === resume) this.writerWait = undefined
    })
  })

  /** Sends an empty SYN now, so the peer sees the stream before we write anything. */
  readonly openEagerly: Effect.Effect<void, MuxError> = this.locked(Effect.suspend(() => {
    if (this.synSent) return Effect.void
    const error = this.writeBlocked()
    return error !== undefined ? Effect.fail(error) : this.host.offer(this.dataFrame(new Uint8Array(0), false))
  }))

  /** Half-close: an empty DATA+FIN, after an empty SYN of its own if the stream never went on the wire. */
  readonly closeWrite: Effect.Effect<void, MuxError> = this.locked(Effect.suspend(() => {
    if (this.finSent) return Effect.void
    const error = this.writeError ?? this.host.dead
    if (error !== undefined) return Effect.fail(error)
    return this.sendFin()
  }))

  /** Queues the FIN (after an empty SYN if the stream never went on the wire); call with the lock held. */
  private sendFin(): Effect.Effect<void, MuxError> {
    const syn = this.synSent ? undefined : this.dataFrame(new Uint8Array(0), false)
    const fin = this.dataFrame(new Uint8Array(0), true)
    this.finSent = true
    const send = syn === undefined ? this.host.offer(fin) : Effect.zipRight(this.host.offer(syn), this.host.offer(fin))
    return Effect.ensuring(send, Effect.sync(() => this.maybeDetach()))
  }

  /**
   * Full close, as Go's `Close()`: FIN if the stream is on the wire and has not sent one, drop the read side,
   * leave the session's table (later DATA from the peer draws RST 4). A stream never sent stays invisible.
   */
  readonly close: Effect.Effect<void> = Effect.suspend(() => {
    if (this.readClosed && (this.finSent || this.isReset)) return Effect.void
    this.readClosed = true
    this.chunks = []
    this.head = 0
    this.buffered = 0
    this.wakeReader()
    const needsFin = this.synSent && !this.finSent && !this.isReset && this.host.dead === undefined &&
      this.writeError === undefined
    if (!needsFin) {
      this.finSent = true
      this.detach(false)
      return Effect.void
    }
    // A writer waiting for window gives up, so the FIN does not wait behind it for ever.
    this.writeError = this.closedError("stream closed")
    this.wakeWriter()
    return this.locked(Effect.suspend(() => this.sendFin())).pipe(
      Effect.ignore,
      Effect.ensuring(Effect.sync(() => this.detach(false)))
    )
  })

  /** Resets the stream with `code`: an RST goes out (if the peer knows the stream) and both directions fail. */
  reset(code: number): Effect.Effect<void> {
    return Effect.sync(() => {
      if (this.isReset || !this.attached) return
      if (this.synSent && this.host.dead === undefined) this.host.sendRst(this.id, code)
      const error = new MuxError({ reason: "StreamReset", code, streamId: this.id, remote: false })
      this.chunks = []
      this.head = 0
      this.buffered = 0
      this.fail(error, true)
      this.detach(true)
    })
  }

  private dataFrame(payload: Uint8Array, fin: boolean): Entry {
    const flags = (this.synSent ? 0 : Flag.Syn) | (fin ? Flag.Fin : 0)
    this.synSent = true
    const length = payload.length
    if (length <= copyBelow) {
      const frame = new Uint8Array(HeaderSize + length)
      writeHeader(frame, 0, length, FrameType.Data, flags, this.id)
      frame.set(payload, HeaderSize)
      return { chunks: [frame], bytes: frame.length, owner: this }
    }
    const header = new Uint8Array(HeaderSize)
    writeHeader(header, 0, length, FrameType.Data, flags, this.id)
    return { chunks: [header, payload], bytes: HeaderSize + length, owner: this }
  }

  private maybeDetach(): void {
    if ((this.finReceived || this.readClosed) && this.finSent) this.detach(false)
  }

  private detach(reset: boolean): void {
    Deferred.unsafeDone(this.ended, Effect.void)
    if (!this.attached) return
    this.attached = false
    this.host.detach(this, reset)
  }

  private closedError(detail: string): MuxError {
    return new MuxError({ reason: "StreamClosed", code: ErrorCode.StreamClosed, streamId: this.id, detail })
  }

  private wakeReader(): void {
    this.readerFiber = undefined
    const reader = this.reader
    if (reader !== undefined) {
      this.reader = undefined
      return reader(Effect.void)
    }
    const allReader = this.allReader
    if (allReader !== undefined) {
      this.allReader = undefined
      allReader(this.readAll)
    }
  }

  private wakeWriter(): void {
    const writer = this.writerWait
    if (writer === undefined) return
    this.writerWait = undefined
    writer(Effect.void)
  }
}
