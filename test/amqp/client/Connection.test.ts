import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import type { ClientError } from "../../../src/amqp/ClientError.js"
import * as ClientMetrics from "../../../src/amqp/ClientMetrics.js"
import * as Connection from "../../../src/amqp/Connection.js"
import * as Frame from "../../../src/amqp/Frame.js"
import * as Methods from "../../../src/amqp/Methods.js"
import * as Table from "../../../src/amqp/Table.js"
import * as FakeBroker from "./fakeBroker.js"

const bytes = (s: string) => new TextEncoder().encode(s)

const closeOk = (_channel: number) => Methods.make("ChannelCloseOk", {})

for (const over of ["memory", "tcp"] as const) {
const connected = (tune?: Parameters<typeof FakeBroker.connected>[0], options?: Connection.Options) =>
  FakeBroker.connected(tune, options, over)

describe(`Connection against a scripted broker (${over})`, () => {
  it.scopedLive("start-ok advertises every capability and the connection name, with a PLAIN response", () =>
    Effect.gen(function*() {
      const broker = yield* FakeBroker.makeOver(over)
      yield* Effect.fork(Connection.make({ transport: Effect.succeed(broker.client), connectionName: "orders" }))
      yield* broker.send(0, Methods.make("ConnectionStart", {
        serverProperties: [],
        mechanisms: bytes("AMQPLAIN PLAIN"),
        locales: bytes("en_US")
      }))
      const startOk = yield* broker.expect("ConnectionStartOk", 0)
      const capabilities = Table.get(startOk.clientProperties, "capabilities")
      assert.strictEqual(capabilities?._tag, "Table")
      if (capabilities?._tag === "Table") {
        for (
          const name of [
            "publisher_confirms",
            "exchange_exchange_bindings",
            "basic.nack",
            "consumer_cancel_notify",
            "connection.blocked",
            "authentication_failure_close",
            "per_consumer_qos"
          ]
        ) assert.deepStrictEqual(Table.get(capabilities.value, name), Table.bool(true), name)
      }
      assert.strictEqual(Table.asString(Table.get(startOk.clientProperties, "connection_name")), "orders")
      assert.strictEqual(startOk.mechanism, "PLAIN")
      assert.deepStrictEqual(Array.from(startOk.response), [0, ...bytes("guest"), 0, ...bytes("guest")])
    }))

  it.scopedLive("a broker answering with another protocol header fails with ProtocolVersionMismatch", () =>
    Effect.gen(function*() {
      const broker = yield* FakeBroker.makeOver(over)
      const connecting = yield* Effect.fork(Connection.make({ transport: Effect.succeed(broker.client) }))
      yield* broker.sendRaw(Uint8Array.of(0x41, 0x4d, 0x51, 0x50, 0x00, 0x01, 0x00, 0x00))
      const error = yield* Effect.flip(Fiber.join(connecting))
      assert.strictEqual(error._tag, "ConnectionFailed")
      if (error._tag === "ConnectionFailed") {
        assert.strictEqual(error.reason, "ProtocolVersionMismatch")
        assert.include(error.detail, "AMQP 0 1 0 0")
      }
    }))

  // Heartbeat timing on the test clock: over a memory transport only, where a frame sent is a frame received.
  if (over === "memory") {
    it.scoped("heartbeat 10 s: a heartbeat is written by t=5 s; a silent broker fails the connection by t=20 s", () =>
      Effect.gen(function*() {
        const { broker, connection } = yield* connected({ heartbeat: 10 })
        assert.strictEqual(connection.tuned.heartbeat, 10)
        const heard = yield* Effect.fork(broker.recv)
        yield* TestClock.adjust("5 seconds")
        const frame = yield* Fiber.join(heard)
        assert.strictEqual(frame._tag, "Heartbeat")
        const closed = yield* Effect.fork(Effect.flip(connection.closed))
        yield* TestClock.adjust("14 seconds")
        assert.isTrue(Option.isNone(yield* Fiber.poll(closed)))
        yield* TestClock.adjust("1 second")
        const error = yield* Fiber.join(closed)
        assert.strictEqual(error._tag, "ConnectionLost")
        if (error._tag === "ConnectionLost") assert.strictEqual(error.reason, "HeartbeatTimeout")
      }))

    it.scoped("any inbound frame counts as liveness", () =>
      Effect.gen(function*() {
        const { broker, connection } = yield* connected({ heartbeat: 10 })
        const closed = yield* Effect.fork(connection.closed)
        for (let i = 0; i < 12; i++) {
          yield* broker.sendFrame(Frame.heartbeat)
          yield* Effect.yieldNow()
          yield* TestClock.adjust("5 seconds")
        }
        assert.isTrue(Option.isNone(yield* Fiber.poll(closed)))
        // Let the close handshake's deadlines run on the test clock.
        const closing = yield* Effect.fork(connection.close)
        while (Option.isNone(yield* Fiber.poll(closing))) yield* TestClock.adjust("1 second")
      }))
  }

  it.scopedLive("channel.close 404 fails three pending requests and ten pending confirms; nothing more is written on it", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      const channelFiber = yield* Effect.fork(connection.channel({ confirm: true }))
      const id = yield* broker.acceptChannel
      yield* broker.expect("ConfirmSelect", id)
      yield* broker.send(id, Methods.make("ConfirmSelectOk", {}))
      const channel = yield* Fiber.join(channelFiber)
      const publishes = yield* Effect.fork(Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) => Effect.exit(channel.publish("", "q", bytes(`m${i}`))),
        { concurrency: "unbounded" }
      ))
      for (let i = 0; i < 10; i++) {
        yield* broker.expect("BasicPublish", id)
        yield* broker.recv // header
        yield* broker.recv // body
      }
      const requests = yield* Effect.fork(Effect.forEach(
        ["a", "b", "c"],
        (name) => Effect.exit(channel.queueDeclare(name)),
        { concurrency: "unbounded" }
      ))
      // One synchronous request at a time: only the first declare is on the wire.
      const first = yield* broker.expect("QueueDeclare", id)
      assert.strictEqual(first.queue, "a")
      assert.isTrue(Option.isNone(yield* broker.poll))
      yield* broker.send(id, Methods.make("ChannelClose", { replyCode: 404, replyText: "NOT_FOUND - no queue 'a'", classId: 50, methodId: 10 }))
      yield* broker.expect("ChannelCloseOk", id)
      const failures: Array<Exit.Exit<unknown, ClientError>> = [...(yield* Fiber.join(publishes)), ...(yield* Fiber.join(requests))]
      assert.strictEqual(failures.length, 13)
      for (const exit of failures) {
        const error = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        assert.strictEqual(error?._tag, "ChannelClosed")
        if (error?._tag === "ChannelClosed") {
          assert.strictEqual(error.replyCode, 404)
          assert.isTrue(error.byBroker)
        }
      }
      const later = yield* Effect.flip(channel.publish("", "q", bytes("late")))
      assert.strictEqual(later._tag, "ChannelClosed")
      if (later._tag === "ChannelClosed") assert.strictEqual(later.replyCode, 404)
      assert.isTrue(Option.isNone(yield* broker.poll))
    }))

  it.scopedLive("confirms: ack 3, ack 1, ack multiple 5 settle publishes 1–5 exactly once; 6 waits; nack fails with PublishNacked", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      const channelFiber = yield* Effect.fork(connection.channel({ confirm: true }))
      const id = yield* broker.acceptChannel
      yield* broker.expect("ConfirmSelect", id)
      yield* broker.send(id, Methods.make("ConfirmSelectOk", {}))
      const channel = yield* Fiber.join(channelFiber)
      const confirmedBefore = (yield* Metric.value(ClientMetrics.confirmed)).count
      const refusedBefore = (yield* Metric.value(ClientMetrics.refused)).count
      const fibers: Array<Fiber.RuntimeFiber<void, unknown>> = []
      for (let i = 1; i <= 7; i++) {
        fibers.push(yield* Effect.fork(channel.publish("", "q", bytes(`m${i}`))))
        yield* broker.expect("BasicPublish", id)
        yield* broker.recv
        yield* broker.recv
      }
      const ack = (deliveryTag: bigint, multiple = false) => broker.send(id, Methods.make("BasicAck", { deliveryTag, multiple }))
      yield* ack(3n)
      yield* ack(1n)
      yield* ack(5n, true)
      yield* broker.send(id, Methods.make("BasicNack", { deliveryTag: 7n, multiple: false, requeue: false }))
      for (let i = 0; i < 5; i++) assert.isTrue(Exit.isSuccess(yield* Fiber.await(fibers[i]!)), `publish ${i + 1}`)
      const nacked = yield* Fiber.await(fibers[6]!)
      assert.isTrue(Exit.isFailure(nacked))
      yield* Effect.sleep("20 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fibers[5]!)))
      assert.strictEqual((yield* Metric.value(ClientMetrics.confirmed)).count - confirmedBefore, 5)
      assert.strictEqual((yield* Metric.value(ClientMetrics.refused)).count - refusedBefore, 1)
    }))

  it.scopedLive("a deliver on channel 0 closes the connection with 505 UNEXPECTED_FRAME", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      yield* broker.send(0, Methods.make("BasicDeliver", { consumerTag: "c", deliveryTag: 1n, exchange: "", routingKey: "q" }))
      const close = yield* broker.expect("ConnectionClose", 0)
      assert.strictEqual(close.replyCode, 505)
      yield* broker.send(0, Methods.make("ConnectionCloseOk", {}))
      const error = yield* Effect.flip(connection.closed)
      assert.strictEqual(error._tag, "ConnectionClosed")
      if (error._tag === "ConnectionClosed") {
        assert.strictEqual(error.replyCode, 505)
        assert.isFalse(error.byBroker)
        assert.include(error.replyText, "BasicDeliver")
      }
    }))

  it.scopedLive("a frame whose end octet is not 0xCE closes the connection with 501 FRAME_ERROR; nothing after it is read", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      const heartbeat = Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 0xce)
      const broken = Uint8Array.of(8, 0, 0, 0, 0, 0, 0, 0x00)
      // A valid frame, then the broken one and a deliver on channel 0 (a 505 if it were read) in the same segment.
      yield* broker.sendRaw(heartbeat)
      const deliver = Either.getOrThrow(Frame.encode(Frame.method(0, Methods.make("BasicDeliver", {
        consumerTag: "c", deliveryTag: 1n, exchange: "", routingKey: "q"
      })), { frameMax: 0 }))
      yield* broker.sendRaw(new Uint8Array([...broken, ...deliver]))
      const close = yield* broker.expect("ConnectionClose", 0)
      assert.strictEqual(close.replyCode, 501)
      yield* broker.send(0, Methods.make("ConnectionCloseOk", {}))
      const error = yield* Effect.flip(connection.closed)
      assert.strictEqual(error._tag === "ConnectionClosed" ? error.replyCode : 0, 501)
    }))

  it.scopedLive("publishes from many fibers at once and from one fiber in a row: every message whole, each fiber's in order", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      const { channel, id } = yield* FakeBroker.openChannel(broker, connection)
      // 50 fibers publishing 4 messages each, then one fiber publishing 300 in a row (past a write's worth of bytes).
      yield* Effect.forEach(Array.from({ length: 50 }, (_, f) => f), (f) =>
        Effect.forEach([0, 1, 2, 3], (i) => channel.publish("", `f${f}`, bytes(`${f}.${i}`)), { discard: true }), {
        concurrency: "unbounded",
        discard: true
      })
      const large = new Uint8Array(1000).fill(0x61)
      yield* Effect.forEach(Array.from({ length: 300 }, (_, i) => i), (i) => channel.publish("", "row", large.map((b) => b + (i % 20))), {
        discard: true
      })
      const seen = new Map<string, Array<string>>()
      for (let n = 0; n < 200; n++) {
        const key = (yield* broker.expect("BasicPublish", id)).routingKey
        const header = yield* broker.recv
        const body = yield* broker.recv
        assert.strictEqual(header._tag, "Header")
        assert.strictEqual(body._tag, "Body")
        if (body._tag === "Body") seen.set(key, [...(seen.get(key) ?? []), new TextDecoder().decode(body.payload)])
      }
      for (let f = 0; f < 50; f++) assert.deepStrictEqual(seen.get(`f${f}`), [0, 1, 2, 3].map((i) => `${f}.${i}`))
      for (let i = 0; i < 300; i++) {
        assert.strictEqual((yield* broker.expect("BasicPublish", id)).routingKey, "row")
        const header = yield* broker.recv
        const body = yield* broker.recv
        assert.strictEqual(header._tag, "Header")
        if (body._tag === "Body") assert.strictEqual(body.payload[0], 0x61 + (i % 20))
        else assert.fail(`expected a body, got ${body._tag}`)
      }
    }))

  it.scopedLive("a heartbeat on channel 1 closes the connection with 505 UNEXPECTED_FRAME", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      yield* broker.sendFrame({ _tag: "Heartbeat", channel: 1 })
      const close = yield* broker.expect("ConnectionClose", 0)
      assert.strictEqual(close.replyCode, 505)
      assert.include(close.replyText, "heartbeat")
      yield* broker.send(0, Methods.make("ConnectionCloseOk", {}))
      const error = yield* Effect.flip(connection.closed)
      assert.strictEqual(error._tag === "ConnectionClosed" ? error.replyCode : 0, 505)
    }))

  it.scopedLive("channel_max 3: ids 1, 2, 3, then ChannelsExhausted; an id is reused after close-ok", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected({ channelMax: 3 })
      assert.strictEqual(connection.tuned.channelMax, 3)
      const ids: Array<number> = []
      const channels = []
      for (let i = 0; i < 3; i++) {
        const opening = yield* Effect.fork(connection.channel())
        ids.push(yield* broker.acceptChannel)
        channels.push(yield* Fiber.join(opening))
      }
      assert.deepStrictEqual(ids, [1, 2, 3])
      const exhausted = yield* Effect.flip(Effect.scoped(connection.channel()))
      assert.strictEqual(exhausted._tag === "ClientRefused" ? exhausted.reason : "", "ChannelsExhausted")
      // Close channel 2: its id is free once close-ok arrives, and the next channel gets it.
      const closing = yield* Effect.fork(channels[1]!.close)
      yield* broker.expect("ChannelClose", 2)
      yield* broker.send(2, closeOk(2))
      yield* Fiber.join(closing)
      const reopening = yield* Effect.fork(connection.channel())
      assert.strictEqual(yield* broker.acceptChannel, 2)
      assert.strictEqual((yield* Fiber.join(reopening)).id, 2)
    }))

  it.scopedLive("crossed closes: a broker channel.close while ours is outstanding is answered and ends the channel", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      const { channel, id } = yield* FakeBroker.openChannel(broker, connection)
      const closing = yield* Effect.fork(channel.close)
      yield* broker.expect("ChannelClose", id)
      yield* broker.send(id, Methods.make("ChannelClose", { replyCode: 406, replyText: "PRECONDITION_FAILED", classId: 0, methodId: 0 }))
      yield* broker.expect("ChannelCloseOk", id)
      yield* broker.send(id, closeOk(id))
      yield* Fiber.join(closing)
      const after = yield* Effect.flip(channel.queueDeclare("x"))
      assert.strictEqual(after._tag, "ChannelClosed")
    }))

  it.scopedLive("content frames are reassembled per channel even when other channels' frames interleave", () =>
    Effect.gen(function*() {
      const { broker, connection } = yield* connected()
      const open = (n: number) =>
        Effect.gen(function*() {
          const { channel, id } = yield* FakeBroker.openChannel(broker, connection)
          assert.strictEqual(id, n)
          return channel
        })
      const one = yield* open(1)
      const two = yield* open(2)
      const consume = (channel: typeof one, id: number) =>
        Effect.gen(function*() {
          const fiber = yield* channel.consume("q", { consumerTag: `c${id}`, noAck: true }).pipe(
            Stream.take(1),
            Stream.runCollect,
            Effect.fork
          )
          yield* broker.expect("BasicConsume", id)
          yield* broker.send(id, Methods.make("BasicConsumeOk", { consumerTag: `c${id}` }))
          return fiber
        })
      const f1 = yield* consume(one, 1)
      const f2 = yield* consume(two, 2)
      const deliver = (id: number) =>
        broker.send(id, Methods.make("BasicDeliver", { consumerTag: `c${id}`, deliveryTag: 1n, exchange: "", routingKey: "q" }))
      yield* deliver(1)
      yield* deliver(2)
      yield* broker.sendFrame(Frame.header(1, 6n, { messageId: "one" }))
      yield* broker.sendFrame(Frame.header(2, 3n, { messageId: "two" }))
      yield* broker.sendFrame(Frame.body(1, bytes("ab")))
      yield* broker.sendFrame(Frame.body(2, bytes("xyz")))
      yield* broker.sendFrame(Frame.body(1, bytes("cd")))
      yield* broker.sendFrame(Frame.body(1, bytes("ef")))
      const d1 = Chunk.unsafeHead(yield* Fiber.join(f1))
      const d2 = Chunk.unsafeHead(yield* Fiber.join(f2))
      assert.strictEqual(d1.text, "abcdef")
      assert.strictEqual(d1.properties.messageId, "one")
      assert.strictEqual(d2.text, "xyz")
    }))
})
}
