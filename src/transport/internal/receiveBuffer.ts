import * as Effect from "effect/Effect"
import type { TransportError } from "../TransportError.js"

type Entry<A> = { readonly _tag: "Item"; readonly value: A } | { readonly _tag: "Error"; readonly error: TransportError }

interface Taker<A> {
  readonly max: number
  readonly resume: (effect: Effect.Effect<readonly [A, ...Array<A>], TransportError>) => void
}

/**
 * A fixed-size ring of received items for sources that cannot be paused (UDP). When it is full, a new item is
 * dropped (`dropping`) or replaces the oldest (`sliding`), and `dropped` counts it. Errors take a slot in order,
 * so a receiver sees them where they happened; they do not end the buffer.
 */
export class ReceiveBuffer<A> {
  private readonly ring: Array<Entry<A> | undefined>
  private head = 0
  private size = 0
  private takers: Array<Taker<A>> = []
  private closedWith: TransportError | undefined = undefined
  dropped = 0

  constructor(readonly capacity: number, readonly strategy: "dropping" | "sliding") {
    this.ring = new Array(capacity)
  }

  get length(): number {
    return this.size
  }

  get isClosed(): boolean {
    return this.closedWith !== undefined
  }

  offer(value: A): void {
    this.push({ _tag: "Item", value })
  }

  offerError(error: TransportError): void {
    this.push({ _tag: "Error", error })
  }

  /** Fails every waiting and later `take` with `error`; buffered items are discarded. */
  close(error: TransportError): void {
    if (this.closedWith !== undefined) return
    this.closedWith = error
    this.ring.fill(undefined)
    this.size = 0
    const takers = this.takers
    this.takers = []
    for (const taker of takers) taker.resume(Effect.fail(error))
  }

  /** Waits for at least one item and takes up to `max`; an error is returned on its own, in order. */
  take(max: number): Effect.Effect<readonly [A, ...Array<A>], TransportError> {
    return Effect.async((resume) => {
      const ready = this.takeNow(max)
      if (ready !== undefined) return resume(ready)
      const taker: Taker<A> = { max, resume }
      this.takers.push(taker)
      return Effect.sync(() => {
        const index = this.takers.indexOf(taker)
        if (index >= 0) this.takers.splice(index, 1)
      })
    })
  }

  private push(entry: Entry<A>): void {
    if (this.closedWith !== undefined) return
    const taker = this.takers.length > 0 && this.size === 0 ? this.takers.shift() : undefined
    if (taker !== undefined) {
      return taker.resume(entry._tag === "Item" ? Effect.succeed([entry.value]) : Effect.fail(entry.error))
    }
    if (this.size === this.capacity) {
      this.dropped++
      if (this.strategy === "dropping") return
      this.ring[this.head] = undefined
      this.head = (this.head + 1) % this.capacity
      this.size--
    }
    this.ring[(this.head + this.size) % this.capacity] = entry
    this.size++
  }

  private takeNow(max: number): Effect.Effect<readonly [A, ...Array<A>], TransportError> | undefined {
    if (this.size === 0) return this.closedWith === undefined ? undefined : Effect.fail(this.closedWith)
    const first = this.shift()
    if (first._tag === "Error") return Effect.fail(first.error)
    const out: [A, ...Array<A>] = [first.value]
    while (out.length < max && this.size > 0 && this.ring[this.head]!._tag === "Item") {
      out.push((this.shift() as Extract<Entry<A>, { _tag: "Item" }>).value)
    }
    return Effect.succeed(out)
  }

  private shift(): Entry<A> {
    const entry = this.ring[this.head]!
    this.ring[this.head] = undefined
    this.head = (this.head + 1) % this.capacity
    this.size--
    return entry
  }
}
