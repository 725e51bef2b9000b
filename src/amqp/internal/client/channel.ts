/**
 * The `AmqpChannel` operations over one `ChannelState` of the engine.
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { AmqpChannel } from "../../Channel.js"
import { type ClientError, ClientRefused } from "../../ClientError.js"
import { type ConsumeOptions, Delivery } from "../../Consumer.js"
import * as Methods from "../../Methods.js"
import type { ReturnedMessage } from "../../Publisher.js"
import type { FieldTable } from "../../Table.js"
import { ConfirmTracker } from "./confirms.js"
import type { Engine } from "./engine.js"
import type { ChannelState, ConfirmEntry, ConsumerState } from "./state.js"

let consumerCounter = 0
const consumerTagPrefix = `effect-wire.${Math.random().toString(36).slice(2, 10)}`

const returnsBuffer = 1024

export const make = (engine: Engine, ch: ChannelState): AmqpChannel => {
  const rpc = (method: Methods.Method, ...expect: ReadonlyArray<Methods.Tag>) => engine.rpc(ch, method, expect)
  const unit = (method: Methods.Method, ...expect: ReadonlyArray<Methods.Tag>) => Effect.asVoid(rpc(method, ...expect))
  const table = (args: FieldTable | undefined): FieldTable => args ?? []

  const consumer = (
    queue: string,
    options?: ConsumeOptions
  ): Effect.Effect<Stream.Stream<Delivery, ClientError>, ClientError, Scope.Scope> =>
    Effect.gen(function*() {
      const noAck = options?.noAck ?? false
      const prefetch = options?.prefetch
      if (prefetch !== undefined) {
        yield* unit(Methods.make("BasicQos", { prefetchCount: prefetch, global: false }), "BasicQosOk")
      }
      const tag = options?.consumerTag ?? `${consumerTagPrefix}.${++consumerCounter}`
      if (ch.consumers.has(tag)) {
        return yield* new ClientRefused({ reason: "InvalidArgument", detail: `consumer tag ${tag} is in use on channel ${ch.id}` })
      }
      // The broker bounds what it sends by the prefetch; beyond that, the buffer pauses the reader.
      const capacity = !noAck && prefetch !== undefined && prefetch > 0 ? prefetch : (options?.bufferSize ?? 2048)
      const mailbox = yield* Mailbox.make<Delivery, ClientError>(capacity)
      const consumer: ConsumerState = { tag, noAck, mailbox, cancelling: false }
      yield* Effect.acquireRelease(
        Effect.suspend(() => {
          // Registered before basic.consume goes out: deliveries may follow consume-ok immediately.
          ch.consumers.set(tag, consumer)
          return unit(
            Methods.make("BasicConsume", {
              queue,
              consumerTag: tag,
              noAck,
              exclusive: options?.exclusive ?? false,
              arguments: table(options?.arguments)
            }),
            "BasicConsumeOk"
          ).pipe(Effect.onError(() => Effect.sync(() => ch.consumers.delete(tag))))
        }),
        () => cancel(consumer)
      )
      return Mailbox.toStream(mailbox)
    })

  const consume = (queue: string, options?: ConsumeOptions): Stream.Stream<Delivery, ClientError> =>
    Stream.unwrapScoped(consumer(queue, options))

  const cancel = (consumer: ConsumerState): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (ch.consumers.get(consumer.tag) !== consumer) return Effect.void
      consumer.cancelling = true
      return unit(Methods.make("BasicCancel", { consumerTag: consumer.tag }), "BasicCancelOk").pipe(
        engine.withDeadline,
        Effect.zipRight(Effect.suspend(() => {
          ch.consumers.delete(consumer.tag)
          return consumer.mailbox.clear
        })),
        Effect.flatMap((buffered) =>
          consumer.noAck
            ? Effect.void
            : Effect.forEach(buffered, (d) => Effect.ignore(d.reject({ requeue: true })), { discard: true })
        ),
        Effect.ignore,
        Effect.zipRight(consumer.mailbox.end)
      )
    })

  const returns: Stream.Stream<ReturnedMessage, ClientError> = Stream.unwrapScoped(
    Effect.gen(function*() {
      if (ch.error !== undefined) return yield* Exit.fail(ch.error)
      const mailbox = yield* Mailbox.make<ReturnedMessage, ClientError>({ capacity: returnsBuffer, strategy: "dropping" })
      yield* Effect.acquireRelease(
        Effect.sync(() => ch.returnSubscribers.add(mailbox)),
        () => Effect.zipRight(Effect.sync(() => ch.returnSubscribers.delete(mailbox)), mailbox.end)
      )
      return Mailbox.toStream(mailbox)
    })
  )

  const channel: AmqpChannel = {
    id: ch.id,
    get confirmMode() {
      return ch.confirms !== undefined
    },
    exchangeDeclare: (exchange, type, options) =>
      unit(
        Methods.make("ExchangeDeclare", {
          exchange,
          type,
          passive: options?.passive ?? false,
          durable: options?.durable ?? false,
          autoDelete: options?.autoDelete ?? false,
          internal: options?.internal ?? false,
          arguments: table(options?.arguments)
        }),
        "ExchangeDeclareOk"
      ),
    exchangeDelete: (exchange, options) =>
      unit(Methods.make("ExchangeDelete", { exchange, ifUnused: options?.ifUnused ?? false }), "ExchangeDeleteOk"),
    exchangeBind: (destination, source, routingKey = "", args) =>
      unit(Methods.make("ExchangeBind", { destination, source, routingKey, arguments: table(args) }), "ExchangeBindOk"),
    exchangeUnbind: (destination, source, routingKey = "", args) =>
      unit(
        Methods.make("ExchangeUnbind", { destination, source, routingKey, arguments: table(args) }),
        "ExchangeUnbindOk"
      ),
    queueDeclare: (queue = "", options) =>
      Effect.map(
        rpc(
          Methods.make("QueueDeclare", {
            queue,
            passive: options?.passive ?? false,
            durable: options?.durable ?? false,
            exclusive: options?.exclusive ?? false,
            autoDelete: options?.autoDelete ?? false,
            arguments: table(options?.arguments)
          }),
          "QueueDeclareOk"
        ),
        (reply) => {
          const ok = reply.method as Methods.ByTag<"QueueDeclareOk">
          return { queue: ok.queue, messageCount: ok.messageCount, consumerCount: ok.consumerCount }
        }
      ),
    queueBind: (queue, exchange, routingKey = "", args) =>
      unit(Methods.make("QueueBind", { queue, exchange, routingKey, arguments: table(args) }), "QueueBindOk"),
    queueUnbind: (queue, exchange, routingKey = "", args) =>
      unit(Methods.make("QueueUnbind", { queue, exchange, routingKey, arguments: table(args) }), "QueueUnbindOk"),
    queuePurge: (queue) =>
      Effect.map(
        rpc(Methods.make("QueuePurge", { queue }), "QueuePurgeOk"),
        (reply) => (reply.method as Methods.ByTag<"QueuePurgeOk">).messageCount
      ),
    queueDelete: (queue, options) =>
      Effect.map(
        rpc(
          Methods.make("QueueDelete", { queue, ifUnused: options?.ifUnused ?? false, ifEmpty: options?.ifEmpty ?? false }),
          "QueueDeleteOk"
        ),
        (reply) => (reply.method as Methods.ByTag<"QueueDeleteOk">).messageCount
      ),
    qos: (prefetchCount, options) =>
      unit(Methods.make("BasicQos", { prefetchCount, global: options?.global ?? false }), "BasicQosOk"),
    consume,
    consumer,
    get: (queue, options) =>
      Effect.map(
        rpc(Methods.make("BasicGet", { queue, noAck: options?.noAck ?? false }), "BasicGetOk", "BasicGetEmpty"),
        (reply) => {
          if (reply.method._tag !== "BasicGetOk") return Option.none()
          const ok = reply.method
          return Option.some(
            new Delivery(
              ch.id,
              "",
              ok.deliveryTag,
              ok.redelivered,
              ok.exchange,
              ok.routingKey,
              reply.properties ?? {},
              reply.body ?? new Uint8Array(0),
              ok.messageCount,
              ch.acker
            )
          )
        }
      ),
    ack: (deliveryTag, options) => ch.acker.ack(deliveryTag, options?.multiple ?? false),
    nack: (deliveryTag, options) => ch.acker.nack(deliveryTag, options?.multiple ?? false, options?.requeue ?? true),
    reject: (deliveryTag, options) => ch.acker.reject(deliveryTag, options?.requeue ?? true),
    recover: unit(Methods.make("BasicRecover", { requeue: true }), "BasicRecoverOk"),
    publish: (exchange, routingKey, body, options) =>
      engine.publish(ch, {
        channel: ch.id,
        exchange,
        routingKey,
        mandatory: options?.mandatory ?? false,
        properties: options?.properties,
        body
      }),
    publishAll: (messages) =>
      engine.publishAll(
        ch,
        messages.map((m) => ({
          channel: ch.id,
          exchange: m.exchange,
          routingKey: m.routingKey,
          mandatory: m.options?.mandatory ?? false,
          properties: m.options?.properties,
          body: m.body
        }))
      ),
    returns,
    // The broker numbers publishes from the first one after confirm.select: the tracker starts at that point of
    // the wire, whatever is published concurrently.
    confirmSelect: Effect.suspend(() =>
      ch.confirms !== undefined ? Effect.void : Effect.asVoid(
        engine.rpc(ch, Methods.make("ConfirmSelect", {}), ["ConfirmSelectOk"], () => {
          ch.confirms ??= new ConfirmTracker<ConfirmEntry>()
        })
      )
    ),
    flow: (active) =>
      active
        ? Effect.map(
          rpc(Methods.make("ChannelFlow", { active }), "ChannelFlowOk"),
          (reply) => (reply.method as Methods.ByTag<"ChannelFlowOk">).active
        )
        : Exit.fail(
          new ClientRefused({
            reason: "NotImplemented",
            detail: "RabbitMQ answers channel.flow{active=false} with 540 NOT_IMPLEMENTED and closes the connection"
          })
        ),
    txSelect: unit(Methods.make("TxSelect", {}), "TxSelectOk"),
    txCommit: unit(Methods.make("TxCommit", {}), "TxCommitOk"),
    txRollback: unit(Methods.make("TxRollback", {}), "TxRollbackOk"),
    close: engine.closeChannel(ch)
  }
  return channel
}
