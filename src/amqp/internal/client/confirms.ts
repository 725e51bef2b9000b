/**
 * Publisher-confirm bookkeeping of one channel: delivery tags in publish order, settled by `basic.ack` /
 * `basic.nack` (single or `multiple`, in any order), with `basic.return` matched to its publish.
 *
 * Called only from the channel's own code paths, synchronously: no locking needed.
 */

/** What became of one confirmed publish. */
export type Outcome =
  | { readonly _tag: "Acked"; readonly deliveryTag: bigint }
  | { readonly _tag: "Nacked"; readonly deliveryTag: bigint }
  | { readonly _tag: "Returned"; readonly deliveryTag: bigint; readonly returned: Returned }

/** The arguments of a `basic.return`. */
export interface Returned {
  readonly replyCode: number
  readonly replyText: string
  readonly exchange: string
  readonly routingKey: string
}

export interface Entry {
  readonly mandatory: boolean
  readonly exchange: string
  readonly routingKey: string
  readonly settle: (outcome: Outcome) => void
}

type Pending<E extends Entry> = E & { returned: Returned | undefined }

export class ConfirmTracker<E extends Entry = Entry> {
  /**
   * Outstanding publishes in tag order: tags are consecutive from 1, so the entry of tag `t` sits at
   * `head + (t - base)`; a settled entry leaves a hole until the head passes it. Tags are kept as numbers (exact
   * far beyond any channel's lifetime): no bigint hashing per publish.
   */
  private entries: Array<Pending<E> | undefined> = []
  private head = 0
  /** The tag of `entries[head]`. */
  private base = 1
  /** The tag the next publish gets: 1 after `confirm.select`, counting every publish on the channel. */
  private next = 1
  private live = 0

  get size(): number {
    return this.live
  }

  get nextTag(): bigint {
    return BigInt(this.next)
  }

  /** Records a publish at the moment its frames are queued for the wire, in wire order; returns its tag. */
  register(entry: E): number {
    // The entry is the caller's fresh object: mark it in place rather than copy it on every publish.
    const pending = entry as Pending<E>
    pending.returned = undefined
    this.entries.push(pending)
    this.live++
    return this.next++
  }

  /** Settles `tag`, or every outstanding tag up to it with `multiple`. Returns how many were settled. */
  settle(deliveryTag: bigint, multiple: boolean, ack: boolean): number {
    const tag = Number(deliveryTag)
    const entries = this.entries
    if (!multiple) {
      if (tag < this.base || tag >= this.next) return 0
      const index = this.head + (tag - this.base)
      const entry = entries[index]
      if (entry === undefined) return 0
      entries[index] = undefined
      this.live--
      this.advance()
      entry.settle(outcome(deliveryTag, entry, ack))
      return 1
    }
    // Collected first: a settle callback may publish again (and so register) on this channel.
    const settled: Array<Pending<E>> = []
    const tags: Array<number> = []
    while (this.head < entries.length && this.base <= tag) {
      const entry = entries[this.head]
      entries[this.head] = undefined
      if (entry !== undefined) {
        settled.push(entry)
        tags.push(this.base)
      }
      this.head++
      this.base++
    }
    this.live -= settled.length
    this.compact()
    for (let i = 0; i < settled.length; i++) settled[i]!.settle(outcome(BigInt(tags[i]!), settled[i]!, ack))
    return settled.length
  }

  /** Moves the head past settled entries. */
  private advance(): void {
    const entries = this.entries
    while (this.head < entries.length && entries[this.head] === undefined) {
      this.head++
      this.base++
    }
    this.compact()
  }

  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries = []
      this.head = 0
    } else if (this.head >= 1024 && this.head * 2 >= this.entries.length) {
      this.entries = this.entries.slice(this.head)
      this.head = 0
    }
  }

  /**
   * Matches a `basic.return` (which carries no delivery tag) to the oldest outstanding mandatory publish with the
   * same exchange and routing key that has no return yet: the broker returns unroutable messages in publish order
   * and sends their ack after the return. Returns `false` when nothing matches.
   */
  returned(returned: Returned): boolean {
    const entries = this.entries
    for (let i = this.head; i < entries.length; i++) {
      const entry = entries[i]
      if (
        entry !== undefined && entry.mandatory && entry.returned === undefined &&
        entry.exchange === returned.exchange && entry.routingKey === returned.routingKey
      ) {
        entry.returned = returned
        return true
      }
    }
    return false
  }

  /** Hands every outstanding publish to `f` (the channel died) and forgets them. */
  drain(f: (tag: bigint, entry: E) => void): void {
    const entries = this.entries
    const head = this.head
    const base = this.base
    this.entries = []
    this.head = 0
    this.base = this.next
    this.live = 0
    for (let i = head; i < entries.length; i++) {
      const entry = entries[i]
      if (entry !== undefined) f(BigInt(base + (i - head)), entry)
    }
  }
}

const outcome = (deliveryTag: bigint, entry: Pending<Entry>, ack: boolean): Outcome =>
  entry.returned !== undefined
    ? { _tag: "Returned", deliveryTag, returned: entry.returned }
    : ack
    ? { _tag: "Acked", deliveryTag }
    : { _tag: "Nacked", deliveryTag }
