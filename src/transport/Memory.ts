/**
 * In-memory transports: two connected ends in one process, with the same semantics as a TCP connection (pulled
 * reads, bounded buffers, half-close, graceful close and reset). Protocol tests run over them with `TestClock`.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as Address from "./Address.js"
import { BytePipe } from "./internal/bytePipe.js"
import * as Transport from "./Transport.js"
import { TransportError } from "./TransportError.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface PairOptions {
  /** Bytes buffered per direction before writers wait. Default: 64 KiB. */
  readonly highWaterMark?: number | undefined
  /** Names used in `info` and in errors. Default: `"a"` and `"b"`. */
  readonly names?: readonly [string, string] | undefined
}

/**
 * One end of a pair, plus the switches a fault-injecting network needs.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryTransport extends Transport.Transport {
  /** Tears the connection down as a network failure would: both ends see a reset. */
  readonly reset: (detail: string) => Effect.Effect<void>
}

const defaultCloseTimeout = Duration.seconds(5)

interface Side {
  readonly name: string
  readonly peerName: string
  readonly inbound: BytePipe
  readonly outbound: BytePipe
  readonly closed: Deferred.Deferred<void, TransportError>
  state: "open" | "closing" | "closed"
  peer: Side | undefined
}

const resetError = (side: Side, detail: string) =>
  new TransportError({ reason: "Read", code: "ECONNRESET", address: `memory:${side.peerName}`, detail })

const closedError = (side: Side) =>
  new TransportError({ reason: "Closed", address: `memory:${side.peerName}`, detail: "transport is closed" })

/** Final teardown of one side. With `peerReset`, the other side sees a reset; otherwise its writes fail (EPIPE). */
const teardown = (side: Side, outcome: TransportError | undefined, peerReset: TransportError | undefined) => {
  if (side.state === "closed") return
  side.state = "closed"
  const peer = side.peer
  if (peer !== undefined && peer.state !== "closed") {
    side.inbound.failWrite(
      peerReset ?? new TransportError({ reason: "Write", code: "EPIPE", address: `memory:${side.name}`, detail: "peer closed" })
    )
    if (peerReset !== undefined) {
      side.outbound.failRead(peerReset)
      teardown(peer, peerReset, undefined)
    }
  }
  const closed = closedError(side)
  side.inbound.failRead(closed)
  side.outbound.failWrite(closed)
  Deferred.unsafeDone(side.closed, outcome === undefined ? Effect.void : Effect.fail(outcome))
}

const makeEnd = (side: Side): MemoryTransport => {
  const info: Transport.ConnectionInfo = {
    local: Address.memory(side.name),
    remote: Address.memory(side.peerName),
    tls: undefined
  }
  const writeAll = (chunks: ReadonlyArray<Uint8Array>) => side.outbound.offer(chunks, () => closedError(side))
  const abort = (cause?: unknown) =>
    Effect.sync(() =>
      teardown(side, undefined, resetError(side, cause === undefined ? "connection reset by peer" : String(cause)))
    )
  const close = (options?: Transport.CloseOptions) =>
    Effect.suspend(() => {
      if (side.state !== "open") return Deferred.await(side.closed).pipe(Effect.ignore)
      side.state = "closing"
      side.outbound.end()
      // Graceful: the peer reads everything we sent and ends its side too, or we abort at the deadline.
      // The wait is interruptible so that the deadline also fires when `close` runs in a finalizer.
      return Effect.interruptible(
        Effect.all([side.outbound.waitBelow(0), side.inbound.awaitEnd], { discard: true })
      ).pipe(
        Effect.timeout(options?.timeout ?? defaultCloseTimeout),
        Effect.matchEffect({
          onFailure: () => abort("close timed out"),
          onSuccess: () => Effect.sync(() => teardown(side, undefined, undefined))
        })
      )
    })
  return {
    [Transport.TypeId]: Transport.TypeId,
    read: side.inbound.take,
    write: (chunk) => writeAll([chunk]),
    writeAll,
    shutdownWrite: Effect.suspend(() => {
      if (side.state === "closed") return Effect.fail(closedError(side))
      if (side.outbound.isEnded) return Effect.void
      side.outbound.end()
      return Effect.void
    }),
    close,
    abort,
    reset: (detail) =>
      Effect.sync(() => {
        const error = resetError(side, detail)
        teardown(side, error, error)
      }),
    closed: Deferred.await(side.closed),
    info: Effect.succeed(info)
  }
}

/**
 * Two connected ends that are not tied to a scope: the caller closes them. Used by in-memory networks.
 *
 * @since 0.1.0
 * @category constructors
 */
export const unsafeMakePair = (options?: PairOptions): readonly [MemoryTransport, MemoryTransport] => {
  const highWaterMark = options?.highWaterMark ?? 64 * 1024
  const [nameA, nameB] = options?.names ?? ["a", "b"]
  const ab = new BytePipe(highWaterMark)
  const ba = new BytePipe(highWaterMark)
  const a: Side = {
    name: nameA,
    peerName: nameB,
    inbound: ba,
    outbound: ab,
    closed: Deferred.unsafeMake(FiberId.none),
    state: "open",
    peer: undefined
  }
  const b: Side = {
    name: nameB,
    peerName: nameA,
    inbound: ab,
    outbound: ba,
    closed: Deferred.unsafeMake(FiberId.none),
    state: "open",
    peer: a
  }
  a.peer = b
  return [makeEnd(a), makeEnd(b)]
}

/**
 * Two connected ends; both are aborted when the scope closes, if still open.
 *
 * @since 0.1.0
 * @category constructors
 */
export const pair = (
  options?: PairOptions
): Effect.Effect<readonly [MemoryTransport, MemoryTransport], never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => unsafeMakePair(options)),
    ([a, b]) => Effect.zipRight(a.abort(), b.abort())
  )
