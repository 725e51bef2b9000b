/**
 * An in-memory network for deterministic fault tests.
 *
 * Servers `listen` on a name, clients `connect` to it and get a `Transport` with the semantics of a TCP
 * connection (pulled reads, bounded buffers, half-close, graceful close and reset). Every connection is a
 * `Link` that a test controls on command:
 *
 * - `latency`: each chunk arrives that much later, timed with `Effect.sleep` — under `TestClock` it moves only
 *   when the test adjusts the clock;
 * - `drop`: bytes in one direction are silently discarded;
 * - `corrupt`: bytes are rewritten by a deterministic function of the byte and its offset in the stream;
 * - `stall` / `resume`: delivery stops; the sender's bounded buffer fills and its writes block;
 * - `cut`: both ends are reset (`ECONNRESET`);
 *
 * and the network itself can `partition` hosts: their links stall and new connections time out.
 *
 * @example
 * ```ts
 * import { MemoryNetwork } from "effect-wire/testing"
 * import { Effect } from "effect"
 *
 * const test = Effect.gen(function*() {
 *   const network = yield* MemoryNetwork.make
 *   const listener = yield* network.listen("broker")
 *   const client = yield* network.connect("broker")
 *   const server = yield* listener.accept
 *   yield* client.link.latency("50 millis")
 *   yield* client.link.cut()
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Mailbox from "effect/Mailbox"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Address from "../transport/Address.js"
import * as Memory from "../transport/Memory.js"
import type * as Transport from "../transport/Transport.js"
import { TransportError } from "../transport/TransportError.js"
import { makeLink, Path, relay } from "./internal/link.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/testing/MemoryNetwork")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Which way a fault applies: from the connecting side to the listening side, back, or both (the default).
 *
 * @since 0.1.0
 * @category models
 */
export type Direction = "toServer" | "toClient" | "both"

/**
 * Bytes of one direction so far: handed to the receiver's buffer, and discarded by `drop`.
 *
 * @since 0.1.0
 * @category models
 */
export interface LinkStats {
  readonly delivered: number
  readonly dropped: number
}

/**
 * The controls of one connection. Faults last until undone; `heal` undoes all of them but a cut.
 *
 * @since 0.1.0
 * @category models
 */
export interface Link {
  readonly id: number
  /** The host name of the connecting side. */
  readonly client: string
  /** The name the server listens on. */
  readonly server: string
  /** Delays each chunk sent from now on by `latency`. */
  readonly latency: (latency: Duration.DurationInput, direction?: Direction) => Effect.Effect<void>
  /** Discards every byte sent from now on. */
  readonly drop: (direction?: Direction) => Effect.Effect<void>
  /** Rewrites every byte sent from now on; `offset` counts the direction's bytes from the start. */
  readonly corrupt: (f: (byte: number, offset: number) => number, direction?: Direction) => Effect.Effect<void>
  /** Stops delivering; the sender's writes block once its buffer is full. */
  readonly stall: (direction?: Direction) => Effect.Effect<void>
  /** Undoes `stall`. */
  readonly resume: (direction?: Direction) => Effect.Effect<void>
  /** Undoes every fault of the direction: latency, drop, corrupt, stall. */
  readonly heal: (direction?: Direction) => Effect.Effect<void>
  /** Resets the connection: both ends fail with `ECONNRESET`. */
  readonly cut: (detail?: string) => Effect.Effect<void>
  readonly stats: Effect.Effect<{ readonly toServer: LinkStats; readonly toClient: LinkStats }>
}

/**
 * One end of a connection on the network, with the controls of its link.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection extends Transport.Transport {
  readonly link: Link
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  readonly address: Address.MemoryAddress
  /** The next incoming connection; fails with `Closed` once the listener is closed. */
  readonly accept: Effect.Effect<Connection, TransportError>
  /** Incoming connections, ending when the listener closes. */
  readonly connections: Stream.Stream<Connection>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListenOptions {
  /** Connections waiting to be accepted; beyond it connects are refused. Default: the network's `backlog`. */
  readonly backlog?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions {
  /** The host name of the connecting side, used by `partition`. Default: `"client"`. */
  readonly from?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryNetworkOptions {
  /** Bytes buffered per direction and per hop before writers wait. Default: 64 KiB. */
  readonly highWaterMark?: number | undefined
  /** Default backlog of listeners. Default: 128. */
  readonly backlog?: number | undefined
  /** How long a connect across a partition tries before failing with `ETIMEDOUT`. Default: 30 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MemoryNetwork {
  readonly [TypeId]: TypeId
  /** Listens on `name` until the scope closes; fails with `Listen` / `EADDRINUSE` when the name is taken. */
  readonly listen: (name: string, options?: ListenOptions) => Effect.Effect<Listener, TransportError, Scope.Scope>
  /**
   * Listens on `name` and runs `handler` for each connection in its own fiber; the connection is closed when
   * the handler succeeds and aborted when it fails. Everything stops when the scope closes.
   */
  readonly serve: <E, R>(
    name: string,
    handler: (connection: Connection) => Effect.Effect<void, E, R>,
    options?: ListenOptions
  ) => Effect.Effect<void, TransportError, Scope.Scope | R>
  /**
   * Connects to the listener `name`; the connection is aborted when the scope closes, if still open. Fails with
   * `Connect` / `ECONNREFUSED` when nobody listens or the backlog is full, and with `ConnectTimeout` /
   * `ETIMEDOUT` when a partition lasts longer than `connectTimeout`.
   */
  readonly connect: (name: string, options?: ConnectOptions) => Effect.Effect<Connection, TransportError, Scope.Scope>
  /** The links that are not fully closed yet. */
  readonly links: Effect.Effect<ReadonlyArray<Link>>
  /**
   * Separates host `a` from host `b` (or from every host when `b` is omitted): their links stall both ways and
   * new connections between them time out.
   */
  readonly partition: (a: string, b?: string) => Effect.Effect<void>
  /** Undoes `partition(a, b)`, or every partition when called without arguments. */
  readonly heal: (a?: string, b?: string) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category guards
 */
export const isMemoryNetwork = (u: unknown): u is MemoryNetwork => Predicate.hasProperty(u, TypeId)

/**
 * @since 0.1.0
 * @category tags
 */
export class CurrentMemoryNetwork extends Context.Tag("effect-wire/testing/CurrentMemoryNetwork")<
  CurrentMemoryNetwork,
  MemoryNetwork
>() {}

interface ListenerState {
  readonly backlog: Mailbox.Mailbox<Connection>
}

interface LinkState {
  readonly link: Link
  readonly paths: { readonly toServer: Path; readonly toClient: Path }
  readonly ends: ReadonlyArray<Memory.MemoryTransport>
}

const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`)
const isolatedKey = (a: string) => `${a}\u0000*`

/**
 * A network with custom limits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (options?: MemoryNetworkOptions): Effect.Effect<MemoryNetwork, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const highWaterMark = options?.highWaterMark ?? 64 * 1024
    const defaultBacklog = options?.backlog ?? 128
    const connectTimeout = Duration.decode(options?.connectTimeout ?? Duration.seconds(30))
    const listeners = new Map<string, ListenerState>()
    const links = new Map<number, LinkState>()
    const partitions = new Set<string>()
    let nextId = 1

    const resetAll = (ends: ReadonlyArray<Memory.MemoryTransport>, detail: string) =>
      Effect.forEach(ends, (end) => end.reset(detail), { discard: true })

    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        const open = Array.from(links.values())
        links.clear()
        return Effect.zipRight(
          Effect.forEach(open, (state) => resetAll(state.ends, "network shut down"), { discard: true }),
          Effect.forEach(Array.from(listeners.values()), (l) => l.backlog.shutdown, { discard: true })
        )
      })
    )

    const isPartitioned = (a: string, b: string) =>
      partitions.has(pairKey(a, b)) || partitions.has(isolatedKey(a)) || partitions.has(isolatedKey(b))

    const refreshPartitions = () => {
      for (const state of links.values()) {
        const partitioned = isPartitioned(state.link.client, state.link.server)
        for (const path of [state.paths.toServer, state.paths.toClient]) {
          path.partitioned = partitioned
          path.updateGate()
        }
      }
    }

    const refused = (name: string, detail: string) =>
      new TransportError({ reason: "Connect", code: "ECONNREFUSED", address: Address.format(Address.memory(name)), detail })

    const establish = (from: string, name: string): Effect.Effect<Connection, TransportError> =>
      Effect.suspend(() => {
        const listener = listeners.get(name)
        if (listener === undefined) return Effect.fail(refused(name, "nobody listens"))
        const id = nextId++
        const clientName = `${from}#${id}`
        const [client, innerClient] = Memory.unsafeMakePair({ highWaterMark, names: [clientName, name] })
        const [innerServer, server] = Memory.unsafeMakePair({ highWaterMark, names: [clientName, name] })
        const paths = { toServer: new Path(), toClient: new Path() }
        const ends = [client, innerClient, innerServer, server]
        const link = makeLink({ id, client: from, server: name, paths, ends: [innerClient, innerServer] })
        const state: LinkState = { link, paths, ends }
        const serverConnection: Connection = { ...server, link }
        if (!listener.backlog.unsafeOffer(serverConnection)) {
          return Effect.zipRight(resetAll(ends, "backlog full"), Effect.fail(refused(name, "backlog full")))
        }
        links.set(id, state)
        refreshPartitions()
        const run = Effect.all(
          [
            relay(innerClient, innerServer, paths.toServer, highWaterMark),
            relay(innerServer, innerClient, paths.toClient, highWaterMark),
            Effect.ignore(client.closed),
            Effect.ignore(server.closed)
          ],
          { concurrency: "unbounded", discard: true }
        ).pipe(
          Effect.ensuring(
            Effect.suspend(() => {
              links.delete(id)
              return resetAll(ends, "network shut down")
            })
          ),
          // Forked from inside `acquireRelease`: without this the relays would inherit uninterruptibility.
          Effect.interruptible
        )
        return Effect.as(Effect.forkIn(run, scope), { ...client, link })
      })

    const connect = (name: string, connectOptions?: ConnectOptions) => {
      const from = connectOptions?.from ?? "client"
      const attempt = Effect.suspend(() =>
        isPartitioned(from, name)
          ? Effect.zipRight(
            // acquireRelease runs this uninterruptibly: let a caller's own timeout end the wait.
            Effect.interruptible(Effect.sleep(connectTimeout)),
            Effect.suspend(() =>
              isPartitioned(from, name)
                ? Effect.fail(
                  new TransportError({
                    reason: "ConnectTimeout",
                    code: "ETIMEDOUT",
                    address: Address.format(Address.memory(name)),
                    detail: `no route from ${from} to ${name}`
                  })
                )
                : establish(from, name)
            )
          )
          : establish(from, name)
      )
      return Effect.acquireRelease(attempt, (connection) => connection.abort())
    }

    const listen = (name: string, listenOptions?: ListenOptions) =>
      Effect.acquireRelease(
        Effect.gen(function*() {
          if (listeners.has(name)) {
            return yield* Effect.fail(
              new TransportError({
                reason: "Listen",
                code: "EADDRINUSE",
                address: Address.format(Address.memory(name)),
                detail: "the name is taken"
              })
            )
          }
          const backlog = yield* Mailbox.make<Connection>(Math.max(1, listenOptions?.backlog ?? defaultBacklog))
          const state: ListenerState = { backlog }
          listeners.set(name, state)
          const address = Address.memory(name)
          const closed = new TransportError({
            reason: "Closed",
            address: Address.format(address),
            detail: "listener is closed"
          })
          const listener: Listener = {
            address,
            accept: backlog.take.pipe(Effect.catchTag("NoSuchElementException", () => Effect.fail(closed))),
            connections: Mailbox.toStream(backlog)
          }
          return [state, listener] as const
        }),
        ([state]) =>
          Effect.gen(function*() {
            if (listeners.get(name) === state) listeners.delete(name)
            // Connections nobody accepted are reset, as a closing TCP listener does.
            const pending = yield* state.backlog.clear
            for (const connection of pending) yield* connection.abort("listener closed")
            yield* state.backlog.end
          })
      ).pipe(Effect.map(([, listener]) => listener))

    const serve = <E, R>(
      name: string,
      handler: (connection: Connection) => Effect.Effect<void, E, R>,
      listenOptions?: ListenOptions
    ): Effect.Effect<void, TransportError, Scope.Scope | R> =>
      Effect.gen(function*() {
        const listener = yield* listen(name, listenOptions)
        const fibers = yield* FiberSet.make()
        const run = yield* FiberSet.runtime(fibers)<R>()
        yield* Effect.forkScoped(
          Effect.forever(
            Effect.flatMap(listener.accept, (connection) =>
              Effect.sync(() =>
                run(
                  Effect.onExit(
                    handler(connection),
                    (exit) => Exit.isSuccess(exit) ? connection.close() : connection.abort("handler failed")
                  )
                )
              ))
          ).pipe(Effect.ignore)
        )
      })

    const network: MemoryNetwork = {
      [TypeId]: TypeId,
      listen,
      serve,
      connect,
      links: Effect.sync(() => Array.from(links.values(), (state) => state.link)),
      partition: (a, b) =>
        Effect.sync(() => {
          partitions.add(b === undefined ? isolatedKey(a) : pairKey(a, b))
          refreshPartitions()
        }),
      heal: (a, b) =>
        Effect.sync(() => {
          if (a === undefined) partitions.clear()
          else partitions.delete(b === undefined ? isolatedKey(a) : pairKey(a, b))
          refreshPartitions()
        })
    }
    return network
  })

/**
 * A network with the default limits; everything on it is reset when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<MemoryNetwork, never, Scope.Scope> = makeWith()

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: MemoryNetworkOptions): Layer.Layer<CurrentMemoryNetwork> =>
  Layer.scoped(CurrentMemoryNetwork, makeWith(options))
