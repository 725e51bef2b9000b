/** A bounded double-ended queue on a ring buffer: O(1) at both ends, never grows past its capacity. */
export class Deque<A> {
  private items: Array<A | undefined>
  private head = 0
  private count = 0

  constructor(readonly capacity: number) {
    this.items = new Array(Math.min(capacity, 16))
  }

  get size(): number {
    return this.count
  }

  get isFull(): boolean {
    return this.count >= this.capacity
  }

  private grow(): void {
    const next = new Array<A | undefined>(Math.min(this.capacity, this.items.length * 2))
    for (let i = 0; i < this.count; i++) next[i] = this.items[(this.head + i) % this.items.length]
    this.items = next
    this.head = 0
  }

  /** Appends at the back; `false` when full. */
  push(item: A): boolean {
    if (this.count >= this.capacity) return false
    if (this.count === this.items.length) this.grow()
    this.items[(this.head + this.count) % this.items.length] = item
    this.count++
    return true
  }

  /** Inserts at the front (for work that must go first again); `false` when full. */
  unshift(item: A): boolean {
    if (this.count >= this.capacity) return false
    if (this.count === this.items.length) this.grow()
    this.head = (this.head - 1 + this.items.length) % this.items.length
    this.items[this.head] = item
    this.count++
    return true
  }

  shift(): A | undefined {
    if (this.count === 0) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head = (this.head + 1) % this.items.length
    this.count--
    return item
  }

  /** Removes and returns everything, oldest first. */
  drain(): Array<A> {
    const out: Array<A> = []
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item)
    return out
  }
}
