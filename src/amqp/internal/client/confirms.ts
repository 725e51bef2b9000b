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
  /** The tag the next publish gets: 1 after `confirm.select`, counting every publish on the channel. */
  private next = 1n
  /** Insertion order is tag order, so `multiple` settles a prefix. */
  private readonly pending = new Map<bigint, Pending<E>>()

  get size(): number {
    return this.pending.size
  }

  get nextTag(): bigint {
    return this.next
  }

  /** Records a publish at the moment its frames are queued for the wire, in wire order. */
  register(entry: E): bigint {
    const tag = this.next++
    // The entry is the caller's fresh object: mark it in place rather than copy it on every publish.
    const pending = entry as Pending<E>
    pending.returned = undefined
    this.pending.set(tag, pending)
    return tag
  }

  /** Settles `tag`, or every outstanding tag up to it with `multiple`. Returns how many were settled. */
  settle(tag: bigint, multiple: boolean, ack: boolean): number {
    if (!multiple) {
      const entry = this.pending.get(tag)
      if (entry === undefined) return 0
      this.pending.delete(tag)
      entry.settle(outcome(tag, entry, ack))
      return 1
    }
    let count = 0
    for (const [key, entry] of this.pending) {
      if (key > tag) break
      this.pending.delete(key)
      entry.settle(outcome(key, entry, ack))
      count++
    }
    return count
  }

  /**
   * Matches a `basic.return` (which carries no delivery tag) to the oldest outstanding mandatory publish with the
   * same exchange and routing key that has no return yet: the broker returns unroutable messages in publish order
   * and sends their ack after the return. Returns `false` when nothing matches.
   */
  returned(returned: Returned): boolean {
    for (const entry of this.pending.values()) {
      if (
        entry.mandatory && entry.returned === undefined && entry.exchange === returned.exchange &&
        entry.routingKey === returned.routingKey
      ) {
        entry.returned = returned
        return true
      }
    }
    return false
  }

  /** Hands every outstanding publish to `f` (the channel died) and forgets them. */
  drain(f: (tag: bigint, entry: E) => void): void {
    const entries = Array.from(this.pending)
    this.pending.clear()
    for (const [tag, entry] of entries) f(tag, entry)
  }
}

const outcome = (deliveryTag: bigint, entry: Pending<Entry>, ack: boolean): Outcome =>
  entry.returned !== undefined
    ? { _tag: "Returned", deliveryTag, returned: entry.returned }
    : ack
    ? { _tag: "Acked", deliveryTag }
    : { _tag: "Nacked", deliveryTag }
