import * as Effect from "effect/Effect"
import type { Message } from "../Frame.js"

type Resume = (effect: Effect.Effect<void>) => void

/**
 * Wakes fibers waiting for a condition on shared socket state (a pipe has room, a peer attached, …).
 * Waiters re-check their condition when registering, so a notification between check and wait is never lost.
 */
export class Signal {
  private waiters: Array<{ readonly ready: () => boolean; readonly resume: Resume }> = []

  waitUntil(ready: () => boolean): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (ready()) return resume(Effect.void)
      const waiter = { ready, resume }
      this.waiters.push(waiter)
      return Effect.sync(() => {
        const index = this.waiters.indexOf(waiter)
        if (index >= 0) this.waiters.splice(index, 1)
      })
    })
  }

  notify(): void {
    if (this.waiters.length === 0) return
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) {
      if (waiter.ready()) waiter.resume(Effect.void)
      else this.waiters.push(waiter)
    }
  }
}

/** A FIFO with O(1) shift that compacts as it drains. */
class Fifo<A> {
  private items: Array<A> = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: A): void {
    this.items.push(item)
  }

  shift(): A | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]!
    this.items[this.head++] = undefined as unknown as A
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }

  /** Takes up to `max` items, stopping after the one that brings their total weight to `budget`. */
  drain(max: number, weight: (item: A) => number, budget: number): Array<A> {
    const end = Math.min(this.items.length, this.head + max)
    let index = this.head
    let total = 0
    while (index < end) {
      total += weight(this.items[index]!)
      index++
      if (total >= budget) break
    }
    const out = this.items.slice(this.head, index)
    this.head = index
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return out
  }

  clear(): void {
    this.items = []
    this.head = 0
  }
}

const messageBytes = (message: Message): number => {
  let bytes = 0
  for (let i = 0; i < message.length; i++) bytes += message[i]!.length
  return bytes
}

/** Frames the writer sends ahead of messages: commands, or single-frame ZMTP 3.0 subscription messages. */
export interface ControlFrame {
  readonly command: boolean
  readonly body: Uint8Array
}

/** A batch for one connection's writer: control frames first, then messages. */
export interface Batch {
  readonly control: ReadonlyArray<ControlFrame>
  readonly messages: ReadonlyArray<Message>
}

/**
 * The outbound queue towards one peer, bounded by the send high-water mark (in messages). Control commands
 * (PONG, PING, subscriptions) bypass the mark: the protocol bounds them. One writer drains it at a time.
 */
export class Pipe {
  private readonly messages = new Fifo<Message>()
  private control: Array<ControlFrame> = []
  private reader: Resume | undefined
  private idleWaiters: Array<Resume> = []
  private wakePending = false

  constructor(
    readonly capacity: number,
    /** Called when the pipe goes from full to having room. */
    private readonly onRoom: () => void
  ) {}

  get size(): number {
    return this.messages.length
  }

  get isFull(): boolean {
    return this.messages.length >= this.capacity
  }

  /** Queues a message unless the pipe is full. */
  offer(message: Message): boolean {
    if (this.messages.length >= this.capacity) return false
    this.messages.push(message)
    this.wake()
    return true
  }

  offerControl(frame: ControlFrame): void {
    this.control.push(frame)
    this.wake()
  }

  /** Drops everything queued (the peer is gone for good). */
  clear(): void {
    const wasFull = this.isFull
    this.messages.clear()
    this.control = []
    if (wasFull) this.onRoom()
  }

  /** Whether the writer has written everything it took and waits for more. */
  get isIdle(): boolean {
    return this.reader !== undefined && this.control.length === 0 && this.messages.length === 0
  }

  /** Completes once everything queued has been written (the writer is back waiting on an empty pipe). */
  readonly awaitIdle: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.isIdle) return resume(Effect.void)
    // Someone waits for the bytes to leave (a closing socket): no point in waiting for the turn to end.
    if (this.wakePending) this.wakeNow()
    this.idleWaiters.push(resume)
    return Effect.sync(() => {
      const index = this.idleWaiters.indexOf(resume)
      if (index >= 0) this.idleWaiters.splice(index, 1)
    })
  })

  /**
   * Waits for anything to send and takes up to `max` messages, and no more than about `maxBytes` of them: what a
   * writer holds outside the pipe (beyond the high-water mark) stays small even for large messages.
   */
  take(max: number, maxBytes: number): Effect.Effect<Batch> {
    return Effect.async<Batch>((resume) => {
      if (this.control.length > 0 || this.messages.length > 0) return resume(Effect.succeed(this.takeNow(max, maxBytes)))
      this.reader = () => resume(Effect.succeed(this.takeNow(max, maxBytes)))
      if (this.idleWaiters.length > 0) {
        const waiters = this.idleWaiters
        this.idleWaiters = []
        for (const waiter of waiters) waiter(Effect.void)
      }
      return Effect.sync(() => {
        this.reader = undefined
      })
    })
  }

  private takeNow(max: number, maxBytes: number): Batch {
    const wasFull = this.isFull
    const control = this.control
    if (control.length > 0) this.control = []
    const messages = this.messages.drain(max, messageBytes, maxBytes)
    if (wasFull && !this.isFull) this.onRoom()
    return { control, messages }
  }

  /**
   * Wakes the waiting writer at the end of this event-loop turn rather than at once: whatever else the turn queues
   * for this peer (the replies to every message of one read, say) goes out in the same write. A write costs a
   * system call on each side, far more than a message's framing.
   */
  private wake() {
    if (this.reader !== undefined && !this.wakePending) {
      this.wakePending = true
      setImmediate(this.wakeNow)
    }
  }

  private readonly wakeNow = (): void => {
    this.wakePending = false
    const reader = this.reader
    // Nothing left (the pipe was cleared meanwhile): the writer keeps waiting rather than write an empty batch.
    if (reader !== undefined && (this.control.length > 0 || this.messages.length > 0)) {
      this.reader = undefined
      reader(Effect.void)
    }
  }
}

/** One peer's inbound queue inside a `FairQueue`, bounded by the receive high-water mark (in messages). */
export class Lane<A> {
  readonly items = new Fifo<A>()
  /** Whether the lane is in its queue's ring of lanes with items. */
  queued = false
  /** The connection reader waiting for room (one reader per peer). */
  waiter: Resume | undefined = undefined
  /** SUB/XSUB: the application has had its turn to make room since the lane filled; now messages drop. */
  grace = false

  constructor(readonly capacity: number) {}

  get isFull(): boolean {
    return this.items.length >= this.capacity
  }
}

/**
 * The inbound side of a socket: one bounded lane per peer, taken from in turn (libzmq's fair queueing), so that a
 * fast peer cannot starve a slow one. A reader that finds its own lane full waits (or its socket type drops);
 * the other peers' readers go on.
 */
export class FairQueue<A> {
  /** Lanes with items, in turn order. */
  private ring: Array<Lane<A>> = []
  private next = 0
  private takers: Array<Resume> = []
  private closed = false

  /** Queues an item in a peer's lane; false when that lane is full. Once closed, items are discarded (true). */
  offer(lane: Lane<A>, item: A): boolean {
    if (this.closed) return true
    if (lane.items.length >= lane.capacity) return false
    lane.items.push(item)
    if (!lane.queued) {
      lane.queued = true
      this.ring.push(lane)
    }
    if (this.takers.length > 0) this.wakeTakers()
    return true
  }

  /**
   * Queues an item past the lane's mark. Only for notifications bounded by state the socket already holds (the
   * subscriptions a departing XPUB peer had), never for data.
   */
  force(lane: Lane<A>, item: A): void {
    if (this.closed) return
    lane.items.push(item)
    if (!lane.queued) {
      lane.queued = true
      this.ring.push(lane)
    }
    if (this.takers.length > 0) this.wakeTakers()
  }

  /** Waits until the lane has room (or the queue is closed). */
  awaitRoom(lane: Lane<A>): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      if (this.closed || lane.items.length < lane.capacity) return resume(Effect.void)
      lane.waiter = resume
      return Effect.sync(() => {
        if (lane.waiter === resume) lane.waiter = undefined
      })
    })
  }

  /** The next item in turn: one from each lane with items, round and round. */
  poll(): A | undefined {
    const n = this.ring.length
    if (n === 0) return undefined
    if (this.next >= n) this.next = 0
    const lane = this.ring[this.next]!
    const item = lane.items.shift()!
    if (lane.items.length === 0) {
      lane.queued = false
      // The following lane slides into this index: `next` already points at it.
      this.ring.splice(this.next, 1)
    } else {
      this.next++
    }
    const waiter = lane.waiter
    if (waiter !== undefined) {
      lane.waiter = undefined
      waiter(Effect.void)
    }
    return item
  }

  /** Waits for the next item; fails with the close reason once closed and drained. */
  take<E>(closedError: () => E): Effect.Effect<A, E> {
    return Effect.suspend(() => {
      const item = this.poll()
      if (item !== undefined) return Effect.succeed(item)
      if (this.closed) return Effect.fail(closedError())
      return Effect.flatMap(this.awaitItem, () => this.take(closedError))
    })
  }

  private readonly awaitItem: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.ring.length > 0 || this.closed) return resume(Effect.void)
    this.takers.push(resume)
    return Effect.sync(() => {
      const index = this.takers.indexOf(resume)
      if (index >= 0) this.takers.splice(index, 1)
    })
  })

  /**
   * Wakes every waiting taker: each polls and waits again if another took the item. Waking only one could strand an
   * item when that one is interrupted between its wake-up and its poll; there is usually a single taker anyway.
   */
  private wakeTakers(): void {
    const takers = this.takers
    this.takers = []
    for (const taker of takers) taker(Effect.void)
  }

  /** Wakes every taker and waiting reader; later offers are discarded. */
  close(): void {
    if (this.closed) return
    this.closed = true
    this.wakeTakers()
    for (const lane of this.ring) {
      const waiter = lane.waiter
      lane.waiter = undefined
      waiter?.(Effect.void)
    }
  }
}
