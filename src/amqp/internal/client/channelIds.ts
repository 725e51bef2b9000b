/**
 * Channel ids `1..channelMax`: the lowest free id first; an id becomes free again only after `close-ok`.
 */
export class ChannelIds {
  private readonly used = new Set<number>()
  /** Lowest id that might be free. */
  private hint = 1
  constructor(readonly channelMax: number) {}

  get size(): number {
    return this.used.size
  }

  /** The lowest free id, or `undefined` when all `channelMax` ids are in use. */
  allocate(): number | undefined {
    if (this.used.size >= this.channelMax) return undefined
    for (let id = this.hint; id <= this.channelMax; id++) {
      if (!this.used.has(id)) {
        this.used.add(id)
        this.hint = id + 1
        return id
      }
    }
    for (let id = 1; id < this.hint; id++) {
      if (!this.used.has(id)) {
        this.used.add(id)
        this.hint = id + 1
        return id
      }
    }
    return undefined
  }

  release(id: number): void {
    if (this.used.delete(id) && id < this.hint) this.hint = id
  }
}
