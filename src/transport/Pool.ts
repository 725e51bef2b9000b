/**
 * A pool of connections for request/response protocols, on Effect's `Pool`: connections are opened on demand up
 * to `maxSize`, reused, closed after `idleTimeToLive` of low use, and discarded when they break.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as EffectPool from "effect/Pool"
import * as RcMap from "effect/RcMap"
import * as Scope from "effect/Scope"
import { adapterOf } from "./internal/socket.js"
import type * as Transport from "./Transport.js"
import { TransportError } from "./TransportError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/transport/Pool")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<E, R> {
  /** Opens one connection, e.g. `Tcp.connect(…)` or `connector.connect`; it lives in the pool's scope. */
  readonly connect: Effect.Effect<Transport.Transport, E, R>
  /** Most connections open at once; further `get`s wait for one to come back. */
  readonly maxSize: number
  /** Connections kept open even when idle. Default: 0. */
  readonly minSize?: number | undefined
  /** When the pool is used below its size for this long, one connection is closed. Default: 60 seconds. */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TransportPool<E> {
  readonly [TypeId]: TypeId
  /**
   * Checks a connection out for the current scope; it goes back to the pool when the scope closes. A connection
   * found broken (closed, failed, or half-closed by the peer) is discarded and another one taken.
   */
  readonly get: Effect.Effect<Transport.Transport, E | TransportError, Scope.Scope>
  /**
   * Runs `f` with a connection. If `f` fails with a `TransportError` (or dies, or is interrupted mid-request),
   * the connection is discarded instead of reused: its state is unknown.
   */
  readonly use: <A, E2, R2>(
    f: (transport: Transport.Transport) => Effect.Effect<A, E2, R2>
  ) => Effect.Effect<A, E | E2 | TransportError, R2>
  /** Discards a connection: it is closed once it is back in the pool. */
  readonly invalidate: (transport: Transport.Transport) => Effect.Effect<void>
  /** Connections currently open (idle or in use). */
  readonly size: Effect.Effect<number>
}

const isTransportError = (u: unknown): u is TransportError => u instanceof TransportError

/** Whether a connection taken from the pool can carry a new request. Non-socket transports are trusted. */
const reusable = (transport: Transport.Transport) => adapterOf(transport)?.isReusable ?? true

/**
 * Creates a pool in the current scope; closing the scope closes every connection.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Pool, Tcp } from "effect-wire/transport"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* Pool.make({ connect: Tcp.connect({ host: "127.0.0.1", port: 6379 }), maxSize: 4 })
 *   return yield* pool.use((transport) => transport.write(new TextEncoder().encode("PING\r\n")))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(
  options: Options<E, R>
): Effect.Effect<TransportPool<E>, never, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    let open = 0
    // Set right below: the watcher of each connection discards it from the pool when it closes.
    let discard: (transport: Transport.Transport) => Effect.Effect<void> = () => Effect.void
    const acquire = Effect.gen(function*() {
      const transport = yield* options.connect
      open++
      yield* Effect.addFinalizer(() => Effect.sync(() => open--))
      yield* Effect.forkScoped(Effect.zipRight(Effect.exit(transport.closed), Effect.suspend(() => discard(transport))))
      return transport
    })
    const pool = yield* EffectPool.makeWithTTL({
      acquire: acquire as Effect.Effect<Transport.Transport, E, Exclude<R, Scope.Scope> | Scope.Scope>,
      min: options.minSize ?? 0,
      max: options.maxSize,
      timeToLive: options.idleTimeToLive ?? Duration.minutes(1),
      timeToLiveStrategy: "usage"
    })
    discard = (transport) => pool.invalidate(transport)

    // Each checkout lives in its own child scope, so that a broken connection goes back (and is closed) at once.
    const get: Effect.Effect<Transport.Transport, E | TransportError, Scope.Scope> = Effect.gen(function*() {
      const outer = yield* Effect.scope
      for (let tries = 0; tries <= options.maxSize; tries++) {
        const child = yield* Scope.fork(outer, ExecutionStrategy.sequential)
        const transport = yield* Scope.extend(pool.get, child).pipe(
          Effect.onError((cause) => Scope.close(child, Exit.failCause(cause)))
        )
        if (reusable(transport)) return transport
        yield* pool.invalidate(transport)
        yield* Scope.close(child, Exit.void)
      }
      return yield* new TransportError({ reason: "Closed", detail: "no usable connection in the pool" })
    })

    const use = <A, E2, R2>(f: (transport: Transport.Transport) => Effect.Effect<A, E2, R2>) =>
      Effect.scoped(
        Effect.flatMap(get, (transport) =>
          f(transport).pipe(
            Effect.onExit((exit) => Exit.isFailure(exit) && leavesUnknownState(exit.cause) ? pool.invalidate(transport) : Effect.void)
          ))
      )

    return {
      [TypeId]: TypeId,
      get,
      use,
      invalidate: (transport) => pool.invalidate(transport),
      size: Effect.sync(() => open)
    } satisfies TransportPool<E>
  })

/** After these a connection may hold half a request or half a response. */
const leavesUnknownState = (cause: Cause.Cause<unknown>): boolean =>
  Cause.isInterrupted(cause) || Cause.isDie(cause) || [...Cause.failures(cause)].some(isTransportError)

/**
 * @since 0.1.0
 * @category models
 */
export interface KeyedOptions<K, E, R> {
  /** Opens one connection to `key` (an address, a tenant, …). */
  readonly connect: (key: K) => Effect.Effect<Transport.Transport, E, R>
  /** Most connections open at once per key. */
  readonly maxSize: number
  /** Connections kept open per key even when idle. Default: 0. */
  readonly minSize?: number | undefined
  /** As for `make`, per key; a key's pool is dropped once unused for this long. Default: 60 seconds. */
  readonly idleTimeToLive?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface KeyedTransportPool<K, E> {
  readonly [TypeId]: TypeId
  /** As `TransportPool.get`, from the pool of `key`. */
  readonly get: (key: K) => Effect.Effect<Transport.Transport, E | TransportError, Scope.Scope>
  /** As `TransportPool.use`, with a connection to `key`. */
  readonly use: <A, E2, R2>(
    key: K,
    f: (transport: Transport.Transport) => Effect.Effect<A, E2, R2>
  ) => Effect.Effect<A, E | E2 | TransportError, R2>
  /** Discards a connection taken from any key's pool. */
  readonly invalidate: (transport: Transport.Transport) => Effect.Effect<void>
}

/**
 * A pool per key (per address, typically), each created on first use and dropped when idle. Keys are compared
 * with `Equal`: use strings, numbers or `Data` values.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Pool, Tcp } from "effect-wire/transport"
 *
 * const program = Effect.gen(function*() {
 *   const pools = yield* Pool.makeKeyed({
 *     connect: (hostPort: string) => {
 *       const [host, port] = hostPort.split(":")
 *       return Tcp.connect({ host: host!, port: Number(port) })
 *     },
 *     maxSize: 4
 *   })
 *   return yield* pools.use("127.0.0.1:6379", (transport) => transport.write(new TextEncoder().encode("PING\r\n")))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeKeyed = <K, E, R>(
  options: KeyedOptions<K, E, R>
): Effect.Effect<KeyedTransportPool<K, E>, never, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const idleTimeToLive = options.idleTimeToLive ?? Duration.minutes(1)
    const owners = new WeakMap<Transport.Transport, TransportPool<E>>()
    const pools = yield* RcMap.make({
      lookup: (key: K) =>
        make({
          connect: options.connect(key),
          maxSize: options.maxSize,
          minSize: options.minSize,
          idleTimeToLive
        }),
      idleTimeToLive
    })
    const get = (key: K): Effect.Effect<Transport.Transport, E | TransportError, Scope.Scope> =>
      Effect.flatMap(RcMap.get(pools, key), (pool) =>
        Effect.tap(pool.get, (transport) => Effect.sync(() => owners.set(transport, pool))))
    const invalidate = (transport: Transport.Transport) =>
      Effect.suspend(() => owners.get(transport)?.invalidate(transport) ?? Effect.void)
    return {
      [TypeId]: TypeId,
      get,
      use: <A, E2, R2>(key: K, f: (transport: Transport.Transport) => Effect.Effect<A, E2, R2>) =>
        Effect.scoped(Effect.flatMap(RcMap.get(pools, key), (pool) => pool.use(f))),
      invalidate
    } satisfies KeyedTransportPool<K, E>
  })

