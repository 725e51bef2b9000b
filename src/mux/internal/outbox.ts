import * as Effect from "effect/Effect"
import { FrameType, u32Frame } from "../Frame.js"
import type { MuxError } from "../MuxError.js"

type Resume<A, E = never> = (effect: Effect.Effect<A, E>) => void

/** A queued DATA frame: its bytes, its stream, and whether that stream was reset since (then it is dropped). */
export interface Entry {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly bytes: number
  readonly owner: Owner
}

/** The stream a DATA frame belongs to: a field read, not a closure per stream for the writer to call. */
export interface Owner {
  readonly isReset: boolean
}

/** One stream's queued frames, in order. */
interface Lane {
  readonly owner: object
  readonly entries: Array<Entry>
  head: number
  bytes: number
}

interface Waiter {
  readonly owner: object
  readonly resume: Resume<void, MuxError>
}

/**
 * What the session's writer fiber sends, in three lanes drained in this order:
 *
 * 1. control frames (RSTs), pushed without waiting by the reader fiber;
 * 2. window increments, summed per stream while the writer is behind, so this lane is bounded by the number of
 *    streams and the reader never waits for it;
 * 3. DATA frames from stream writers, bounded by `highWaterMark` bytes: a writer's frame is always taken, then
 *    the writer waits until the queue is back under the mark. Each stream has its own lane, and the writer
 *    takes one frame per stream in turn, so a stream with a large write cannot starve the others.
 *
 * Window increments alone are not worth a transport write of their own at once: the writer holds them until the
 * event loop's current round of I/O is over (`setImmediate`), so the increments for every read of that round
 * leave summed in one write, and a frame queued meanwhile takes them along at once. A stream bulk-reading over
 * loopback otherwise pays one write syscall (and the peer one wake-up and read) for every socket read.
 *
 * `finish` appends a last frame (GOAWAY) after everything queued; nothing is accepted after it.
 */
export class Outbox {
  private control: Array<Uint8Array> = []
  private windows = new Map<number, number>()
  private readonly lanes = new Map<object, Lane>()
  /** Lanes with frames, in round-robin order. */
  private ring: Array<Lane> = []
  private dataBytes = 0
  private closedWith: MuxError | undefined
  private last: Uint8Array | undefined
  private finished = false
  private writer: Resume<void> | undefined
  /** While the writer holds window increments back: the `setImmediate` that releases it. */
  private holding: ReturnType<typeof setImmediate> | undefined
  private waiters: Array<Waiter> = []

  constructor(
    readonly highWaterMark: number,
    /** Bytes one stream may have queued before its writer waits: no stream can fill the queue alone. */
    readonly laneHighWaterMark: number,
    readonly maxControl: number,
    readonly batchBytes: number
  ) {}

  get queuedBytes(): number {
    return this.dataBytes
  }

  /** Queues a control frame; `false` when the control lane is full (the caller kills the session). */
  pushControl(frame: Uint8Array): boolean {
    if (this.closedWith !== undefined) return true
    if (this.control.length >= this.maxControl) return false
    this.control.push(frame)
    this.wakeWriter()
    return true
  }

  grant(streamId: number, increment: number): void {
    if (this.closedWith !== undefined || increment <= 0) return
    this.windows.set(streamId, (this.windows.get(streamId) ?? 0) + increment)
    if (this.holding === undefined) this.wakeWriter()
  }

  offer(entry: Entry): Effect.Effect<void, MuxError> {
    return Effect.suspend(() => {
      if (this.closedWith !== undefined) return Effect.fail(this.closedWith)
      this.push(entry)
      return this.full(entry.owner) ? this.waitRoom(entry.owner) : Effect.void
    })
  }

  /**
   * Queues `entry` at once if the outbox is open and stays under both marks with it; `false` (nothing queued)
   * otherwise, and the caller goes the way of `offer`.
   */
  tryOffer(entry: Entry): boolean {
    if (this.closedWith !== undefined || this.dataBytes + entry.bytes > this.highWaterMark) return false
    const lane = this.lanes.get(entry.owner)
    if (lane !== undefined && lane.bytes + entry.bytes > this.laneHighWaterMark) return false
    this.push(entry)
    return true
  }

  private push(entry: Entry): void {
    let lane = this.lanes.get(entry.owner)
    if (lane === undefined) {
      lane = { owner: entry.owner, entries: [], head: 0, bytes: 0 }
      this.lanes.set(entry.owner, lane)
      this.ring.push(lane)
    }
    lane.entries.push(entry)
    lane.bytes += entry.bytes
    this.dataBytes += entry.bytes
    this.wakeWriter()
  }

  private full(owner: object): boolean {
    return this.dataBytes > this.highWaterMark || (this.lanes.get(owner)?.bytes ?? 0) > this.laneHighWaterMark
  }

  private waitRoom(owner: object): Effect.Effect<void, MuxError> {
    return Effect.async<void, MuxError>((resume) => {
      if (this.closedWith !== undefined) return resume(Effect.fail(this.closedWith))
      if (!this.full(owner)) return resume(Effect.void)
      const waiter: Waiter = { owner, resume }
      this.waiters.push(waiter)
      return Effect.sync(() => {
        const index = this.waiters.indexOf(waiter)
        if (index >= 0) this.waiters.splice(index, 1)
      })
    })
  }

  /** No more offers; `last` (if any) goes out after what is queued, then `take` returns `undefined`. */
  finish(error: MuxError, last: Uint8Array | undefined): void {
    if (this.closedWith !== undefined) return
    this.closedWith = error
    this.last = last
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter.resume(Effect.fail(error))
    this.wakeWriter()
  }

  /** Drops everything still queued (the transport is gone). */
  clear(): void {
    this.control = []
    this.windows.clear()
    this.lanes.clear()
    this.ring = []
    this.dataBytes = 0
    this.last = undefined
  }

  /**
   * The writer's next batch of buffers, or `undefined` once finished and drained. A waiting writer is only
   * woken: it takes its batch when it runs, so whatever the other fibers queue meanwhile (a stream's WNDINC and
   * its reply, the frames of several streams) leaves in the same transport write.
   */
  readonly take: Effect.Effect<ReadonlyArray<Uint8Array> | undefined> = Effect.suspend(() => {
    if (this.onlyWindows()) return Effect.flatMap(this.hold, () => this.takeNext)
    return this.takeNext
  })

  private readonly takeNext: Effect.Effect<ReadonlyArray<Uint8Array> | undefined> = Effect.suspend(() => {
    const batch = this.takeNow()
    return batch !== null ? Effect.succeed(batch) : Effect.flatMap(this.waitWork, () => this.take)
  })

  private onlyWindows(): boolean {
    return this.windows.size > 0 && this.control.length === 0 && this.ring.length === 0 && this.closedWith === undefined
  }

  /** Waits for the end of this turn's I/O, or for a frame that is not a window increment. */
  private readonly hold: Effect.Effect<void> = Effect.async<void>((resume) => {
    this.writer = resume
    this.holding = setImmediate(this.release)
    return Effect.sync(() => {
      if (this.writer === resume) this.writer = undefined
      this.unhold()
    })
  })

  private readonly release = (): void => {
    this.holding = undefined
    this.wakeWriter()
  }

  private unhold(): void {
    if (this.holding === undefined) return
    clearImmediate(this.holding)
    this.holding = undefined
  }

  private readonly waitWork: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.hasWork()) return resume(Effect.void)
    this.writer = resume
    return Effect.sync(() => {
      if (this.writer === resume) this.writer = undefined
    })
  })

  private hasWork(): boolean {
    return this.control.length > 0 || this.windows.size > 0 || this.ring.length > 0 ||
      (this.closedWith !== undefined && !this.finished)
  }

  /** `null`: nothing yet. */
  private takeNow(): ReadonlyArray<Uint8Array> | undefined | null {
    if (this.finished) return undefined
    const out: Array<Uint8Array> = []
    if (this.control.length > 0) {
      for (const frame of this.control) out.push(frame)
      this.control = []
    }
    if (this.windows.size > 0) {
      for (const [streamId, increment] of this.windows) {
        out.push(u32Frame(FrameType.WndInc, streamId, Math.min(increment, 0x7fffffff)))
      }
      this.windows.clear()
    }
    // Round robin: one frame from each stream per pass, until the batch is full.
    let budget = this.batchBytes
    while (this.ring.length > 0 && budget > 0) {
      const next: Array<Lane> = []
      for (let i = 0; i < this.ring.length; i++) {
        const lane = this.ring[i]!
        if (budget <= 0) {
          next.push(lane)
          continue
        }
        const entry = lane.entries[lane.head]!
        lane.head++
        lane.bytes -= entry.bytes
        this.dataBytes -= entry.bytes
        if (!entry.owner.isReset) {
          for (const chunk of entry.chunks) out.push(chunk)
          budget -= entry.bytes
        }
        if (lane.head < lane.entries.length) {
          if (lane.head > 64) {
            lane.entries.splice(0, lane.head)
            lane.head = 0
          }
          next.push(lane)
        } else {
          this.lanes.delete(lane.owner)
        }
      }
      this.ring = next
    }
    if (this.waiters.length > 0 && this.dataBytes <= this.highWaterMark) {
      const waiters = this.waiters
      this.waiters = []
      for (const waiter of waiters) {
        if (this.full(waiter.owner)) this.waiters.push(waiter)
        else waiter.resume(Effect.void)
      }
    }
    if (out.length === 0 && this.closedWith !== undefined && this.ring.length === 0) {
      this.finished = true
      if (this.last !== undefined) {
        const last = this.last
        this.last = undefined
        return [last]
      }
      return undefined
    }
    return out.length === 0 ? null : out
  }

  private wakeWriter(): void {
    const writer = this.writer
    if (writer === undefined) return
    this.writer = undefined
    this.unhold()
    writer(Effect.void)
  }
}
