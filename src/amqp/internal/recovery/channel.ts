import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { AmqpChannel, ChannelOptions } from "../../Channel.js"
import type { ClientError } from "../../ClientError.js"
import type { ConsumeOptions, Delivery } from "../../Consumer.js"
import type { PublishOptions } from "../../Publisher.js"
import { type RecoveringChannel, RecoveryError } from "../../Recovery.js"
import { type Generation, isConnectionError, type Link, Slot } from "./link.js"
import type { Topology } from "./topology.js"

/** What the channels of one recovering connection share with it. @internal */
export interface Shared {
  readonly slots: Set<Slot>
  readonly lock: Effect.Semaphore
  readonly link: Link
  readonly topology: Topology
  readonly awaitGeneration: (after: number) => Effect.Effect<Generation, RecoveryError>
  readonly retryPublishes: boolean
}

/** Opens a recovering channel, closed with the scope. @internal */
export const make = (
  shared: Shared,
  channelOptions: ChannelOptions | undefined
): Effect.Effect<RecoveringChannel, ClientError | RecoveryError, Scope.Scope> =>
  Effect.gen(function*() {
    const { awaitGeneration, link, lock, slots, topology } = shared
    const slot = new Slot(channelOptions)
    yield* Effect.acquireRelease(
      lock.withPermits(1)(Effect.suspend(() => {
        slots.add(slot)
        const status = link.status
        if (status._tag !== "Up") return Effect.void
        return slot.open(status.generation).pipe(
          Effect.asVoid,
          // Lost meanwhile: the next recovery opens it.
          Effect.catchIf(isConnectionError, () => Effect.void),
          Effect.tapError(() => Effect.sync(() => slots.delete(slot)))
        )
      })),
      () => closeSlot(slot)
    )
    const closeSlot = (s: Slot) =>
      lock.withPermits(1)(Effect.suspend(() => {
        s.closed = true
        slots.delete(s)
        return s.release
      }))

    /** The channel on a live generation newer than `after`, opening it there when needed. */
    const acquire = (after: number): Effect.Effect<{ readonly generation: number; readonly channel: AmqpChannel }, ClientError | RecoveryError> =>
      Effect.gen(function*() {
        let floor = after
        while (true) {
          if (slot.closed) return yield* new RecoveryError({ reason: "Closed", detail: "the channel is closed" })
          const generation = yield* awaitGeneration(floor)
          const current = slot.current
          if (current !== undefined && current.generation === generation.id && !slot.broken) {
            return { generation: generation.id, channel: current.channel }
          }
          const opened = yield* lock.withPermits(1)(Effect.suspend(() => {
            const now = slot.current
            if (now !== undefined && now.generation === generation.id && !slot.broken) return Effect.succeed(now.channel)
            return slot.open(generation)
          })).pipe(Effect.either)
          if (opened._tag === "Right") return { generation: generation.id, channel: opened.right }
          if (!isConnectionError(opened.left)) return yield* Effect.fail(opened.left)
          floor = generation.id
        }
      })

    /** Runs an operation on the current channel; a broker refusal marks the channel for replacement. */
    const run = <A>(f: (channel: AmqpChannel) => Effect.Effect<A, ClientError>) =>
      Effect.flatMap(acquire(0), ({ channel }) =>
        f(channel).pipe(
          Effect.tapError((error) =>
            Effect.sync(() => {
              if (error._tag === "ChannelClosed" && error.byBroker && slot.current?.channel === channel) slot.broken = true
            })
          )
        ))

    const publish = (exchange: string, routingKey: string, body: Uint8Array, options?: PublishOptions) =>
      Effect.gen(function*() {
        let after = 0
        while (true) {
          const { channel, generation } = yield* acquire(after)
          const key = exchange === "" ? topology.resolve(routingKey) : routingKey
          const result = yield* Effect.either(channel.publish(exchange, key, body, options))
          if (result._tag === "Right") return
          const error = result.left
          if (!isConnectionError(error)) {
            if (error._tag === "ChannelClosed" && error.byBroker && slot.current?.channel === channel) slot.broken = true
            return yield* Effect.fail(error)
          }
          if (!shared.retryPublishes) {
            return yield* new RecoveryError({
              reason: "PublishInterrupted",
              detail: `publish to ${exchange || "(default)"}/${routingKey} was not confirmed before the connection was lost`,
              cause: error
            })
          }
          after = generation
        }
      })

    const consume = (queue: string, options?: ConsumeOptions): Stream.Stream<Delivery, ClientError | RecoveryError> =>
      Stream.suspend(() => {
        let after = 0
        const round = Stream.unwrap(Effect.map(Effect.suspend(() => acquire(after)), ({ channel, generation }) => {
          after = generation
          return channel.consume(topology.resolve(queue), options).pipe(
            // The connection went away: the next round consumes on the next one.
            Stream.catchAll((error) => isConnectionError(error) ? Stream.empty : Stream.fail(error))
          )
        }))
        return Stream.forever(round)
      })

    const channel: RecoveringChannel = {
      exchangeDeclare: (exchange, type, options) =>
        Effect.tap(run((ch) => ch.exchangeDeclare(exchange, type, options)), () =>
          topology.exchangeDeclared(exchange, type, options)),
      exchangeDelete: (exchange, options) =>
        Effect.tap(run((ch) => ch.exchangeDelete(exchange, options)), () => topology.exchangeDeleted(exchange)),
      exchangeBind: (destination, source, routingKey = "", args) =>
        Effect.tap(run((ch) => ch.exchangeBind(destination, source, routingKey, args)), () =>
          topology.bound({ kind: "exchange", destination, source, routingKey, args })),
      exchangeUnbind: (destination, source, routingKey = "", args) =>
        Effect.tap(run((ch) => ch.exchangeUnbind(destination, source, routingKey, args)), () =>
          topology.unbound({ kind: "exchange", destination, source, routingKey, args })),
      queueDeclare: (queue = "", options) =>
        Effect.tap(run((ch) => ch.queueDeclare(queue === "" ? "" : topology.resolve(queue), options)), (declared) =>
          topology.queueDeclared(queue, declared.queue, options)),
      queueBind: (queue, exchange, routingKey = "", args) =>
        Effect.tap(run((ch) => ch.queueBind(topology.resolve(queue), exchange, routingKey, args)), () =>
          topology.bound({ kind: "queue", destination: queue, source: exchange, routingKey, args })),
      queueUnbind: (queue, exchange, routingKey = "", args) =>
        Effect.tap(run((ch) => ch.queueUnbind(topology.resolve(queue), exchange, routingKey, args)), () =>
          topology.unbound({ kind: "queue", destination: queue, source: exchange, routingKey, args })),
      queuePurge: (queue) => run((ch) => ch.queuePurge(topology.resolve(queue))),
      queueDelete: (queue, options) =>
        Effect.tap(run((ch) => ch.queueDelete(topology.resolve(queue), options)), () => topology.queueDeleted(queue)),
      qos: (prefetchCount, options) =>
        Effect.tap(run((ch) => ch.qos(prefetchCount, options)), () =>
          Effect.sync(() => {
            slot.prefetch = { count: prefetchCount, global: options?.global === true }
          })),
      confirmSelect: Effect.suspend(() => {
        if (slot.confirm) return Effect.void
        return Effect.tap(run((ch) => ch.confirmSelect), () =>
          Effect.sync(() => {
            slot.confirm = true
          }))
      }),
      consume,
      get: (queue, options) => run((ch) => ch.get(topology.resolve(queue), options)),
      publish,
      current: Effect.map(acquire(0), ({ channel }) => channel),
      close: closeSlot(slot)
    }
    return channel
  })
