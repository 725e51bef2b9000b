/**
 * The reader: one fiber reads the socket, feeds the parser and handles every frame synchronously against the
 * engine's state (channel methods, content assembly, confirms, closes). It returns an Effect only when something
 * must wait or be written, collected per read and run in order, so a frame costs no Effect of its own.
 *
 * The reader never waits on application code, except when a consumer's bounded buffer is full (a consumer without
 * a prefetch limit): then it waits, which pauses the socket, as documented on `ConsumeOptions.bufferSize`.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { plainBytes } from "../../../internal/plainBytes.js"
import { withInlineReader } from "../../../transport/internal/socket.js"
import { isEof } from "../../../transport/Transport.js"
import type { AmqpError } from "../../AmqpError.js"
import { ChannelClosed, ConnectionClosed, ConsumerCancelled } from "../../ClientError.js"
import * as ClientMetrics from "../../ClientMetrics.js"
import { Delivery } from "../../Consumer.js"
import * as Frame from "../../Frame.js"
import * as Methods from "../../Methods.js"
import type { ReturnedMessage } from "../../Publisher.js"
import { Completion } from "./completion.js"
import { counts, flushCounts } from "./counts.js"
import type { Engine } from "./engine.js"
import type { ChannelState, Content, Reply } from "./state.js"

type M<T extends Methods.Tag> = Methods.ByTag<T>

/**
 * The reader fiber: reads until EOF or error, feeding the parser and dispatching every frame.
 *
 * On a socket, reads that need no Effect (most of them: confirms, replies, deliveries with room) are handled inline
 * as the bytes arrive, while this fiber is parked; it wakes only for what must wait or be written, and for the
 * end of the connection.
 */
export const readLoop = (engine: Engine, now: () => number): Effect.Effect<void> =>
  Effect.suspend(() => {
    // Dispatch may need to wait (a full consumer buffer) or act (a close): collected per read, run in order.
    const actions: Array<Effect.Effect<void>> = []
    let frames = 0
    const onFrame = (frame: Frame.Frame) => {
      frames++
      const action = dispatch(engine, frame)
      if (action !== undefined) actions.push(action)
    }
    /** Feeds one read; the parser's error, if any. */
    const feed = (chunk: Uint8Array): AmqpError | undefined => {
      const error = engine.parser.feed(plainBytes(chunk), onFrame)
      flushCounts(frames)
      frames = 0
      return error
    }
    const onParseError = (error: AmqpError) =>
      Effect.gen(function*() {
        for (const action of actions.splice(0)) yield* action
        const code = error.reason === "FrameTooLarge" || error.reason === "BadFrameEnd" ? 501 : 505
        yield* engine.fatal(code, error.message)
      })

    // A parse error the inline reader met, for the fiber to act on first.
    let inlineError: AmqpError | undefined = undefined
    const inline = (chunk: Uint8Array): boolean => {
      engine.activity.lastRead = now()
      inlineError = feed(chunk)
      return inlineError === undefined && actions.length === 0
    }

    const loop = Effect.gen(function*() {
      while (true) {
        const result = yield* Effect.either(engine.transport.read)
        if (inlineError !== undefined) return yield* onParseError(inlineError)
        if (result._tag === "Left") {
          if (engine.state === "open") yield* engine.lost("Transport", result.left.message, result.left)
          return
        }
        const read = result.right
        if (isEof(read)) {
          if (engine.state === "open") yield* engine.lost("Eof", "the broker closed the socket without connection.close")
          else Deferred.unsafeDone(engine.closeOk, Effect.void)
          return
        }
        engine.activity.lastRead = now()
        for (const chunk of read) {
          // The empty read that wakes this fiber for the inline reader's actions.
          if (chunk.length === 0) continue
          const error = feed(chunk)
          if (error !== undefined) return yield* onParseError(error)
        }
        for (const action of actions.splice(0)) yield* action
      }
    })
    return withInlineReader(engine.transport, inline, loop)
  })

/** Handles one frame synchronously; returns an Effect only when something must wait or be written. */
export const dispatch = (engine: Engine, frame: Frame.Frame): Effect.Effect<void> | undefined => {
  if (frame._tag === "Heartbeat") {
    return frame.channel === 0 ? undefined : engine.fatal(505, `heartbeat frame on channel ${frame.channel}`)
  }
  if (frame.channel === 0) {
    if (frame._tag !== "Method") return engine.fatal(505, `${frame._tag.toLowerCase()} frame on channel 0`)
    return onConnectionMethod(engine, frame.method)
  }
  if (engine.state !== "open") return undefined
  const ch = engine.channels.get(frame.channel)
  if (ch === undefined) return engine.fatal(504, `frame for channel ${frame.channel}, which is not open`)
  if (ch.status === "closing") {
    // After our channel.close, only close and close-ok count (spec §1.5.2.5).
    if (frame._tag === "Method" && frame.method._tag === "ChannelCloseOk") {
      if (ch.closeOk !== undefined) Deferred.unsafeDone(ch.closeOk, Effect.void)
      return undefined
    }
    if (frame._tag === "Method" && frame.method._tag === "ChannelClose") return onChannelClose(engine, ch, frame.method)
    return undefined
  }
  if (ch.status === "closed") return undefined
  switch (frame._tag) {
    case "Method":
      if (ch.content !== undefined) {
        return engine.fatal(505, `${frame.method._tag} on channel ${ch.id} while content was expected`)
      }
      return onChannelMethod(engine, ch, frame.method)
    case "Header": {
      const content = ch.content
      if (content === undefined || content.properties !== undefined) {
        return engine.fatal(505, `unexpected content header on channel ${ch.id}`)
      }
      if (frame.bodySize > BigInt(engine.config.maxMessageSize)) {
        return engine.fatal(
          501,
          `message of ${frame.bodySize} bytes on channel ${ch.id} is above maxMessageSize ${engine.config.maxMessageSize}`
        )
      }
      content.properties = frame.properties
      content.size = Number(frame.bodySize)
      return content.size === 0 ? completeContent(engine, ch, content, new Uint8Array(0)) : undefined
    }
    case "Body": {
      const content = ch.content
      if (content === undefined || content.properties === undefined) {
        return engine.fatal(505, `unexpected content body on channel ${ch.id}`)
      }
      const payload = frame.payload
      if (content.received + payload.length > content.size) {
        return engine.fatal(505, `content body on channel ${ch.id} is longer than its header announced`)
      }
      if (content.received === 0 && payload.length === content.size) {
        // Single-frame body: the parser's view of the read chunk is ours to keep.
        return completeContent(engine, ch, content, payload)
      }
      content.body ??= new Uint8Array(content.size)
      content.body.set(payload, content.received)
      content.received += payload.length
      return content.received === content.size ? completeContent(engine, ch, content, content.body) : undefined
    }
  }
}

const onConnectionMethod = (engine: Engine, method: Methods.Method): Effect.Effect<void> | undefined => {
  switch (method._tag) {
    case "ConnectionClose":
      return onConnectionClose(engine, method)
    case "ConnectionCloseOk":
      Deferred.unsafeDone(engine.closeOk, Effect.void)
      return undefined
    case "ConnectionBlocked":
      return engine.gate.block(method.reason)
    case "ConnectionUnblocked":
      return engine.gate.unblock
    case "ConnectionUpdateSecretOk": {
      const head = engine.connectionRpc.shift()
      if (head !== undefined) Deferred.unsafeDone(head.deferred, Effect.succeed({ method }))
      return undefined
    }
    default:
      if (engine.state !== "open") return undefined
      return engine.fatal(505, `unexpected ${method._tag} on channel 0`)
  }
}

const onChannelMethod = (engine: Engine, ch: ChannelState, method: Methods.Method): Effect.Effect<void> | undefined => {
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
      return onChannelClose(engine, ch, method)
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
        : engine.postNow(ch, Methods.make("BasicCancelOk", { consumerTag: method.consumerTag }))
    }
    case "ChannelFlow": {
      // The broker stops (or restarts) our publishes on this channel; flow-ok confirms it.
      if (!method.active) ch.flowPaused ??= new Completion()
      else {
        const paused = ch.flowPaused
        ch.flowPaused = undefined
        paused?.succeed()
      }
      return engine.postNow(ch, Methods.make("ChannelFlowOk", { active: method.active }))
    }
    default:
      return resolve(engine, ch, { method })
  }
}

const resolve = (engine: Engine, ch: ChannelState, reply: Reply): Effect.Effect<void> | undefined => {
  const head = ch.rpc[0]
  if (head === undefined || !head.expect.includes(reply.method._tag)) {
    return engine.fatal(
      505,
      `unexpected ${reply.method._tag} on channel ${ch.id}` +
        (head === undefined ? "" : ` while waiting for ${head.expect.join(" or ")}`)
    )
  }
  ch.rpc.shift()
  Deferred.unsafeDone(head.deferred, Effect.succeed(reply))
  return undefined
}

const completeContent = (
  engine: Engine,
  ch: ChannelState,
  content: Content,
  body: Uint8Array
): Effect.Effect<void> | undefined => {
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
      return resolve(engine, ch, { method, properties, body })
  }
}

const onChannelClose = (engine: Engine, ch: ChannelState, method: M<"ChannelClose">): Effect.Effect<void> => {
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
  engine.failChannel(ch, error)
  // close-ok goes out even though the channel is closed; the id is free once it is on the wire.
  return Effect.ignore(engine.writer.offer({
    channel: ch.id,
    frame: Frame.method(ch.id, Methods.make("ChannelCloseOk", {})),
    force: true,
    onWrite: () => engine.forget(ch)
  }))
}

const onConnectionClose = (engine: Engine, method: M<"ConnectionClose">): Effect.Effect<void> => {
  const error = new ConnectionClosed({
    replyCode: method.replyCode,
    replyText: method.replyText,
    classId: method.classId,
    methodId: method.methodId,
    byBroker: true
  })
  if (engine.state === "closing") {
    // Crossed closes: answer theirs; ours is done.
    Deferred.unsafeDone(engine.closeOk, Effect.void)
  }
  const wasOpen = engine.state === "open"
  engine.state = "closing"
  if (wasOpen) engine.error = error
  engine.failAll(engine.error ?? error)
  // The teardown runs even if the reader is interrupted while close-ok waits to be written (its scope closing):
  // whoever else waits for the end must not wait for a reader that is gone.
  return engine.writer.send({ channel: 0, frame: Frame.method(0, Methods.make("ConnectionCloseOk", {})), force: true })
    .pipe(
      engine.withDeadline,
      Effect.ensuring(Effect.suspend(() => engine.finish(engine.error ?? error, true)))
    )
}
