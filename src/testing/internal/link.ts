/**
 * One connection of a memory network: two memory pairs joined by a relay per direction, where the faults act.
 *
 *   client ⇄ innerClient ─ relay ─ innerServer ⇄ server
 *
 * Each relay has a read stage (pull from the source, drop or corrupt, stamp a delivery time) and a delivery
 * stage (wait for the time, write to the destination). Both stop at the direction's gate while it is stalled or
 * partitioned, so the sender's bounded pipe fills and its writes block, as on a real network.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import { isEof } from "../../transport/Transport.js"
import type { MemoryTransport } from "../../transport/Memory.js"
import type { Direction, Link, LinkStats } from "../MemoryNetwork.js"

interface Batch {
  readonly chunks: ReadonlyArray<Uint8Array>
  readonly at: number
  readonly permits: number
}

const End = Symbol("End")

/** The fault state of one direction. */
export class Path {
  latencyMillis = 0
  dropping = false
  corrupt: ((byte: number, offset: number) => number) | undefined = undefined
  stalled = false
  partitioned = false
  offset = 0
  delivered = 0
  dropped = 0
  readonly gate = Effect.unsafeMakeLatch(true)

  updateGate(): void {
    if (this.stalled || this.partitioned) this.gate.unsafeClose()
    else this.gate.unsafeOpen()
  }

  heal(): void {
    this.latencyMillis = 0
    this.dropping = false
    this.corrupt = undefined
    this.stalled = false
    this.updateGate()
  }

  get stats(): LinkStats {
    return { delivered: this.delivered, dropped: this.dropped }
  }

  /** Drops or corrupts what was read; the chunks handed back are the ones to deliver. */
  apply(chunks: ReadonlyArray<Uint8Array>): Array<Uint8Array> {
    const out: Array<Uint8Array> = []
    for (const chunk of chunks) {
      const start = this.offset
      this.offset += chunk.length
      if (this.dropping) {
        this.dropped += chunk.length
        continue
      }
      const corrupt = this.corrupt
      if (corrupt === undefined) {
        out.push(chunk)
        continue
      }
      // Never touch the sender's memory: corrupt a copy.
      const copy = new Uint8Array(chunk.length)
      for (let i = 0; i < chunk.length; i++) copy[i] = corrupt(chunk[i]!, start + i) & 0xff
      out.push(copy)
    }
    return out
  }
}

const batchCapacity = 16

/**
 * Moves bytes from `source` to `destination` through `path` until either side ends. At most `limit` bytes (plus
 * one read) are in flight inside the relay, so a receiver that does not read pushes back on the sender.
 */
export const relay = (
  source: MemoryTransport,
  destination: MemoryTransport,
  path: Path,
  limit: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const batches = yield* Queue.bounded<Batch | typeof End>(batchCapacity)
    const inFlight = yield* Effect.makeSemaphore(limit)
    const read: Effect.Effect<void> = Effect.gen(function*() {
      while (true) {
        yield* path.gate.await
        const result = yield* Effect.either(source.read)
        if (result._tag === "Left") {
          // The sender reset or vanished: the receiver sees a reset, without waiting for data in flight.
          return yield* destination.abort("connection reset by peer")
        }
        if (isEof(result.right)) {
          yield* Queue.offer(batches, End)
          return yield* Effect.never
        }
        const now = yield* Clock.currentTimeMillis
        const chunks = path.apply(result.right)
        if (chunks.length === 0) continue
        let size = 0
        for (const chunk of chunks) size += chunk.length
        const permits = Math.min(size, limit)
        yield* inFlight.take(permits)
        yield* Queue.offer(batches, { chunks, at: now + path.latencyMillis, permits })
      }
    })
    const deliver: Effect.Effect<void> = Effect.gen(function*() {
      while (true) {
        const batch = yield* Queue.take(batches)
        if (batch === End) {
          yield* path.gate.await
          return yield* Effect.ignore(destination.shutdownWrite)
        }
        const now = yield* Clock.currentTimeMillis
        if (batch.at > now) yield* Effect.sleep(Duration.millis(batch.at - now))
        yield* path.gate.await
        const written = yield* Effect.either(destination.writeAll(batch.chunks))
        if (written._tag === "Left") {
          // The receiver is gone: like a TCP peer answering data on a closed socket, reset the sender.
          return yield* source.abort("connection reset by peer")
        }
        for (const chunk of batch.chunks) path.delivered += chunk.length
        yield* inFlight.release(batch.permits)
      }
    })
    yield* Effect.raceFirst(read, deliver)
  })

const directions = (direction: Direction | undefined): ReadonlyArray<"toServer" | "toClient"> =>
  direction === undefined || direction === "both" ? ["toServer", "toClient"] : [direction]

/** The control surface of a link over its two paths. */
export const makeLink = (options: {
  readonly id: number
  readonly client: string
  readonly server: string
  readonly paths: { readonly toServer: Path; readonly toClient: Path }
  readonly ends: ReadonlyArray<MemoryTransport>
}): Link => {
  const each = (direction: Direction | undefined, f: (path: Path) => void) =>
    Effect.sync(() => {
      for (const d of directions(direction)) f(options.paths[d])
    })
  return {
    id: options.id,
    client: options.client,
    server: options.server,
    latency: (latency, direction) =>
      each(direction, (path) => {
        path.latencyMillis = Duration.toMillis(Duration.decode(latency))
      }),
    drop: (direction) =>
      each(direction, (path) => {
        path.dropping = true
      }),
    corrupt: (f, direction) =>
      each(direction, (path) => {
        path.corrupt = f
      }),
    stall: (direction) =>
      each(direction, (path) => {
        path.stalled = true
        path.updateGate()
      }),
    resume: (direction) =>
      each(direction, (path) => {
        path.stalled = false
        path.updateGate()
      }),
    heal: (direction) => each(direction, (path) => path.heal()),
    cut: (detail) =>
      Effect.forEach(options.ends, (end) => end.reset(detail ?? "connection cut by the network"), { discard: true }),
    stats: Effect.sync(() => ({ toServer: options.paths.toServer.stats, toClient: options.paths.toClient.stats }))
  }
}
