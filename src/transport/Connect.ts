/**
 * A connection strategy: a list of endpoints tried in rotation, retried on a `Schedule`, with every attempt
 * reported as an event. After a success the next connection starts with the endpoint that worked.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Address from "./Address.js"
import * as Tcp from "./Tcp.js"
import * as Tls from "./Tls.js"
import type * as Transport from "./Transport.js"
import type { TransportError } from "./TransportError.js"
import * as Unix from "./Unix.js"

/**
 * One place to connect to.
 *
 * @since 0.1.0
 * @category models
 */
export interface Endpoint {
  readonly address: Address.Address
  /** Opens a connection; `connectTimeout` overrides the endpoint's own when given. */
  readonly connect: (
    connectTimeout: Duration.DurationInput | undefined
  ) => Effect.Effect<Transport.Transport, TransportError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const tcp = (options: Tcp.ConnectOptions): Endpoint => ({
  address: Address.tcp(options.host, options.port),
  connect: (connectTimeout) => Tcp.connect(connectTimeout === undefined ? options : { ...options, connectTimeout })
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const unix = (options: Unix.ConnectOptions): Endpoint => ({
  address: Address.unix(options.path),
  connect: (connectTimeout) => Unix.connect(connectTimeout === undefined ? options : { ...options, connectTimeout })
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const tls = (options: Tls.ConnectOptions): Endpoint => ({
  address: Address.tcp(options.host, options.port),
  connect: (connectTimeout) => Tls.connect(connectTimeout === undefined ? options : { ...options, connectTimeout })
})

/**
 * Any other way to open a transport (an in-memory network, a proxy, …).
 *
 * @since 0.1.0
 * @category constructors
 */
export const endpoint = (
  address: Address.Address,
  connect: (connectTimeout: Duration.DurationInput | undefined) => Effect.Effect<Transport.Transport, TransportError, Scope.Scope>
): Endpoint => ({ address, connect })

/**
 * What a connector reports. `attempt` counts from 1 within one `connect`.
 *
 * @since 0.1.0
 * @category models
 */
export type ConnectEvent = Data.TaggedEnum<{
  Attempting: { readonly attempt: number; readonly address: Address.Address }
  Connected: { readonly attempt: number; readonly address: Address.Address }
  Failed: { readonly attempt: number; readonly address: Address.Address; readonly error: TransportError }
  /** The schedule ran out: `connect` fails with `error`, the last attempt's. */
  GaveUp: { readonly attempts: number; readonly error: TransportError }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ConnectEvent = Data.taggedEnum<ConnectEvent>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly endpoints: readonly [Endpoint, ...Array<Endpoint>]
  /** Per attempt; overrides the endpoints' own. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * When to try again after a failed attempt (each retry goes to the next endpoint). Default: `defaultSchedule`.
   * Driven by the `Clock`, so `TestClock` controls it in tests.
   */
  readonly schedule?: Schedule.Schedule<unknown, TransportError> | undefined
}

/**
 * The default retry schedule: 100 ms, doubling, at most 5 s apart, 10 retries.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultSchedule: Schedule.Schedule<unknown, TransportError> = Schedule.exponential("100 millis", 2).pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.intersect(Schedule.recurs(10))
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Connector {
  readonly endpoints: readonly [Endpoint, ...Array<Endpoint>]
  /** Connects to the first endpoint that answers, following the rotation and the schedule. */
  readonly connect: Effect.Effect<Transport.Transport, TransportError, Scope.Scope>
  /** Attempts from the moment the stream is run. */
  readonly events: Stream.Stream<ConnectEvent>
  /** Subscribes now, so that no later attempt is missed. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ConnectEvent>, never, Scope.Scope>
}

/**
 * Builds a connector.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Connect } from "effect-wire/transport"
 *
 * const program = Effect.gen(function*() {
 *   const connector = yield* Connect.make({
 *     endpoints: [Connect.tcp({ host: "10.0.0.1", port: 5672 }), Connect.tcp({ host: "10.0.0.2", port: 5672 })],
 *     connectTimeout: "2 seconds",
 *     schedule: Schedule.spaced("1 second")
 *   })
 *   return yield* Effect.scoped(connector.connect)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Connector> =>
  Effect.gen(function*() {
    const events = yield* PubSub.sliding<ConnectEvent>(256)
    const endpoints = options.endpoints
    const schedule = options.schedule ?? defaultSchedule
    // The endpoint to try first: where the last connection succeeded, or where the last attempt left off.
    let cursor = 0

    const connect = Effect.suspend(() => {
      let attempt = 0
      let lastError: TransportError | undefined
      const once = Effect.suspend(() => {
        const index = cursor
        const target = endpoints[index]!
        attempt++
        const n = attempt
        events.unsafeOffer(ConnectEvent.Attempting({ attempt: n, address: target.address }))
        return target.connect(options.connectTimeout).pipe(
          Effect.tap(() => Effect.sync(() => events.unsafeOffer(ConnectEvent.Connected({ attempt: n, address: target.address })))),
          Effect.tapError((error) =>
            Effect.sync(() => {
              lastError = error
              cursor = (index + 1) % endpoints.length
              events.unsafeOffer(ConnectEvent.Failed({ attempt: n, address: target.address, error }))
            })
          )
        )
      })
      return once.pipe(
        Effect.retry(schedule),
        Effect.tapError(() =>
          Effect.sync(() => {
            if (lastError !== undefined) events.unsafeOffer(ConnectEvent.GaveUp({ attempts: attempt, error: lastError }))
          })
        )
      )
    })

    return {
      endpoints,
      connect,
      events: Stream.fromPubSub(events),
      subscribe: PubSub.subscribe(events)
    } satisfies Connector
  })
