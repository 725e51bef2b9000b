/**
 * `@effect/rpc` protocols over AMQP 0-9-1 (RabbitMQ): requests go to a queue, replies come back by RabbitMQ's
 * direct reply-to (`amq.rabbitmq.reply-to`), so no reply queue is declared per client.
 *
 * - Client: an AMQP connection and channel, consuming `amq.rabbitmq.reply-to` (no-ack, as direct reply-to
 *   requires) and publishing every message to the request queue with `reply-to` set and `mandatory`. Each
 *   connection is a new client for the server: when it is lost, or a request comes back unrouted (no server),
 *   in-flight requests fail and the client reconnects on its schedule.
 * - Server: consumes the request queue (exclusively: the protocol keeps per-client state, so one server owns a
 *   queue) and knows a client by the reply-to address RabbitMQ gave it. A client is gone when nothing came
 *   from it for `clientTimeout` (clients ping every heartbeat interval); its requests are then interrupted.
 *
 * One AMQP message carries one RPC message, so no framing is added: use `RpcSerialization.layerJson` or
 * `layerMsgPack`. AMQP's own heartbeat watches both connections.
 *
 * @since 0.1.0
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { type ClientError, PublishReturned } from "../amqp/ClientError.js"
import type { QueueDeclareOptions } from "../amqp/Channel.js"
import * as Connection from "../amqp/Connection.js"
import type { Delivery } from "../amqp/Consumer.js"
import type * as Uri from "../amqp/Uri.js"
import * as Transport from "../transport/Transport.js"
import * as internalClient from "./internal/client.js"
import * as codec from "./internal/codec.js"
import type { Connection as RpcConnection } from "./internal/connection.js"
import * as keyed from "./internal/keyed.js"
import * as internalServer from "./internal/server.js"
import type { ClientOptions as TransportClientOptions } from "./TransportProtocol.js"

/**
 * RabbitMQ's direct reply-to pseudo-queue.
 *
 * @since 0.1.0
 * @category constants
 */
export const directReplyTo = "amq.rabbitmq.reply-to"

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends Omit<TransportClientOptions, "framing"> {
  /** How to reach the broker; a new connection is made on every reconnection. */
  readonly connection: Connection.Options
  /** The queue the server consumes. */
  readonly queue: string
}

const bodies = (chunk: Chunk.Chunk<{ readonly body: Uint8Array }>): ReadonlyArray<Uint8Array> =>
  Chunk.toReadonlyArray(chunk).map((delivery) => delivery.body)

const join = (chunks: ReadonlyArray<Uint8Array>) => chunks.length === 1 ? chunks[0]! : Transport.concat(chunks)

/** One connection: an AMQP connection, a channel consuming direct reply-to, publishes to the request queue. */
const openClient = (
  options: ClientOptions,
  contentType: string
): Effect.Effect<RpcConnection<ClientError>, ClientError | Uri.UriError, Scope.Scope> =>
  Effect.gen(function*() {
    const connection = yield* Connection.make(options.connection)
    const channel = yield* connection.channel()
    const pull = yield* Stream.toPull(channel.consume(directReplyTo, { noAck: true }))
    // The first pull registers the consumer. RabbitMQ refuses a publish with reply-to before that, and the
    // channel handles methods in order, so a round trip after it proves it done.
    let first: Fiber.Fiber<Chunk.Chunk<{ readonly body: Uint8Array }>, Option.Option<ClientError>> | undefined =
      yield* Effect.forkScoped(pull)
    yield* Effect.yieldNow()
    yield* channel.qos(0)
    const read = Effect.suspend(() => {
      const next = first === undefined ? pull : Fiber.join(first)
      first = undefined
      return next
    }).pipe(
      Effect.map(bodies),
      Effect.catchAll((error) => Option.isNone(error) ? Effect.succeed(Transport.Eof) : Effect.fail(error.value))
    )
    // Requests are `mandatory`: when no server has the queue they come back, and the connection counts as lost,
    // instead of requests waiting for answers that cannot come.
    const returned = yield* Deferred.make<never, ClientError>()
    yield* channel.returns.pipe(
      Stream.runForEach((message) =>
        Deferred.fail(
          returned,
          new PublishReturned({
            channel: message.channel,
            replyCode: message.replyCode,
            replyText: message.replyText,
            exchange: message.exchange,
            routingKey: message.routingKey
          })
        )
      ),
      Effect.ignore,
      Effect.forkScoped
    )
    const properties = { replyTo: directReplyTo, contentType }
    return {
      read: Effect.raceFirst(read as Effect.Effect<ReadonlyArray<Uint8Array> | Transport.Eof, ClientError>, Deferred.await(returned)),
      write: (chunks) => channel.publish("", options.queue, join(chunks), { properties, mandatory: true }),
      close: Effect.void,
      abort: Effect.void,
      address: options.queue,
      stream: false
    }
  })

/**
 * A client protocol that sends to a request queue and receives by direct reply-to.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (
  options: ClientOptions
): Effect.Effect<RpcClient.Protocol["Type"], never, Scope.Scope | RpcSerialization.RpcSerialization> =>
  Effect.flatMap(RpcSerialization.RpcSerialization, (serialization) =>
    internalClient.make({
      connect: openClient(options, serialization.contentType),
      codec: () => codec.make(serialization, undefined),
      retrySchedule: options.retrySchedule ?? internalClient.defaultRetrySchedule,
      heartbeat: internalClient.resolveHeartbeat(options.heartbeat),
      address: options.queue,
      retryTransientErrors: options.retryTransientErrors ?? false
    }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolClient = (
  options: ClientOptions
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  Layer.scoped(RpcClient.Protocol, makeClient(options))

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly connection: Connection.Options
  /** The request queue, declared when the server starts. */
  readonly queue: string
  /**
   * How the queue is declared. Default: not durable, deleted when the server stops consuming it (clients then
   * see their requests returned rather than left waiting).
   */
  readonly declare?: QueueDeclareOptions | undefined
  /** Requests taken from the queue before they are handed to the server. Default: 256. */
  readonly prefetch?: number | undefined
  /**
   * A client that sent nothing for this long is considered gone and its requests are interrupted; keep it above
   * the clients' heartbeat interval. `false` keeps silent clients forever. Default: 30 seconds.
   */
  readonly clientTimeout?: Duration.DurationInput | false | undefined
}

/**
 * A server protocol consuming a request queue. Fails when the broker cannot be reached or the queue is already
 * consumed by another server.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeServer = (
  options: ServerOptions
): Effect.Effect<
  RpcServer.Protocol["Type"],
  ClientError | Uri.UriError,
  Scope.Scope | RpcSerialization.RpcSerialization
> =>
  Effect.gen(function*() {
    const serialization = yield* RpcSerialization.RpcSerialization
    const connection = yield* Connection.make(options.connection)
    const channel = yield* connection.channel()
    yield* channel.queueDeclare(options.queue, options.declare ?? { durable: false, autoDelete: true })
    const core = yield* internalServer.make
    const properties = { contentType: serialization.contentType }
    const receive = yield* keyed.make<string>({
      core,
      codec: () => codec.make(serialization, undefined),
      send: (replyTo, chunks) => channel.publish("", replyTo, join(chunks), { properties }),
      clientTimeout: options.clientTimeout ?? keyed.defaultClientTimeout
    })
    const prefetch = options.prefetch ?? 256
    const pull = yield* Stream.toPull(channel.consume(options.queue, { exclusive: true, prefetch }))
    // The first pull registers the consumer; a round trip after it (the same qos again) proves it done, and
    // fails here rather than later when another server owns the queue (the broker closes the channel).
    const first = yield* Effect.forkScoped(pull)
    yield* Effect.yieldNow()
    yield* channel.qos(prefetch)
    const handle = (deliveries: Chunk.Chunk<Delivery>) =>
      Effect.forEach(deliveries, (delivery) => {
        const replyTo = delivery.properties.replyTo
        // A message nobody can be answered on is dropped.
        const handled = replyTo === undefined ? Effect.void : receive(replyTo, replyTo, [delivery.body])
        return Effect.zipRight(handled, Effect.ignore(delivery.ack()))
      }, { discard: true })
    yield* Fiber.join(first).pipe(
      Effect.flatMap(handle),
      Effect.zipRight(Effect.forever(Effect.flatMap(pull, handle))),
      Effect.catchAllCause((cause) => Effect.logWarning("rpc: request queue consumer ended", cause)),
      Effect.annotateLogs({ module: "effect-wire/rpc", queue: options.queue }),
      Effect.forkScoped
    )
    return core.protocol
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolServer = (
  options: ServerOptions
): Layer.Layer<RpcServer.Protocol, ClientError | Uri.UriError, RpcSerialization.RpcSerialization> =>
  Layer.scoped(RpcServer.Protocol, makeServer(options))
