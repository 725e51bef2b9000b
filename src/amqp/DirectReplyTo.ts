/**
 * Request/response over RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`): no reply queue is declared, the
 * broker routes replies straight back to the requesting channel.
 *
 * The rules the broker imposes, enforced here: the reply consumer is registered (no-ack) before the first
 * request is published, requests go out on that same channel, and a channel has at most one such consumer.
 * Replies are at most once: a reply to a requester that went away, or that timed out, is dropped.
 *
 * @example
 * ```ts
 * import { DirectReplyTo } from "effect-wire/amqp"
 * import * as Effect from "effect/Effect"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* DirectReplyTo.client(channel)
 *   const reply = yield* client.call("", "rpc.add", new TextEncoder().encode("[1,2]"), { timeout: "5 seconds" })
 * })
 * ```
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { AmqpChannel } from "./Channel.js"
import { type ClientError, ClientRefused, Timeout } from "./ClientError.js"
import type { ConsumeOptions, Delivery } from "./Consumer.js"
import type { BasicProperties } from "./Properties.js"

/**
 * The pseudo-queue of direct reply-to.
 *
 * @since 0.1.0
 * @category constants
 */
export const replyTo = "amq.rabbitmq.reply-to"

/**
 * @since 0.1.0
 * @category models
 */
export interface CallOptions {
  readonly properties?: BasicProperties | undefined
  /** How long to wait for the reply. Default 30 seconds. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Client {
  /** Publishes a request and waits for the reply with its correlation id. */
  readonly call: (
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    options?: CallOptions
  ) => Effect.Effect<Delivery, ClientError>
  /** Requests waiting for their reply. */
  readonly pending: Effect.Effect<number>
}

const withReplyConsumer = new WeakSet<AmqpChannel>()
let correlationCounter = 0
const correlationPrefix = Math.random().toString(36).slice(2, 10)

/**
 * A request/response client on a channel: registers the reply consumer, then returns. The consumer is cancelled
 * when the scope closes; requests still waiting then fail.
 *
 * @since 0.1.0
 * @category constructors
 */
export const client = (channel: AmqpChannel): Effect.Effect<Client, ClientError, Scope.Scope> =>
  Effect.gen(function*() {
    if (withReplyConsumer.has(channel)) {
      return yield* new ClientRefused({
        reason: "ReplyConsumerExists",
        detail: `channel ${channel.id} already has a direct reply-to consumer`
      })
    }
    withReplyConsumer.add(channel)
    yield* Effect.addFinalizer(() => Effect.sync(() => withReplyConsumer.delete(channel)))
    const waiting = new Map<string, Deferred.Deferred<Delivery, ClientError>>()
    const replies = yield* channel.consumer(replyTo, { noAck: true })
    yield* replies.pipe(
      Stream.runForEach((delivery) =>
        Effect.sync(() => {
          const id = delivery.properties.correlationId
          const deferred = id === undefined ? undefined : waiting.get(id)
          if (deferred !== undefined) {
            waiting.delete(id!)
            Deferred.unsafeDone(deferred, Effect.succeed(delivery))
          }
        })
      ),
      Effect.catchAll((error) =>
        Effect.sync(() => {
          for (const deferred of waiting.values()) Deferred.unsafeDone(deferred, Exit.fail(error))
          waiting.clear()
        })
      ),
      Effect.forkScoped
    )
    return {
      call: (exchange, routingKey, body, options) =>
        Effect.suspend(() => {
          const correlationId = `${correlationPrefix}.${++correlationCounter}`
          const deferred = Deferred.unsafeMake<Delivery, ClientError>(FiberId.none)
          waiting.set(correlationId, deferred)
          const timeout = Duration.decode(options?.timeout ?? Duration.seconds(30))
          return channel.publish(exchange, routingKey, body, {
            properties: { ...options?.properties, replyTo, correlationId }
          }).pipe(
            Effect.zipRight(Deferred.await(deferred)),
            Effect.timeoutFail({
              duration: timeout,
              onTimeout: () =>
                new Timeout({ operation: `direct reply-to call to ${routingKey}`, millis: Duration.toMillis(timeout) })
            }),
            Effect.ensuring(Effect.sync(() => waiting.delete(correlationId)))
          )
        }),
      pending: Effect.sync(() => waiting.size)
    } satisfies Client
  })

/**
 * Serves requests from a queue: runs `handler` for each and publishes its result to the request's `reply-to`
 * with its `correlation-id`, then acknowledges the request. Runs until the stream ends or fails.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = <E, R>(
  channel: AmqpChannel,
  queue: string,
  handler: (request: Delivery) => Effect.Effect<{ readonly body: Uint8Array; readonly properties?: BasicProperties }, E, R>,
  options?: ConsumeOptions
): Effect.Effect<void, ClientError | E, R> =>
  channel.consume(queue, options).pipe(
    Stream.runForEach((request) =>
      Effect.gen(function*() {
        const reply = yield* handler(request)
        const to = request.properties.replyTo
        if (to !== undefined) {
          yield* channel.publish("", to, reply.body, {
            properties: { ...reply.properties, correlationId: request.properties.correlationId }
          })
        }
        if (options?.noAck !== true) yield* request.ack()
      })
    )
  )
