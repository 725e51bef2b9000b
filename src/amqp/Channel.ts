/**
 * AMQP channels: opened on acquire, closed on release. Every broker operation lives here: exchanges, queues,
 * bindings, QoS, consumers (as `Stream`s), `basic.get`, publishing (confirmed or not), transactions.
 *
 * When the broker closes a channel (404 for a missing queue, 406 for an inequivalent redeclare, …), every pending
 * request, unconfirmed publish and consumer stream of that channel fails with `ChannelClosed` carrying the reply
 * code and text; the connection and its other channels keep working.
 *
 * @example
 * ```ts
 * import { Channel, Connection } from "effect-wire/amqp"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const connection = yield* Connection.Connection
 *   const channel = yield* connection.channel({ confirm: true })
 *   const { queue } = yield* channel.queueDeclare("jobs", { durable: true })
 *   yield* channel.publish("", queue, new TextEncoder().encode("hello"))
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { ClientError } from "./ClientError.js"
import { Connection } from "./Connection.js"
import type { ConsumeOptions, Delivery } from "./Consumer.js"
import type { PublishOptions, ReturnedMessage } from "./Publisher.js"
import type { FieldTable } from "./Table.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface ChannelOptions {
  /** Put the channel in confirm mode: `publish` completes when the broker acks. Default `false`. */
  readonly confirm?: boolean | undefined
  /** Channel-wide prefetch (`basic.qos` with global = false, applying to consumers created afterwards). */
  readonly prefetch?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ExchangeDeclareOptions {
  /** Only check that the exchange exists (404 closes the channel when it does not). */
  readonly passive?: boolean | undefined
  readonly durable?: boolean | undefined
  readonly autoDelete?: boolean | undefined
  readonly internal?: boolean | undefined
  readonly arguments?: FieldTable | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface QueueDeclareOptions {
  readonly passive?: boolean | undefined
  readonly durable?: boolean | undefined
  readonly exclusive?: boolean | undefined
  readonly autoDelete?: boolean | undefined
  /** `x-queue-type`, `x-message-ttl`, `x-max-priority`, … */
  readonly arguments?: FieldTable | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface QueueDeclared {
  /** The queue's name: the server-generated one when the declared name was empty. */
  readonly queue: string
  readonly messageCount: number
  readonly consumerCount: number
}

/**
 * An open channel.
 *
 * @since 0.1.0
 * @category models
 */
export interface AmqpChannel {
  readonly id: number
  /** Whether publishes wait for broker confirms. */
  readonly confirmMode: boolean

  readonly exchangeDeclare: (
    exchange: string,
    type: "direct" | "fanout" | "topic" | "headers" | (string & {}),
    options?: ExchangeDeclareOptions
  ) => Effect.Effect<void, ClientError>
  readonly exchangeDelete: (exchange: string, options?: { readonly ifUnused?: boolean | undefined }) => Effect.Effect<void, ClientError>
  /** Routes messages from `source` to `destination` (RabbitMQ exchange-to-exchange binding). */
  readonly exchangeBind: (
    destination: string,
    source: string,
    routingKey?: string,
    args?: FieldTable
  ) => Effect.Effect<void, ClientError>
  readonly exchangeUnbind: (
    destination: string,
    source: string,
    routingKey?: string,
    args?: FieldTable
  ) => Effect.Effect<void, ClientError>

  /** Declares a queue; an empty name asks the broker for a generated one. */
  readonly queueDeclare: (queue?: string, options?: QueueDeclareOptions) => Effect.Effect<QueueDeclared, ClientError>
  readonly queueBind: (queue: string, exchange: string, routingKey?: string, args?: FieldTable) => Effect.Effect<void, ClientError>
  readonly queueUnbind: (queue: string, exchange: string, routingKey?: string, args?: FieldTable) => Effect.Effect<void, ClientError>
  /** Removes every ready message; returns how many. */
  readonly queuePurge: (queue: string) => Effect.Effect<number, ClientError>
  /** Deletes a queue; returns how many messages it held. */
  readonly queueDelete: (
    queue: string,
    options?: { readonly ifUnused?: boolean | undefined; readonly ifEmpty?: boolean | undefined }
  ) => Effect.Effect<number, ClientError>

  /**
   * `basic.qos`: at most `prefetchCount` unacknowledged deliveries per consumer (RabbitMQ's reading of
   * global = false), or shared by the channel's consumers with `global: true`. 0 means no limit.
   */
  readonly qos: (prefetchCount: number, options?: { readonly global?: boolean | undefined }) => Effect.Effect<void, ClientError>
  /**
   * Consumes a queue as a `Stream` of deliveries. The consumer is registered when the stream starts and cancelled
   * when it ends or is interrupted (buffered, unacknowledged deliveries are then requeued). The stream fails with
   * `ConsumerCancelled` when the broker cancels the consumer, and with `ChannelClosed` / `ConnectionClosed` /
   * `ConnectionLost` when the channel or connection ends.
   */
  readonly consume: (queue: string, options?: ConsumeOptions) => Stream.Stream<Delivery, ClientError>
  /**
   * Like `consume`, but the consumer is registered (`consume-ok` received) when this returns, and cancelled when
   * the scope closes: for code that must not publish before its consumer exists (direct reply-to).
   */
  readonly consumer: (
    queue: string,
    options?: ConsumeOptions
  ) => Effect.Effect<Stream.Stream<Delivery, ClientError>, ClientError, Scope.Scope>
  /** `basic.get`: one message, or none when the queue is empty. */
  readonly get: (queue: string, options?: { readonly noAck?: boolean | undefined }) => Effect.Effect<Option.Option<Delivery>, ClientError>
  /** Acknowledges by delivery tag (also available on each `Delivery`). */
  readonly ack: (deliveryTag: bigint, options?: { readonly multiple?: boolean | undefined }) => Effect.Effect<void, ClientError>
  readonly nack: (
    deliveryTag: bigint,
    options?: { readonly multiple?: boolean | undefined; readonly requeue?: boolean | undefined }
  ) => Effect.Effect<void, ClientError>
  readonly reject: (deliveryTag: bigint, options?: { readonly requeue?: boolean | undefined }) => Effect.Effect<void, ClientError>
  /** Redelivers every unacknowledged message of the channel (RabbitMQ only supports `requeue: true`). */
  readonly recover: Effect.Effect<void, ClientError>

  /**
   * Publishes a message. Completes when the frames are written; on a confirm channel, when the broker acks it,
   * failing with `PublishNacked`, or `PublishReturned` for an unroutable `mandatory` message.
   */
  readonly publish: (
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    options?: PublishOptions
  ) => Effect.Effect<void, ClientError>
  /**
   * Publishes a batch in order, with one completion for all of it: when every message is written, or on a confirm
   * channel when every message is acked. The first nack, return or refusal fails the batch (the other messages
   * may still have been delivered). Cheaper than one `publish` per message when throughput matters.
   */
  readonly publishAll: (
    messages: ReadonlyArray<{
      readonly exchange: string
      readonly routingKey: string
      readonly body: Uint8Array
      readonly options?: PublishOptions | undefined
    }>
  ) => Effect.Effect<void, ClientError>
  /** Unroutable `mandatory` messages returned on this channel, from the moment the stream starts. */
  readonly returns: Stream.Stream<ReturnedMessage, ClientError>

  /**
   * `channel.flow`: asks the broker to resume (`true`) its deliveries on this channel; resolves with the state the
   * broker confirms. RabbitMQ closes the connection with 540 NOT_IMPLEMENTED on `false` (pause consumers with a
   * prefetch limit, or by not acknowledging, instead), so `false` fails with `ClientRefused` `NotImplemented`
   * before anything is sent.
   *
   * The other direction is handled for you: while the broker has paused the channel (`channel.flow{active=false}`),
   * publishes wait before their first frame is written, and go out once it resumes the channel.
   */
  readonly flow: (active: boolean) => Effect.Effect<boolean, ClientError>

  /** Switches the channel to publisher confirms (`confirm.select`). */
  readonly confirmSelect: Effect.Effect<void, ClientError>
  readonly txSelect: Effect.Effect<void, ClientError>
  readonly txCommit: Effect.Effect<void, ClientError>
  readonly txRollback: Effect.Effect<void, ClientError>

  /** Closes the channel (also done when its scope closes). */
  readonly close: Effect.Effect<void>
}

/**
 * The channel of the current program, for code written against "a channel".
 *
 * @since 0.1.0
 * @category tags
 */
export class Channel extends Context.Tag("effect-wire/amqp/Channel")<Channel, AmqpChannel>() {}

/**
 * A layer that opens one channel on the `Connection` and closes it with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: ChannelOptions): Layer.Layer<Channel, ClientError, Connection> =>
  Layer.scoped(Channel, open(options))

/**
 * Opens a channel on the current `Connection`, closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const open = (options?: ChannelOptions): Effect.Effect<AmqpChannel, ClientError, Connection | Scope.Scope> =>
  Effect.flatMap(Connection, (connection) => connection.channel(options))
