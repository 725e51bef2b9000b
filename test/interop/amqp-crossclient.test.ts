/**
 * effect-wire and amqplib on the same RabbitMQ, in both directions: every basic property and a headers table with
 * every field type RabbitMQ carries.
 */
import { assert, describe, it } from "@effect/vitest"
import amqplib from "amqplib"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import * as Connection from "../../src/amqp/Connection.js"
import * as Table from "../../src/amqp/Table.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("amqp cross-client: rabbitmq", Rabbit.brokerAvailable())

const amqplibChannel = Effect.acquireRelease(
  Effect.promise(async () => {
    const connection = await amqplib.connect(Rabbit.url())
    connection.on("error", () => undefined)
    return { connection, channel: await connection.createChannel() }
  }),
  ({ connection }) => Effect.promise(() => connection.close().catch(() => undefined))
)

const timestamp = new Date("2024-01-01T00:00:00Z")

describe.skipIf(!hasBroker)("AMQP cross-client with amqplib", () => {
  it.scopedLive("amqplib publishes every property and header type; effect-wire decodes each exactly", () =>
    Effect.gen(function*() {
      const { channel: theirs } = yield* amqplibChannel
      const connection = yield* Connection.make({ url: Rabbit.url(), connectionName: "crossclient-in" })
      const ours = yield* connection.channel()
      const { queue } = yield* ours.queueDeclare("", { exclusive: true })
      const deliveries = yield* ours.consume(queue, { noAck: true }).pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("50 millis")
      theirs.sendToQueue(queue, Buffer.from("from amqplib"), {
        contentType: "application/json",
        contentEncoding: "identity",
        deliveryMode: 2,
        priority: 5,
        correlationId: "corr-1",
        replyTo: "reply-q",
        expiration: "60000",
        messageId: "msg-1",
        timestamp: timestamp.getTime() / 1000,
        type: "test.event",
        userId: "guest",
        appId: "amqplib",
        headers: {
          int8: { "!": "int8", value: -8 },
          uint8: { "!": "uint8", value: 200 },
          int16: { "!": "int16", value: -1600 },
          uint16: { "!": "uint16", value: 60000 },
          int32: { "!": "int32", value: -2_000_000_000 },
          uint32: { "!": "uint32", value: 4_000_000_000 },
          int64: { "!": "int64", value: 2 ** 40 },
          float: { "!": "float", value: 1.5 },
          double: { "!": "double", value: 0.1 },
          decimal: { "!": "decimal", value: { places: 2, digits: 12345 } },
          timestamp: { "!": "timestamp", value: timestamp.getTime() / 1000 },
          string: "héllo",
          bool: true,
          void: null,
          bytes: Buffer.from([0, 1, 2, 255]),
          array: [1, "two", false],
          table: { nested: "yes", n: 7 }
        }
      })
      const delivery = Chunk.unsafeHead(yield* Fiber.join(deliveries))
      assert.strictEqual(delivery.text, "from amqplib")
      const p = delivery.properties
      assert.strictEqual(p.contentType, "application/json")
      assert.strictEqual(p.contentEncoding, "identity")
      assert.strictEqual(p.deliveryMode, 2)
      assert.strictEqual(p.priority, 5)
      assert.strictEqual(p.correlationId, "corr-1")
      assert.strictEqual(p.replyTo, "reply-q")
      assert.strictEqual(p.expiration, "60000")
      assert.strictEqual(p.messageId, "msg-1")
      assert.strictEqual(p.timestamp?.getTime(), timestamp.getTime())
      assert.strictEqual(p.type, "test.event")
      assert.strictEqual(p.userId, "guest")
      assert.strictEqual(p.appId, "amqplib")
      const h = p.headers ?? []
      const get = (name: string) => Table.get(h, name)
      assert.deepStrictEqual(get("int8"), Table.int8(-8))
      assert.deepStrictEqual(get("uint8"), Table.uint8(200))
      assert.deepStrictEqual(get("int16"), Table.int16(-1600))
      assert.deepStrictEqual(get("uint16"), Table.uint16(60000))
      assert.deepStrictEqual(get("int32"), Table.int32(-2_000_000_000))
      assert.deepStrictEqual(get("uint32"), Table.uint32(4_000_000_000))
      assert.deepStrictEqual(get("int64"), Table.int64(2n ** 40n))
      assert.deepStrictEqual(get("float"), Table.float32(1.5))
      assert.deepStrictEqual(get("double"), Table.float64(0.1))
      assert.deepStrictEqual(get("decimal"), Table.decimal(2, 12345))
      assert.deepStrictEqual(get("timestamp"), Table.timestamp(timestamp))
      assert.strictEqual(Table.asString(get("string")), "héllo")
      assert.deepStrictEqual(get("bool"), Table.bool(true))
      assert.deepStrictEqual(get("void"), Table.voidValue)
      assert.deepStrictEqual(get("bytes"), Table.bytes(Uint8Array.of(0, 1, 2, 255)))
      const array = get("array")
      assert.strictEqual(array?._tag, "Array")
      if (array?._tag === "Array") {
        assert.strictEqual(Table.asInteger(array.value[0]), 1)
        assert.strictEqual(Table.asString(array.value[1]), "two")
        assert.deepStrictEqual(array.value[2], Table.bool(false))
      }
      const table = get("table")
      assert.strictEqual(table?._tag, "Table")
      if (table?._tag === "Table") {
        assert.strictEqual(Table.asString(Table.get(table.value, "nested")), "yes")
        assert.strictEqual(Table.asInteger(Table.get(table.value, "n")), 7)
      }
    }))

  it.scopedLive("effect-wire publishes every property and header type; amqplib reads the same values", () =>
    Effect.gen(function*() {
      const { channel: theirs } = yield* amqplibChannel
      const connection = yield* Connection.make({ url: Rabbit.url(), connectionName: "crossclient-out" })
      const ours = yield* connection.channel({ confirm: true })
      const { queue } = yield* ours.queueDeclare("", { exclusive: false, autoDelete: true })
      yield* ours.publish("", queue, new TextEncoder().encode("from effect-wire"), {
        properties: {
          contentType: "text/plain",
          contentEncoding: "utf-8",
          deliveryMode: 1,
          priority: 0,
          correlationId: "corr-2",
          replyTo: "reply-queue",
          expiration: "30000",
          messageId: "msg-2",
          timestamp,
          type: "test.reply",
          userId: "guest",
          appId: "effect-wire",
          headers: [
            ["int8", Table.int8(-128)],
            ["uint8", Table.uint8(255)],
            ["int16", Table.int16(-32768)],
            ["uint16", Table.uint16(65535)],
            ["int32", Table.int32(2147483647)],
            ["uint32", Table.uint32(4294967295)],
            ["int64", Table.int64(-(2n ** 53n))],
            ["float", Table.float32(2.5)],
            ["double", Table.float64(Math.PI)],
            ["decimal", Table.decimal(3, 1234567)],
            ["timestamp", Table.timestamp(timestamp)],
            ["string", Table.string("wörld")],
            ["bool", Table.bool(false)],
            ["void", Table.voidValue],
            ["bytes", Table.bytes(Uint8Array.of(9, 8, 7))],
            ["array", Table.array([Table.int32(1), Table.string("b")])],
            ["table", Table.table([["k", Table.string("v")]])]
          ]
        }
      })
      const message = yield* Effect.promise(() => theirs.get(queue, { noAck: true }))
      assert.isTrue(message !== false)
      if (message === false) return
      assert.strictEqual(message.content.toString(), "from effect-wire")
      const p = message.properties
      assert.strictEqual(p.contentType, "text/plain")
      assert.strictEqual(p.contentEncoding, "utf-8")
      assert.strictEqual(p.deliveryMode, 1)
      // priority 0 is sent (flag set), not dropped as falsy.
      assert.strictEqual(p.priority, 0)
      assert.strictEqual(p.correlationId, "corr-2")
      assert.strictEqual(p.replyTo, "reply-queue")
      assert.strictEqual(p.expiration, "30000")
      assert.strictEqual(p.messageId, "msg-2")
      assert.strictEqual(p.timestamp, timestamp.getTime() / 1000)
      assert.strictEqual(p.type, "test.reply")
      assert.strictEqual(p.userId, "guest")
      assert.strictEqual(p.appId, "effect-wire")
      const h = p.headers as Record<string, unknown>
      assert.strictEqual(h.int8, -128)
      assert.strictEqual(h.uint8, 255)
      assert.strictEqual(h.int16, -32768)
      assert.strictEqual(h.uint16, 65535)
      assert.strictEqual(h.int32, 2147483647)
      assert.strictEqual(h.uint32, 4294967295)
      assert.strictEqual(h.int64, -(2 ** 53))
      assert.strictEqual(h.float, 2.5)
      assert.strictEqual(h.double, Math.PI)
      assert.deepStrictEqual(h.decimal, { "!": "decimal", value: { places: 3, digits: 1234567 } })
      assert.deepStrictEqual(h.timestamp, { "!": "timestamp", value: timestamp.getTime() / 1000 })
      assert.strictEqual(h.string, "wörld")
      assert.strictEqual(h.bool, false)
      assert.strictEqual(h.void, null)
      assert.deepStrictEqual([...(h.bytes as Buffer)], [9, 8, 7])
      assert.deepStrictEqual(h.array, [1, "b"])
      assert.deepStrictEqual(h.table, { k: "v" })
    }))
})
