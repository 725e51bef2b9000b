import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type { ReadResult } from "../Transport.js"
import { Eof } from "../Transport.js"
import type { TransportError } from "../TransportError.js"

type Resume<A, E> = (effect: Effect.Effect<A, E>) => void

interface Waiter {
  readonly limit: number
  readonly resume: Resume<void, TransportError>
}

/**
 * One direction of an in-memory byte pipe, bounded by a high-water mark.
 *
 * A writer's chunk is always accepted (so a single write larger than the mark still goes through), but the write
 * completes only once the buffer is back at or below the mark: memory is bounded by the mark plus one write per
 * writer. A read takes everything buffered at once.
 */
export class BytePipe {
  private chunks: Array<Uint8Array> = []
  private bytes = 0
  /** Set when the writer ended (`"eof"`) or the pipe was torn down (an error for the reader). */
  private readEnd: "open" | "eof" | TransportError = "open"
  /** Set when the reader went away: further writes fail with it. */
  private writeError: TransportError | undefined
  private reader: Resume<ReadResult, TransportError> | undefined
  private readerFiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  private waiters: Array<Waiter> = []
  private readonly endSignal = Deferred.unsafeMake<void>(FiberId.none)

  /** Completes once the writer ended or the pipe was torn down. */
  readonly awaitEnd: Effect.Effect<void> = Deferred.await(this.endSignal)

  constructor(readonly highWaterMark: number) {}

  get buffered(): number {
    return this.bytes
  }

  get isEnded(): boolean {
    return this.readEnd !== "open"
  }

  offer(chunks: ReadonlyArray<Uint8Array>, endedError: () => TransportError): Effect.Effect<void, TransportError> {
    return Effect.suspend(() => {
      if (this.writeError !== undefined) return Effect.fail(this.writeError)
      if (this.readEnd !== "open") return Effect.fail(endedError())
      for (const chunk of chunks) {
        if (chunk.length === 0) continue
        this.chunks.push(chunk)
        this.bytes += chunk.length
      }
      // A parked reader takes everything when it runs: the write is handed over now, as if it had taken it
      // already (memory stays within the mark plus this one write).
      if (this.reader !== undefined) {
        this.wakeReader()
        return Effect.void
      }
      return this.bytes > this.highWaterMark ? this.waitBelow(this.highWaterMark) : Effect.void
    })
  }

  /** Waits until at most `limit` bytes are buffered (0: everything was read). */
  waitBelow(limit: number): Effect.Effect<void, TransportError> {
    return Effect.async<void, TransportError>((resume) => {
      if (this.writeError !== undefined) return resume(Effect.fail(this.writeError))
      if (this.bytes <= limit) return resume(Effect.void)
      const waiter: Waiter = { limit, resume }
      this.waiters.push(waiter)
      return Effect.sync(() => {
        const index = this.waiters.indexOf(waiter)
        if (index >= 0) this.waiters.splice(index, 1)
      })
    })
  }

  /**
   * A read: what is buffered, at once, else park until the writer has news. As in the socket transport, a parked
   * reader has no canceler: an interrupted reader leaves a stale resume that does nothing when called, and the
   * fiber that is resumed takes the bytes itself, so none are lost.
   */
  readonly take: Effect.Effect<ReadResult, TransportError> = Effect.suspend(() => this.takeNow() ?? this.park)

  private readonly park: Effect.Effect<ReadResult, TransportError> = Effect.withFiberRuntime((fiber) => {
    const other = this.readerFiber
    // Another fiber parked and still alive is a second reader, unless it is this one after an interruption.
    if (this.reader !== undefined && other !== undefined && other !== fiber && other.unsafePoll() === null) {
      return Effect.dieMessage("BytePipe: concurrent reads on one transport")
    }
    this.readerFiber = fiber
    return this.parked
  })

  private readonly parked = Effect.async<ReadResult, TransportError>((resume) => {
    this.reader = resume
  })

  /** The writer half-closed: the reader gets the rest, then `Eof`. */
  end(): void {
    if (this.readEnd !== "open") return
    this.readEnd = "eof"
    Deferred.unsafeDone(this.endSignal, Effect.void)
    this.wakeReader()
  }

  /** The reader's side of the pipe is torn down: buffered bytes are lost and reads fail. */
  failRead(error: TransportError): void {
    if (this.readEnd !== "open" && this.readEnd !== "eof") return
    this.readEnd = error
    Deferred.unsafeDone(this.endSignal, Effect.void)
    this.chunks = []
    this.bytes = 0
    this.wakeReader()
  }

  /** The writer's side is torn down: writes in flight and later ones fail. */
  failWrite(error: TransportError): void {
    if (this.writeError !== undefined) return
    this.writeError = error
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter.resume(Effect.fail(error))
  }

  private takeNow(): Effect.Effect<ReadResult, TransportError> | undefined {
    if (this.chunks.length > 0) {
      const chunks = this.chunks as unknown as readonly [Uint8Array, ...Array<Uint8Array>]
      this.chunks = []
      this.bytes = 0
      this.wakeWaiters()
      return Effect.succeed(chunks)
    }
    if (this.readEnd === "eof") return Effect.succeed(Eof)
    if (this.readEnd !== "open") return Effect.fail(this.readEnd)
    return undefined
  }

  private wakeReader(): void {
    const reader = this.reader
    if (reader === undefined) return
    this.reader = undefined
    this.readerFiber = undefined
    reader(this.take)
  }

  private wakeWaiters(): void {
    if (this.waiters.length === 0) return
    const keep: Array<Waiter> = []
    for (const waiter of this.waiters) {
      if (this.bytes <= waiter.limit) waiter.resume(Effect.void)
      else keep.push(waiter)
    }
    this.waiters = keep
  }
}
