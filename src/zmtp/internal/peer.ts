import type { Message } from "../Frame.js"
import type { Connection } from "./connection.js"
import type { Lane, Pipe } from "./pipe.js"

/** An inbound message with the peer it came from. */
export interface Inbound {
  readonly peer: Peer
  readonly message: Message
}

/** Counted prefix subscriptions, as PUB/XPUB keep them per peer and SUB keeps them locally. */
export class Subscriptions {
  private readonly counts = new Map<string, { readonly prefix: Uint8Array; count: number }>()

  get size(): number {
    return this.counts.size
  }

  /** Returns true when the prefix is new. */
  add(prefix: Uint8Array): boolean {
    const key = keyOf(prefix)
    const entry = this.counts.get(key)
    if (entry !== undefined) {
      entry.count++
      return false
    }
    this.counts.set(key, { prefix: prefix.slice(), count: 1 })
    return true
  }

  /** Returns true when the last subscription to the prefix went away. */
  remove(prefix: Uint8Array): boolean {
    const key = keyOf(prefix)
    const entry = this.counts.get(key)
    if (entry === undefined) return false
    if (--entry.count > 0) return false
    this.counts.delete(key)
    return true
  }

  matches(topic: Uint8Array | undefined): boolean {
    if (this.counts.size === 0) return false
    const frame = topic ?? empty
    for (const { prefix } of this.counts.values()) {
      if (prefix.length > frame.length) continue
      let i = 0
      while (i < prefix.length && prefix[i] === frame[i]) i++
      if (i === prefix.length) return true
    }
    return false
  }

  prefixes(): Array<Uint8Array> {
    return Array.from(this.counts.values(), (entry) => entry.prefix)
  }
}

const empty = new Uint8Array(0)

/** A map key for bytes (routing ids, prefixes): one char per byte. */
export const keyOf = (bytes: Uint8Array): string =>
  bytes.length <= 64 ? String.fromCharCode.apply(null, bytes as unknown as Array<number>) : new TextDecoder("latin1").decode(bytes)

/**
 * One peer of a socket: the pipe towards it and, while connected, its connection. Peers of `connect` endpoints
 * live as long as the endpoint (their pipe keeps queued messages across reconnects); peers of accepted
 * connections live as long as the connection.
 */
export class Peer {
  connection: Connection | undefined = undefined
  routingId: Uint8Array | undefined = undefined
  readonly subscriptions = new Subscriptions()
  /** Ends the current connection (ROUTER handover). */
  kick: (() => void) | undefined = undefined

  constructor(
    readonly id: number,
    readonly endpoint: string,
    readonly pipe: Pipe,
    /** Messages from this peer waiting for the application (fair-queued with the other peers'). */
    readonly lane: Lane<Inbound>,
    /** Created by `connect`: exists before and between connections. */
    readonly persistent: boolean
  ) {}

  get isConnected(): boolean {
    return this.connection !== undefined
  }
}
