/**
 * A bounded pool of confirm channels for many concurrent publishers (Haigha's `ChannelPool`, with publisher
 * confirms instead of a transaction per message).
 *
 * At most `size` channels are open, and each carries at most `inFlight` unconfirmed publishes; further publishes
 * wait in FIFO order for a free place. A publish completes when the broker confirms it. A channel the broker
 * closes (404 for a missing exchange, …) fails its own publishes with `ChannelClosed` and is replaced by a fresh
 * one; the other channels keep publishing. Interrupting a publisher gives its place back; closing the pool's
 * scope closes every channel.
 *
 * The pool works over a plain `Connection` or a `Recovery` connection (whose channels also survive reconnects).
 *
 * @example
 * ```ts
 * import { ChannelPool, Connection } from "effect-wire/amqp"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const connection = yield* Connection.Connection
 *   const pool = yield* ChannelPool.make(connection, { size: 4, inFlight: 128 })
 *   yield* Effect.forEach(
 *     Array.from({ length: 10_000 }, (_, i) => new TextEncoder().encode(`job ${i}`)),
 *     (body) => pool.publish("", "jobs", body),
 *     { concurrency: 512, discard: true }
 *   )
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Pool from "effect/Pool"
import type * as Scope from "effect/Scope"
import type { ChannelOptions } from "./Channel.js"
import type { PublishOptions } from "./Publisher.js"

/**
 * What the pool needs from a channel.
 *
 * @since 0.1.0
 * @category models
 */
export interface PublishingChannel<E> {
  readonly publish: (exchange: string, routingKey: string, body: Uint8Array, options?: PublishOptions) => Effect.Effect<void, E>
}

/**
 * Where the pool opens its channels: an `AmqpConnection` or a `RecoveringConnection`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChannelSource<E> {
  readonly channel: (options?: ChannelOptions) => Effect.Effect<PublishingChannel<E>, E, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Channels kept open. Default 4. */
  readonly size?: number | undefined
  /** Unconfirmed publishes per channel. Default 64. */
  readonly inFlight?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ChannelPool<E> {
  readonly size: number
  readonly inFlight: number
  /** Publishes on a pooled confirm channel; completes when the broker confirms. */
  readonly publish: (exchange: string, routingKey: string, body: Uint8Array, options?: PublishOptions) => Effect.Effect<void, E>
  /** Runs `f` with a pooled channel held for its duration (one of its `inFlight` places). */
  readonly withChannel: <A, E2, R>(f: (channel: PublishingChannel<E>) => Effect.Effect<A, E2, R>) => Effect.Effect<A, E | E2, R>
}

const isChannelGone = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "_tag" in error &&
  (error._tag === "ChannelClosed" || error._tag === "ConnectionClosed" || error._tag === "ConnectionLost")

/**
 * Opens a pool of confirm channels on `source`, closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E>(source: ChannelSource<E>, options: Options = {}): Effect.Effect<ChannelPool<E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const size = Math.max(1, options.size ?? 4)
    const inFlight = Math.max(1, options.inFlight ?? 64)
    const pool = yield* Pool.make({
      acquire: source.channel({ confirm: true }),
      size,
      concurrency: inFlight
    })

    const withChannel = <A, E2, R>(f: (channel: PublishingChannel<E>) => Effect.Effect<A, E2, R>) =>
      Effect.scoped(Effect.flatMap(Pool.get(pool), (channel) =>
        f(channel).pipe(
          // A closed channel is replaced once its current users are done with it.
          Effect.tapError((error) => isChannelGone(error) ? Pool.invalidate(pool, channel) : Effect.void)
        )))

    return {
      size,
      inFlight,
      publish: (exchange, routingKey, body, publishOptions) =>
        withChannel((channel) => channel.publish(exchange, routingKey, body, publishOptions)),
      withChannel
    } satisfies ChannelPool<E>
  })
