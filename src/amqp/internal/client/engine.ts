/**
 * The connection engine: the reader that demultiplexes frames to channels, the per-channel state (pending
 * synchronous replies, consumers, confirms, content assembly), and every way a channel or the connection ends.
 *
 * The reader never waits on application code, except when a consumer's bounded buffer is full (a consumer without
 * a prefetch limit): then it waits, which pauses the socket, as documented on `ConsumeOptions.bufferSize`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type * as Mailbox from "effect/Mailbox"
import { isEof, type Transport } from "../../../transport/Transport.js"
import {
  ChannelClosed,
  type ClientError,
  ClientRefused,
  ConnectionClosed,
  ConnectionLost,
  ConsumerCancelled,
  PublishNacked,
  PublishReturned
} from "../../ClientError.js"
import * as ClientMetrics from "../../ClientMetrics.js"
import { type Acker, Delivery } from "../../Consumer.js"
import * as Frame from "../../Frame.js"
import * as Methods from "../../Methods.js"
import type { BasicProperties } from "../../Properties.js"
import type { ReturnedMessage } from "../../Publisher.js"
import type { FieldTable } from "../../Table.js"
import { ChannelIds } from "./channelIds.js"
import { Completion } from "./completion.js"
import { ConfirmTracker, type Entry, type Outcome } from "./confirms.js"
import type { Gate } from "./gate.js"
import type { Activity } from "./heartbeat.js"
import type { Job, Writer } from "./writer.js"

type M<T extends Methods.Tag> = Methods.ByTag<T>

/** What a synchronous request resolves with: the reply method, and the content of `basic.get-ok`. */
export interface Reply {
  readonly method: Methods.Method
  readonly properties?: BasicProperties | undefined
  readonly body?: Uint8Array | undefined
}

interface PendingRpc {
  readonly expect: ReadonlyArray<Methods.Tag>
  readonly deferred: Deferred.Deferred<Reply, ClientError>
}

export interface ConsumerState {
  readonly tag: string
  readonly noAck: boolean
  readonly mailbox: Mailbox.Mailbox<Delivery, ClientError>
  cancelling: boolean
}

interface Content {
  readonly method: M<"BasicDeliver"> | M<"BasicReturn"> | M<"BasicGetOk">
  properties: BasicProperties | undefined
  body: Uint8Array | undefined
  size: number
  received: number
}

export interface ConfirmEntry extends Entry {
  readonly done: Completion
}

export class ChannelState {
  status: "open" | "closing" | "closed" = "open"
  error: ClientError | undefined = undefined
  /** The broker closed the channel: nothing but `close-ok` may be written on it. */
  brokerClosed = false
  readonly rpc: Array<PendingRpc> = []
  readonly consumers = new Map<string, ConsumerState>()
  confirms: ConfirmTracker<ConfirmEntry> | undefined = undefined
  readonly returnSubscribers = new Set<Mailbox.Mailbox<ReturnedMessage, ClientError>>()
  content: Content | undefined = undefined
  closeOk: Deferred.Deferred<void> | undefined = undefined
  /** Set while the broker has stopped the channel's publishes (`channel.flow{active=false}`). */
  flowPaused: Completion | undefined = undefined
  readonly acker: Acker
  constructor(
    readonly id: number,
    readonly lock: Effect.Semaphore,
    engine: Engine
  ) {
    this.acker = {
      ack: (deliveryTag, multiple) => engine.post(this, Methods.make("BasicAck", { deliveryTag, multiple })),
      nack: (deliveryTag, multiple, requeue) =>
        engine.post(this, Methods.make("BasicNack", { deliveryTag, multiple, requeue })),
      reject: (deliveryTag, requeue) => engine.post(this, Methods.make("BasicReject", { deliveryTag, requeue }))
    }
  }
}

export interface EngineConfig {
  readonly frameMax: number
  readonly channelMax: number
  readonly closeTimeout: Duration.Duration
  readonly maxMessageSize: number
}

const utf8 = new TextDecoder()

/**
 * Per-message counts, added to the metrics once per read: a tagged counter update looks its series up in the
 * registry every time, too much to pay for each message.
 */
const counts = { confirmed: 0, refused: 0, delivered: 0 }

const flushCounts = (frames: number): void => {
  ClientMetrics.framesIn.unsafeUpdate(frames, [])
  if (counts.delivered > 0) ClientMetrics.delivered.unsafeUpdate(counts.delivered, [])
  if (counts.confirmed > 0) ClientMetrics.confirmed.unsafeUpdate(counts.confirmed, [])
  if (counts.refused > 0) ClientMetrics.refused.unsafeUpdate(counts.refused, [])
  counts.delivered = 0
  counts.confirmed = 0
  counts.refused = 0
}

export class Engine {
  state: "open" | "closing" | "closed" = "open"
  error: ClientError | undefined = undefined
  readonly channels = new Map<number, ChannelState>()
  readonly ids: ChannelIds
  /** Pending `update-secret` replies (channel 0). */
  readonly connectionRpc: Array<PendingRpc> = []
  readonly closed: Deferred.Deferred<void, ClientError> = Deferred.unsafeMake(FiberId.none)
  readonly closeOk: Deferred.Deferred<void> = Deferred.unsafeMake(FiberId.none)
  heartbeat: Fiber.RuntimeFiber<void, never> | undefined = undefined
  writer!: Writer

  constructor(
    readonly transport: Transport,
    readonly config: EngineConfig,
    readonly gate: Gate,
    readonly activity: Activity,
    readonly parser: Frame.Parser
  ) {
    this.ids = new ChannelIds(config.channelMax)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Writing
  // -------------------------------------------------------------------------------------------------------------

  /** The writer's admission check, run in wire order. */
  check = (job: { readonly channel: number; readonly force?: boolean | undefined }): ClientError | undefined => {
    if (job.force === true) return undefined
    if (this.state !== "open") return this.error ?? this.closingError()
    if (job.channel === 0) return undefined
    const ch = this.channels.get(job.channel)
    if (ch === undefined) return new ClientRefused({ reason: "Protocol", detail: `channel ${job.channel} is not open` })
    return ch.brokerClosed ? ch.error : undefined
  }

  closingError(): ClientError {
    return new ConnectionClosed({ replyCode: 200, replyText: "closing", classId: 0, methodId: 0, byBroker: false })
  }

  private usable(ch: ChannelState): ClientError | undefined {
    if (ch.error !== undefined) return ch.error
    if (this.state !== "open") return this.error ?? this.closingError()
    if (ch.status !== "open") {
      return new ChannelClosed({
        channel: ch.id,
        replyCode: 200,
        replyText: "channel is closing",
        classId: 0,
        methodId: 0,
        byBroker: false
      })
    }
    return undefined
  }

  /** An asynchronous method (ack, nack, reject, …): queued, not awaited. */
  post(ch: ChannelState, method: Methods.Method): Effect.Effect<void, ClientError> {
    return Effect.suspend(() => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      const job: Job = { channel: ch.id, frame: Frame.method(ch.id, method) }
      return this.writer.tryOffer(job) ? Effect.void : this.writer.offer(job)
    })
  }

  // Failures are `Exit.fail`, not `Effect.fail`: inside a span, `Effect.fail` hands the caller a proxy of the
  // error, and every waiter of a channel must see the same error (the one the channel closed with).

  /**
   * A synchronous request: one at a time per channel (later ones wait their turn), resolved by the reply the
   * broker sends for it. A reply that does not match is a protocol error that closes the connection. One span
   * per request (`amqp.queue.declare`, …), never per frame or per publish.
   */
  rpc(
    ch: ChannelState,
    method: Methods.Method,
    expect: ReadonlyArray<Methods.Tag>,
    onWrite?: () => void
  ): Effect.Effect<Reply, ClientError> {
    return ch.lock.withPermits(1)(Effect.suspend(() => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      return this.request(ch.id, ch.rpc, method, expect, onWrite)
    })).pipe(Effect.withSpan(spanName(method._tag), spanOptions(ch.id)))
  }

  request(
    channel: number,
    queue: Array<PendingRpc>,
    method: Methods.Method,
    expect: ReadonlyArray<Methods.Tag>,
    onWrite?: () => void
  ): Effect.Effect<Reply, ClientError> {
    const encoded = Frame.encode(Frame.method(channel, method), { frameMax: this.config.frameMax })
    if (encoded._tag === "Left") {
      return Exit.fail(new ClientRefused({ reason: "InvalidArgument", detail: encoded.left.message }))
    }
    const deferred = Deferred.unsafeMake<Reply, ClientError>(FiberId.none)
    const pending: PendingRpc = { expect, deferred }
    queue.push(pending)
    return this.writer.offer({ channel, frame: Frame.method(channel, method), onWrite }).pipe(
      Effect.tapError(() =>
        Effect.sync(() => {
          const i = queue.indexOf(pending)
          if (i >= 0) queue.splice(i, 1)
        })
      ),
      Effect.zipRight(Deferred.await(deferred))
    )
  }

  publish(ch: ChannelState, publish: Frame.Publish): Effect.Effect<void, ClientError> {
    const go = Effect.suspend((): Effect.Effect<void, ClientError> => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      const confirms = ch.confirms
      if (confirms === undefined) return this.writer.submit({ channel: ch.id, publish })
      const done = new Completion()
      const entry: ConfirmEntry = {
        mandatory: publish.mandatory === true,
        exchange: publish.exchange ?? "",
        routingKey: publish.routingKey ?? "",
        done,
        settle: (outcome) => done.done(settleExit(ch.id, outcome))
      }
      const job: Job = { channel: ch.id, publish, done, awaitConfirm: true, onWrite: () => confirms.register(entry) }
      const queue = () => this.writer.tryOffer(job) ? Effect.void : this.writer.offer(job)
      return Effect.zipRight(this.writer.tryDirect(job, queue) ?? queue(), done.await)
    })
    return this.gate.isOpen && ch.flowPaused === undefined ? go : this.whenPublishable(ch, go)
  }

  /**
   * Waits while the connection is blocked or the broker has paused the channel (decided before any frame of the
   * message is written), then publishes.
   */
  private whenPublishable<A>(ch: ChannelState, go: Effect.Effect<A, ClientError>): Effect.Effect<A, ClientError> {
    const flow: Effect.Effect<void, ClientError> = Effect.suspend(() =>
      ch.flowPaused === undefined ? Effect.void : Effect.zipRight(ch.flowPaused.await, flow)
    )
    const gated = Effect.zipRight(flow, go)
    return this.gate.isOpen ? gated : Effect.zipRight(this.gate.pass, gated)
  }

  /**
   * Publishes a batch in order with one completion for all: written (or, on a confirm channel, every message
   * acked); the first nack, return or refusal fails the whole batch.
   */
  publishAll(ch: ChannelState, publishes: ReadonlyArray<Frame.Publish>): Effect.Effect<void, ClientError> {
    const go = Effect.suspend((): Effect.Effect<void, ClientError> => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      if (publishes.length === 0) return Effect.void
      const confirms = ch.confirms
      const done = new Completion()
      const last = publishes.length - 1
      if (confirms === undefined) {
        // Jobs are written in order, so the last one written means all were; every job shares the completion so a
        // refused one fails the batch (only the last completes it on success). Queued at once while there is room.
        const job = (i: number): Job => ({ channel: ch.id, publish: publishes[i]!, done, awaitConfirm: i !== last })
        let i = 0
        while (i < publishes.length && this.writer.tryOffer(job(i))) i++
        if (i === publishes.length) return done.await
        return Effect.zipRight(
          Effect.forEach(publishes.slice(i), (_, k) => this.writer.offer(job(i + k)), { discard: true }),
          done.await
        )
      }
      let remaining = publishes.length
      const settle = (outcome: Outcome) => {
        const exit = settleExit(ch.id, outcome)
        if (exit._tag === "Failure") done.done(exit)
        else if (--remaining === 0) done.succeed()
      }
      const job = (publish: Frame.Publish): Job => {
        const entry: ConfirmEntry = {
          mandatory: publish.mandatory === true,
          exchange: publish.exchange ?? "",
          routingKey: publish.routingKey ?? "",
          done,
          settle
        }
        return { channel: ch.id, publish, done, awaitConfirm: true, onWrite: () => confirms.register(entry) }
      }
      let i = 0
      while (i < publishes.length && this.writer.tryOffer(job(publishes[i]!))) i++
      if (i === publishes.length) return done.await
      return Effect.zipRight(
        Effect.forEach(publishes.slice(i), (publish) => this.writer.offer(job(publish)), { discard: true }),
        done.await
      )
    })
    return this.gate.isOpen && ch.flowPaused === undefined ? go : this.whenPublishable(ch, go)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Channels
  // -------------------------------------------------------------------------------------------------------------

  openChannel: Effect.Effect<ChannelState, ClientError> = Effect.suspend(() => {
    if (this.state !== "open") return Exit.fail(this.error ?? this.closingError())
    const id = this.ids.allocate()
    if (id === undefined) {
      return Exit.fail(
        new ClientRefused({ reason: "ChannelsExhausted", detail: `all ${this.config.channelMax} channels are in use` })
      )
    }
    const ch = new ChannelState(id, Effect.unsafeMakeSemaphore(1), this)
    this.channels.set(id, ch)
    return this.rpc(ch, Methods.make("ChannelOpen", {}), ["ChannelOpenOk"]).pipe(
      Effect.as(ch),
      Effect.onError(() => Effect.sync(() => this.forget(ch)))
    )
  })

  private forget(ch: ChannelState): void {
    if (this.channels.get(ch.id) === ch) {
      this.channels.delete(ch.id)
      this.ids.release(ch.id)
    }
  }

  /** Client-initiated close: queued behind what was already sent, waits for `close-ok` within the deadline. */
  closeChannel(ch: ChannelState): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (ch.status !== "open" || this.state !== "open") {
        this.failChannel(ch, ch.error ?? this.error ?? this.closingError())
        this.forget(ch)
        return Effect.void
      }
      ch.status = "closing"
      const closeOk = Deferred.unsafeMake<void>(FiberId.none)
      ch.closeOk = closeOk
      const close = Methods.make("ChannelClose", { replyCode: 200, replyText: "", classId: 0, methodId: 0 })
      return this.writer.offer({ channel: ch.id, frame: Frame.method(ch.id, close) }).pipe(
        Effect.zipRight(Deferred.await(closeOk)),
        this.withDeadline,
        Effect.withSpan(spanName("ChannelClose"), spanOptions(ch.id)),
        Effect.ensuring(Effect.sync(() => {
          this.failChannel(
            ch,
            new ChannelClosed({ channel: ch.id, replyCode: 200, replyText: "", classId: 0, methodId: 0, byBroker: false })
          )
          this.forget(ch)
        }))
      )
    })
  }

  /** Fails everything that waits on the channel. Idempotent; the first error wins. */
  failChannel(ch: ChannelState, error: ClientError): void {
    if (ch.error === undefined) ch.error = error
    const e = ch.error
    ch.status = "closed"
    ch.content = undefined
    for (const p of ch.rpc.splice(0)) Deferred.unsafeDone(p.deferred, Exit.fail(e))
    ch.confirms?.drain((_, entry) => entry.done.fail(e))
    for (const consumer of ch.consumers.values()) consumer.mailbox.unsafeDone(Exit.fail(e))
    ch.consumers.clear()
    for (const subscriber of ch.returnSubscribers) subscriber.unsafeDone(Exit.fail(e))
    ch.returnSubscribers.clear()
    if (ch.closeOk !== undefined) Deferred.unsafeDone(ch.closeOk, Effect.void)
    const paused = ch.flowPaused
    ch.flowPaused = undefined
    paused?.fail(e)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reading
  // -------------------------------------------------------------------------------------------------------------

  /** The reader fiber: reads until EOF or error, feeding the parser and dispatching every frame. */
  readLoop(now: () => number): Effect.Effect<void> {
    const self = this
    return Effect.gen(function*() {
      // Dispatch may need to wait (a full consumer buffer) or act (a close): collected per read, run in order.
      const actions: Array<Effect.Effect<void>> = []
      let frames = 0
      const onFrame = (frame: Frame.Frame) => {
        frames++
        const action = self.dispatch(frame)
        if (action !== undefined) actions.push(action)
      }
      while (true) {
        const result = yield* Effect.either(self.transport.read)
        if (result._tag === "Left") {
          if (self.state === "open") yield* self.lost("Transport", result.left.message, result.left)
          return
        }
        const read = result.right
        if (isEof(read)) {
          if (self.state === "open") yield* self.lost("Eof", "the broker closed the socket without connection.close")
          else Deferred.unsafeDone(self.closeOk, Effect.void)
          return
        }
        self.activity.lastRead = now()
        for (const chunk of read) {
          const error = self.parser.feed(chunk, onFrame)
          if (error !== undefined) {
            flushCounts(frames)
            for (const action of actions.splice(0)) yield* action
            const code = error.reason === "FrameTooLarge" || error.reason === "BadFrameEnd" ? 501 : 505
            yield* self.fatal(code, error.message)
            return
          }
        }
        flushCounts(frames)
        frames = 0
        for (const action of actions.splice(0)) yield* action
      }
    })
  }

  /** Handles one frame synchronously; returns an Effect only when something must wait or be written. */
  dispatch(frame: Frame.Frame): Effect.Effect<void> | undefined {
    if (frame._tag === "Heartbeat") {
      return frame.channel === 0 ? undefined : this.fatal(505, `heartbeat frame on channel ${frame.channel}`)
    }
    if (frame.channel === 0) {
      if (frame._tag !== "Method") return this.fatal(505, `${frame._tag.toLowerCase()} frame on channel 0`)
      return this.onConnectionMethod(frame.method)
    }
    if (this.state !== "open") return undefined
    const ch = this.channels.get(frame.channel)
    if (ch === undefined) return this.fatal(504, `frame for channel ${frame.channel}, which is not open`)
    if (ch.status === "closing") {
      // After our channel.close, only close and close-ok count (spec §1.5.2.5).
      if (frame._tag === "Method" && frame.method._tag === "ChannelCloseOk") {
        if (ch.closeOk !== undefined) Deferred.unsafeDone(ch.closeOk, Effect.void)
        return undefined
      }
      if (frame._tag === "Method" && frame.method._tag === "ChannelClose") return this.onChannelClose(ch, frame.method)
      return undefined
    }
    if (ch.status === "closed") return undefined
    switch (frame._tag) {
      case "Method":
        if (ch.content !== undefined) {
          return this.fatal(505, `${frame.method._tag} on channel ${ch.id} while content was expected`)
        }
        return this.onChannelMethod(ch, frame.method)
      case "Header": {
        const content = ch.content
        if (content === undefined || content.properties !== undefined) {
          return this.fatal(505, `unexpected content header on channel ${ch.id}`)
        }
        if (frame.bodySize > BigInt(this.config.maxMessageSize)) {
          return this.fatal(
            501,
            `message of ${frame.bodySize} bytes on channel ${ch.id} is above maxMessageSize ${this.config.maxMessageSize}`
          )
        }
        content.properties = frame.properties
        content.size = Number(frame.bodySize)
        return content.size === 0 ? this.completeContent(ch, content, new Uint8Array(0)) : undefined
      }
      case "Body": {
        const content = ch.content
        if (content === undefined || content.properties === undefined) {
          return this.fatal(505, `unexpected content body on channel ${ch.id}`)
        }
        const payload = frame.payload
        if (content.received + payload.length > content.size) {
          return this.fatal(505, `content body on channel ${ch.id} is longer than its header announced`)
        }
        if (content.received === 0 && payload.length === content.size) {
          // Single-frame body: the parser's view of the read chunk is ours to keep.
          return this.completeContent(ch, content, payload)
        }
        content.body ??= new Uint8Array(content.size)
        content.body.set(payload, content.received)
        content.received += payload.length
        return content.received === content.size ? this.completeContent(ch, content, content.body) : undefined
      }
    }
  }

  private onConnectionMethod(method: Methods.Method): Effect.Effect<void> | undefined {
    switch (method._tag) {
      case "ConnectionClose":
        return this.onConnectionClose(method)
      case "ConnectionCloseOk":
        Deferred.unsafeDone(this.closeOk, Effect.void)
        return undefined
      case "ConnectionBlocked":
        return this.gate.block(method.reason)
      case "ConnectionUnblocked":
        return this.gate.unblock
      case "ConnectionUpdateSecretOk": {
        const head = this.connectionRpc.shift()
        if (head !== undefined) Deferred.unsafeDone(head.deferred, Effect.succeed({ method }))
        return undefined
      }
      default:
        if (this.state !== "open") return undefined
        return this.fatal(505, `unexpected ${method._tag} on channel 0`)
    }
  }

  private onChannelMethod(ch: ChannelState, method: Methods.Method): Effect.Effect<void> | undefined {
    switch (method._tag) {
      case "BasicDeliver":
      case "BasicReturn":
      case "BasicGetOk":
        ch.content = { method, properties: undefined, body: undefined, size: 0, received: 0 }
        return undefined
      case "BasicAck":
        ch.confirms?.settle(method.deliveryTag, method.multiple, true)
        return undefined
      case "BasicNack":
        ch.confirms?.settle(method.deliveryTag, method.multiple, false)
        return undefined
      case "ChannelClose":
        return this.onChannelClose(ch, method)
      case "BasicCancel": {
        const consumer = ch.consumers.get(method.consumerTag)
        if (consumer !== undefined) {
          ch.consumers.delete(method.consumerTag)
          consumer.mailbox.unsafeDone(
            Exit.fail(new ConsumerCancelled({ channel: ch.id, consumerTag: method.consumerTag }))
          )
        }
        return method.nowait
          ? undefined
          : Effect.ignore(this.post(ch, Methods.make("BasicCancelOk", { consumerTag: method.consumerTag })))
      }
      case "ChannelFlow": {
        // The broker stops (or restarts) our publishes on this channel; flow-ok confirms it.
        if (!method.active) ch.flowPaused ??= new Completion()
        else {
          const paused = ch.flowPaused
          ch.flowPaused = undefined
          paused?.succeed()
        }
        return Effect.ignore(this.post(ch, Methods.make("ChannelFlowOk", { active: method.active })))
      }
      default:
        return this.resolve(ch, { method })
    }
  }

  private resolve(ch: ChannelState, reply: Reply): Effect.Effect<void> | undefined {
    const head = ch.rpc[0]
    if (head === undefined || !head.expect.includes(reply.method._tag)) {
      return this.fatal(
        505,
        `unexpected ${reply.method._tag} on channel ${ch.id}` +
          (head === undefined ? "" : ` while waiting for ${head.expect.join(" or ")}`)
      )
    }
    ch.rpc.shift()
    Deferred.unsafeDone(head.deferred, Effect.succeed(reply))
    return undefined
  }

  private completeContent(ch: ChannelState, content: Content, body: Uint8Array): Effect.Effect<void> | undefined {
    ch.content = undefined
    const method = content.method
    const properties = content.properties!
    switch (method._tag) {
      case "BasicDeliver": {
        counts.delivered++
        const consumer = ch.consumers.get(method.consumerTag)
        if (consumer === undefined) return undefined
        if (consumer.cancelling) {
          // Cancelled while this was in flight: give it back to the queue rather than drop it.
          return consumer.noAck
            ? undefined
            : Effect.ignore(ch.acker.reject(method.deliveryTag, true))
        }
        const delivery = new Delivery(
          ch.id,
          method.consumerTag,
          method.deliveryTag,
          method.redelivered,
          method.exchange,
          method.routingKey,
          properties,
          body,
          undefined,
          ch.acker
        )
        return consumer.mailbox.unsafeOffer(delivery) ? undefined : Effect.asVoid(consumer.mailbox.offer(delivery))
      }
      case "BasicReturn": {
        ch.confirms?.returned({
          replyCode: method.replyCode,
          replyText: method.replyText,
          exchange: method.exchange,
          routingKey: method.routingKey
        })
        const returned: ReturnedMessage = {
          channel: ch.id,
          replyCode: method.replyCode,
          replyText: method.replyText,
          exchange: method.exchange,
          routingKey: method.routingKey,
          properties,
          body
        }
        for (const subscriber of ch.returnSubscribers) subscriber.unsafeOffer(returned)
        return undefined
      }
      case "BasicGetOk":
        counts.delivered++
        return this.resolve(ch, { method, properties, body })
    }
  }

  private onChannelClose(ch: ChannelState, method: M<"ChannelClose">): Effect.Effect<void> {
    ch.brokerClosed = true
    ClientMetrics.channelsClosedByBroker.unsafeUpdate(1, [])
    const error = new ChannelClosed({
      channel: ch.id,
      replyCode: method.replyCode,
      replyText: method.replyText,
      classId: method.classId,
      methodId: method.methodId,
      byBroker: true
    })
    if (ch.error === undefined || ch.status === "closing") ch.error = error
    this.failChannel(ch, error)
    // close-ok goes out even though the channel is closed; the id is free once it is on the wire.
    return Effect.ignore(this.writer.offer({
      channel: ch.id,
      frame: Frame.method(ch.id, Methods.make("ChannelCloseOk", {})),
      force: true,
      onWrite: () => this.forget(ch)
    }))
  }

  private onConnectionClose(method: M<"ConnectionClose">): Effect.Effect<void> {
    const error = new ConnectionClosed({
      replyCode: method.replyCode,
      replyText: method.replyText,
      classId: method.classId,
      methodId: method.methodId,
      byBroker: true
    })
    if (this.state === "closing") {
      // Crossed closes: answer theirs; ours is done.
      Deferred.unsafeDone(this.closeOk, Effect.void)
    }
    const wasOpen = this.state === "open"
    this.state = "closing"
    if (wasOpen) this.error = error
    this.failAll(this.error ?? error)
    // The teardown runs even if the reader is interrupted while close-ok waits to be written (its scope closing):
    // whoever else waits for the end must not wait for a reader that is gone.
    return this.writer.send({ channel: 0, frame: Frame.method(0, Methods.make("ConnectionCloseOk", {})), force: true })
      .pipe(
        this.withDeadline,
        Effect.ensuring(Effect.suspend(() => this.finish(this.error ?? error, true)))
      )
  }

  // -------------------------------------------------------------------------------------------------------------
  // Ending
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Bounds a close handshake by `closeTimeout`. Interruptible inside, because it usually runs in a finalizer
   * (uninterruptible), where a plain timeout would wait for the loser forever.
   */
  readonly withDeadline = <A, E>(self: Effect.Effect<A, E>): Effect.Effect<void> =>
    Effect.ignore(Effect.timeout(Effect.interruptible(self), this.config.closeTimeout))

  private failAll(error: ClientError): void {
    for (const ch of this.channels.values()) this.failChannel(ch, error)
    this.channels.clear()
    for (const p of this.connectionRpc.splice(0)) Deferred.unsafeDone(p.deferred, Exit.fail(error))
  }

  /** Final teardown: fail everything, stop the writer and the heartbeat, close the transport. Idempotent. */
  private finish(error: ClientError, graceful: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.state === "closed") return Effect.void
      this.state = "closed"
      this.error ??= error
      this.failAll(this.error)
      Deferred.unsafeDone(this.closeOk, Effect.void)
      const heartbeat = this.heartbeat
      // The heartbeat goes last: this may be running on the heartbeat fiber itself (a heartbeat timeout).
      return Effect.all([
        Deferred.done(this.closed, Exit.fail(this.error)),
        this.writer.fail(this.error),
        this.gate.unblock,
        // Interruptible: the transport's own deadline must be able to fire inside a finalizer.
        graceful ? Effect.interruptible(this.transport.close({ timeout: this.config.closeTimeout })) : this.transport.abort(),
        heartbeat === undefined ? Effect.void : Fiber.interruptFork(heartbeat)
      ], { discard: true })
    })
  }

  /** The connection died without a close handshake. */
  lost(reason: ConnectionLost["reason"], detail: string, cause?: unknown): Effect.Effect<void> {
    return this.finish(new ConnectionLost({ reason, detail, cause }), false)
  }

  /**
   * Closes the connection with the close handshake: `connection.close`, wait for `close-ok` (or a crossed
   * `close`) within the deadline, then close the socket. `code` 200 is a normal close; others report a protocol
   * violation by the broker.
   */
  close(code: number, text: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.state !== "open") {
        // Another fiber is closing (a broker close being answered, a protocol error): wait for it within the
        // deadline, then end it ourselves; `finish` is idempotent.
        return Deferred.await(this.closed).pipe(
          this.withDeadline,
          Effect.zipRight(Effect.suspend(() => this.finish(this.error ?? this.closingError(), false)))
        )
      }
      this.state = "closing"
      const error = new ConnectionClosed({ replyCode: code, replyText: text, classId: 0, methodId: 0, byBroker: false })
      this.error = error
      this.failAll(error)
      const close = Methods.make("ConnectionClose", { replyCode: code, replyText: text.slice(0, 200), classId: 0, methodId: 0 })
      return this.writer.offer({ channel: 0, frame: Frame.method(0, close), force: true }).pipe(
        Effect.zipRight(Deferred.await(this.closeOk)),
        this.withDeadline,
        Effect.zipRight(this.finish(error, true)),
        Effect.withSpan(spanName("ConnectionClose"), spanOptions(0))
      )
    })
  }

  /** A protocol violation by the broker: close the connection with the matching code, in the background. */
  fatal(code: number, text: string): Effect.Effect<void> {
    return Effect.asVoid(Effect.forkDaemon(this.close(code, text)))
  }

  updateSecret(secret: Uint8Array, reason: string): Effect.Effect<void, ClientError> {
    return Effect.suspend(() => {
      if (this.state !== "open") return Exit.fail(this.error ?? this.closingError())
      return Effect.asVoid(
        this.request(0, this.connectionRpc, Methods.make("ConnectionUpdateSecret", { newSecret: secret, reason }), [
          "ConnectionUpdateSecretOk"
        ])
      )
    }).pipe(Effect.withSpan(spanName("ConnectionUpdateSecret"), spanOptions(0)))
  }
}

const spanNames = new Map<string, string>()

/** `QueueDeclare` → `amqp.queue.declare`: the class and method as the spec names them. */
export const spanName = (tag: Methods.Tag): string => {
  let name = spanNames.get(tag)
  if (name === undefined) {
    const [klass = tag, ...method] = (tag.match(/[A-Z][a-z]*/g) ?? []).map((word) => word.toLowerCase())
    name = `amqp.${klass}.${method.join("-")}`
    spanNames.set(tag, name)
  }
  return name
}

const spanOptionsByChannel: Array<{ readonly attributes: Record<string, unknown>; readonly captureStackTrace: false }> = []

/** Shared per channel id; no stack trace (it is the costly part of a span, and the request is ours). */
const spanOptions = (channel: number) =>
  spanOptionsByChannel[channel] ??= {
    attributes: { "messaging.system": "rabbitmq", "messaging.rabbitmq.channel": channel },
    captureStackTrace: false
  }

const settleExit = (channel: number, outcome: Outcome): Exit.Exit<void, ClientError> => {
  switch (outcome._tag) {
    case "Acked":
      counts.confirmed++
      return Exit.void
    case "Nacked":
      counts.refused++
      return Exit.fail(new PublishNacked({ channel, deliveryTag: outcome.deliveryTag }))
    case "Returned":
      counts.refused++
      return Exit.fail(
        new PublishReturned({
          channel,
          replyCode: outcome.returned.replyCode,
          replyText: outcome.returned.replyText,
          exchange: outcome.returned.exchange,
          routingKey: outcome.returned.routingKey
        })
      )
  }
}

/** Server properties as text, for logs and `serverProperties` accessors. */
export const describe = (table: FieldTable): string =>
  table.map(([k, v]) => `${k}=${v._tag === "LongString" ? utf8.decode(v.value) : v._tag}`).join(", ")

export const durationMillis = (d: Duration.DurationInput) => Duration.toMillis(Duration.decode(d))
