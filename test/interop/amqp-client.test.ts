/**
 * The AMQP client against a real RabbitMQ: every channel method, the ways channels and connections end, large
 * messages, small frames, many channels and many concurrent confirmed publishes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Connection from "../../src/amqp/Connection.js"
import * as DirectReplyTo from "../../src/amqp/DirectReplyTo.js"
import * as Table from "../../src/amqp/Table.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("amqp client: rabbitmq", Rabbit.brokerAvailable())

const run = `ew-${process.pid}-${Date.now().toString(36)}`
let counter = 0
const unique = (what: string) => `${run}-${what}-${++counter}`
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

const connect = (options: Connection.Options = {}) =>
  Connection.make({ url: Rabbit.url(), connectionName: unique("conn"), ...options })

describe.skipIf(!hasBroker)("AMQP client against RabbitMQ", () => {
  it.scopedLive("connects with the advertised capabilities; tune settles on the broker's limits", () =>
    Effect.gen(function*() {
      const name = unique("named")
      const connection = yield* connect({ connectionName: name })
      assert.deepStrictEqual(connection.tuned, { channelMax: 2047, frameMax: 131072, heartbeat: 60 })
      assert.strictEqual(Table.asString(Table.get(connection.serverProperties, "product")), "RabbitMQ")
      const connections = yield* Rabbit.listConnections
      assert.isTrue(connections.some((c) => c.name === name))
    }))

  it.scopedLive("exchanges: declare, passive check, exchange-to-exchange bind/unbind route messages, delete", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel()
      const source = unique("src")
      const destination = unique("dst")
      yield* channel.exchangeDeclare(source, "topic", { autoDelete: false })
      yield* channel.exchangeDeclare(destination, "fanout")
      yield* channel.exchangeDeclare(source, "topic", { passive: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.queueBind(queue, destination)
      yield* channel.exchangeBind(destination, source, "a.*")
      yield* channel.publish(source, "a.b", bytes("routed"))
      yield* channel.publish(source, "x.y", bytes("not routed"))
      yield* channel.exchangeUnbind(destination, source, "a.*")
      yield* channel.publish(source, "a.c", bytes("after unbind"))
      // A round trip on the channel makes sure the broker has routed the publishes.
      yield* channel.queueDeclare(queue, { passive: true })
      const first = yield* channel.get(queue, { noAck: true })
      assert.strictEqual(Option.map(first, (d) => d.text).pipe(Option.getOrNull), "routed")
      assert.isTrue(Option.isNone(yield* channel.get(queue, { noAck: true })))
      yield* channel.exchangeDelete(source)
      yield* channel.exchangeDelete(destination, { ifUnused: false })
      const gone = yield* Effect.flip(channel.exchangeDeclare(source, "topic", { passive: true }))
      assert.strictEqual(gone._tag, "ChannelClosed")
      assert.strictEqual(gone._tag === "ChannelClosed" ? gone.replyCode : 0, 404)
    }))

  it.scopedLive("queues: server-named declare, bind/unbind, purge and delete report message counts", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const declared = yield* channel.queueDeclare("", { exclusive: true })
      assert.match(declared.queue, /^amq\.gen-/)
      assert.strictEqual(declared.messageCount, 0)
      yield* channel.queueBind(declared.queue, "amq.direct", "k")
      for (let i = 0; i < 3; i++) yield* channel.publish("amq.direct", "k", bytes(`m${i}`))
      assert.strictEqual((yield* channel.queueDeclare(declared.queue, { passive: true })).messageCount, 3)
      assert.strictEqual(yield* channel.queuePurge(declared.queue), 3)
      yield* channel.queueUnbind(declared.queue, "amq.direct", "k")
      yield* channel.publish("amq.direct", "k", bytes("unrouted"))
      yield* channel.publish("", declared.queue, bytes("direct"))
      assert.strictEqual(yield* channel.queueDelete(declared.queue), 1)
    }))

  it.scopedLive("basic: get, ack, nack and reject with requeue (redelivered), recover, qos", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.qos(10)
      yield* channel.publish("", queue, bytes("one"), { properties: { messageId: "m-1", deliveryMode: 2 } })
      const got = Option.getOrThrow(yield* channel.get(queue))
      assert.strictEqual(got.text, "one")
      assert.strictEqual(got.properties.messageId, "m-1")
      assert.strictEqual(got.properties.deliveryMode, 2)
      assert.strictEqual(got.messageCount, 0)
      assert.isFalse(got.redelivered)
      yield* got.nack({ requeue: true })
      const again = Option.getOrThrow(yield* channel.get(queue))
      assert.isTrue(again.redelivered)
      yield* again.reject({ requeue: true })
      const third = Option.getOrThrow(yield* channel.get(queue))
      yield* channel.recover
      const recovered = Option.getOrThrow(yield* channel.get(queue))
      assert.isTrue(recovered.redelivered)
      assert.notStrictEqual(recovered.deliveryTag, third.deliveryTag)
      yield* recovered.ack()
      assert.isTrue(Option.isNone(yield* channel.get(queue)))
      // An unknown delivery tag is a channel error (406), not a connection error.
      const other = yield* connection.channel()
      const bad = yield* Effect.flip(Effect.zipRight(other.ack(999n), other.queueDeclare("", { exclusive: true })))
      assert.strictEqual(bad._tag === "ChannelClosed" ? bad.replyCode : 0, 406)
      assert.strictEqual((yield* channel.queueDeclare(queue, { passive: true })).messageCount, 0)
    }))

  it.scopedLive("tx: rollback discards, commit delivers", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel()
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.txSelect
      yield* channel.publish("", queue, bytes("rolled back"))
      yield* channel.txRollback
      yield* channel.publish("", queue, bytes("committed"))
      yield* channel.txCommit
      const got = yield* channel.get(queue, { noAck: true })
      assert.strictEqual(Option.getOrThrow(got).text, "committed")
      assert.isTrue(Option.isNone(yield* channel.get(queue, { noAck: true })))
      // A transactional channel cannot switch to confirms (406).
      const refused = yield* Effect.flip(channel.confirmSelect)
      assert.strictEqual(refused._tag === "ChannelClosed" ? refused.replyCode : 0, 406)
    }))

  it.scopedLive("a passive declare of a missing queue closes only its channel (404), with the method that caused it", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const doomed = yield* connection.channel()
      const survivor = yield* connection.channel()
      const error = yield* Effect.flip(doomed.queueDeclare(unique("missing"), { passive: true }))
      assert.strictEqual(error._tag, "ChannelClosed")
      if (error._tag === "ChannelClosed") {
        assert.strictEqual(error.replyCode, 404)
        assert.isTrue(error.byBroker)
        assert.strictEqual(error.classId, 50)
        assert.strictEqual(error.methodId, 10)
        assert.include(error.replyText, "NOT_FOUND")
      }
      // Later calls fail locally with the same error, nothing reaches the socket.
      const later = yield* Effect.flip(doomed.publish("", "x", bytes("x")))
      assert.strictEqual(later, error)
      const { queue } = yield* survivor.queueDeclare("", { exclusive: true })
      assert.match(queue, /^amq\.gen-/)
    }))

  it.scopedLive("channel.flow: RabbitMQ confirms flow(true); flow(false), which it would answer with 540, is refused locally", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      assert.isTrue(yield* channel.flow(true))
      const refused = yield* Effect.flip(channel.flow(false))
      assert.strictEqual(refused._tag, "ClientRefused")
      // Nothing reached the broker: the channel and the connection go on.
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.publish("", queue, bytes("after flow"))
      assert.strictEqual((yield* channel.queueDeclare(queue, { passive: true })).messageCount, 1)
    }))

  it.scopedLive("redeclaring with different arguments is 406 PRECONDITION_FAILED", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel()
      const name = unique("q")
      yield* channel.queueDeclare(name, { autoDelete: true, arguments: [["x-max-length", Table.int32(10)]] })
      const error = yield* Effect.flip(
        channel.queueDeclare(name, { autoDelete: true, arguments: [["x-max-length", Table.int32(20)]] })
      )
      assert.strictEqual(error._tag === "ChannelClosed" ? error.replyCode : 0, 406)
      const cleanup = yield* connection.channel()
      yield* cleanup.queueDelete(name)
    }))

  it.scopedLive("a vhost the user may not open fails with AccessRefused (530); a wrong password with AuthenticationFailed (403)", () =>
    Effect.gen(function*() {
      const denied = yield* Effect.flip(connect({ url: Rabbit.url({ vhost: Rabbit.deniedVhost }) }))
      assert.strictEqual(denied._tag, "ConnectionFailed")
      if (denied._tag === "ConnectionFailed") {
        assert.strictEqual(denied.reason, "AccessRefused")
        assert.strictEqual(denied.replyCode, 530)
      }
      const refused = yield* Effect.flip(connect({ password: Redacted.make("wrong") }))
      assert.strictEqual(refused._tag, "ConnectionFailed")
      if (refused._tag === "ConnectionFailed") {
        assert.strictEqual(refused.reason, "AuthenticationFailed")
        assert.strictEqual(refused.replyCode, 403)
      }
      const missingMechanism = yield* Effect.flip(connect({ authMechanisms: ["EXTERNAL"] }))
      assert.strictEqual(missingMechanism._tag === "ConnectionFailed" ? missingMechanism.reason : "", "MechanismNotSupported")
    }))

  it.scopedLive("publishing to a missing exchange closes the channel (404) and fails its confirm; the connection lives", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const error = yield* Effect.flip(channel.publish(unique("no-such-exchange"), "k", bytes("lost")))
      assert.strictEqual(error._tag, "ChannelClosed")
      assert.strictEqual(error._tag === "ChannelClosed" ? error.replyCode : 0, 404)
      const next = yield* connection.channel({ confirm: true })
      const { queue } = yield* next.queueDeclare("", { exclusive: true })
      yield* next.publish("", queue, bytes("fine"))
    }))

  it.scopedLive("an unroutable mandatory publish fails with PublishReturned (312) and shows up on the returns stream", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const returns = yield* channel.returns.pipe(Stream.take(1), Stream.runCollect, Effect.fork)
      yield* Effect.sleep("50 millis")
      const error = yield* Effect.flip(channel.publish("amq.direct", unique("nobody"), bytes("back"), { mandatory: true }))
      assert.strictEqual(error._tag, "PublishReturned")
      if (error._tag === "PublishReturned") assert.strictEqual(error.replyCode, 312)
      const returned = Chunk.toArray(yield* Fiber.join(returns))
      assert.strictEqual(text(returned[0]!.body), "back")
      // Routable mandatory publishes on the same channel are acked as usual.
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* channel.publish("", queue, bytes("kept"), { mandatory: true })
    }))

  it.scopedLive("consume: prefetch bounds what is delivered; interrupting the stream cancels the consumer", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      yield* Effect.forEach(Array.from({ length: 20 }, (_, i) => i), (i) => channel.publish("", queue, bytes(`m${i}`)), {
        concurrency: "unbounded",
        discard: true
      })
      // Take 5 without acking: the broker sends no more than the prefetch.
      const consumer = yield* channel.consume(queue, { prefetch: 5 }).pipe(Stream.take(5), Stream.runCollect, Effect.fork)
      const first = Chunk.toArray(yield* Fiber.join(consumer))
      assert.deepStrictEqual(first.map((d) => d.text), ["m0", "m1", "m2", "m3", "m4"])
      // The stream ended, so the consumer is cancelled; the 5 unacked stay unacked on the channel.
      const status = yield* channel.queueDeclare(queue, { passive: true })
      assert.strictEqual(status.consumerCount, 0)
      assert.strictEqual(status.messageCount, 15)
      yield* first[4]!.ack({ multiple: true })
      const rest = yield* channel.consume(queue, { prefetch: 100 }).pipe(
        Stream.tap((d) => d.ack()),
        Stream.take(15),
        Stream.runCollect
      )
      assert.deepStrictEqual(Chunk.toArray(rest).map((d) => d.text), Array.from({ length: 15 }, (_, i) => `m${i + 5}`))
    }))

  it.scopedLive("deleting the queue under a consumer ends its stream with ConsumerCancelled", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel()
      const admin = yield* connection.channel()
      const { queue } = yield* channel.queueDeclare(unique("doomed"), { autoDelete: false })
      const consumer = yield* channel.consume(queue).pipe(Stream.runDrain, Effect.flip, Effect.fork)
      yield* Effect.sleep("100 millis")
      yield* admin.queueDelete(queue)
      const error = yield* Fiber.join(consumer)
      assert.strictEqual(error._tag, "ConsumerCancelled")
      // The channel is still usable.
      yield* channel.queueDeclare("", { exclusive: true })
    }))

  it.scopedLive("a 64 MiB message goes through and comes back byte for byte", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      const size = 64 * 1024 * 1024
      const body = new Uint8Array(size)
      for (let i = 0; i < size; i += 4096) body[i] = (i / 4096) & 0xff
      body[size - 1] = 0x5a
      yield* channel.publish("", queue, body)
      const got = Option.getOrThrow(yield* channel.get(queue, { noAck: true }))
      assert.strictEqual(got.body.length, size)
      assert.strictEqual(got.body[size - 1], 0x5a)
      for (let i = 0; i < size; i += 4096) assert.strictEqual(got.body[i], (i / 4096) & 0xff)
    }), { timeout: 60_000 })

  it.scopedLive("frame_max 8192: bodies are split in frames the broker accepts and reassembled on delivery", () =>
    Effect.gen(function*() {
      const connection = yield* connect({ frameMax: 8192 })
      assert.strictEqual(connection.tuned.frameMax, 8192)
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      const body = new Uint8Array(100_000).map((_, i) => i % 251)
      yield* channel.publish("", queue, body, {
        properties: { headers: [["big", Table.string("x".repeat(4000))]] }
      })
      const got = yield* channel.consume(queue, { noAck: true }).pipe(Stream.take(1), Stream.runCollect)
      const delivery = Chunk.unsafeHead(got)
      assert.deepStrictEqual(delivery.body, body)
      assert.strictEqual(Table.asString(Table.get(delivery.properties.headers ?? [], "big"))?.length, 4000)
    }))

  it.scopedLive("1,000 concurrent confirmed publishes on one channel are all confirmed and all arrive intact", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const channel = yield* connection.channel({ confirm: true })
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      // Bodies larger than a frame, so interleaving would corrupt them.
      const body = (i: number) => new Uint8Array(140_000).fill(i % 256)
      yield* Effect.forEach(
        Array.from({ length: 1000 }, (_, i) => i),
        (i) => channel.publish("", queue, body(i), { properties: { messageId: String(i) } }),
        { concurrency: "unbounded", discard: true }
      )
      assert.strictEqual((yield* channel.queueDeclare(queue, { passive: true })).messageCount, 1000)
      const received = yield* channel.consume(queue, { noAck: true }).pipe(Stream.take(1000), Stream.runCollect)
      const ids = new Set<string>()
      for (const d of received) {
        const i = Number(d.properties.messageId)
        ids.add(d.properties.messageId!)
        assert.strictEqual(d.body.length, 140_000)
        assert.isTrue(d.body[0] === i % 256 && d.body[139_999] === i % 256)
      }
      assert.strictEqual(ids.size, 1000)
    }), { timeout: 60_000 })

  it.scopedLive("100 channels on one connection work side by side", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const results = yield* Effect.forEach(
        Array.from({ length: 100 }, (_, i) => i),
        (i) =>
          Effect.gen(function*() {
            const channel = yield* connection.channel({ confirm: true })
            const { queue } = yield* channel.queueDeclare("", { exclusive: true })
            yield* channel.publish("", queue, bytes(`channel ${channel.id}`))
            const got = Option.getOrThrow(yield* channel.get(queue, { noAck: true }))
            return [i, channel.id, got.text] as const
          }),
        { concurrency: "unbounded" }
      )
      const ids = new Set(results.map(([, id]) => id))
      assert.strictEqual(ids.size, 100)
      for (const [, id, body] of results) assert.strictEqual(body, `channel ${id}`)
    }))

  it.scopedLive("a connection the broker closes (320 CONNECTION_FORCED) fails its consumers and `closed` with the code", () =>
    Effect.gen(function*() {
      const name = unique("forced")
      const connection = yield* connect({ connectionName: name })
      const channel = yield* connection.channel()
      const { queue } = yield* channel.queueDeclare("", { exclusive: true })
      const consumer = yield* channel.consume(queue).pipe(Stream.runDrain, Effect.flip, Effect.fork)
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* Rabbit.closeConnection(name, "test says bye"), 1)
      const closed = yield* Effect.flip(connection.closed)
      assert.strictEqual(closed._tag, "ConnectionClosed")
      if (closed._tag === "ConnectionClosed") {
        assert.strictEqual(closed.replyCode, 320)
        assert.isTrue(closed.byBroker)
        assert.include(closed.replyText, "test says bye")
      }
      assert.strictEqual(yield* Fiber.join(consumer), closed)
      const after = yield* Effect.flip(channel.queueDeclare("", { exclusive: true }))
      assert.strictEqual(after, closed)
    }))

  it.scopedLive("closing the scope closes channels and the connection with the handshake", () =>
    Effect.gen(function*() {
      const name = unique("scoped")
      yield* Effect.scoped(Effect.gen(function*() {
        const connection = yield* connect({ connectionName: name })
        yield* connection.channel()
        assert.isTrue((yield* Rabbit.listConnections).some((c) => c.name === name))
      }))
      assert.isFalse((yield* Rabbit.listConnections).some((c) => c.name === name))
    }))

  it.scopedLive("direct reply-to: request/response round trips; one reply consumer per channel; a silent server times out", () =>
    Effect.gen(function*() {
      const server = yield* connect()
      const serverChannel = yield* server.channel()
      const { queue } = yield* serverChannel.queueDeclare("", { exclusive: true })
      yield* Effect.forkScoped(DirectReplyTo.serve(serverChannel, queue, (request) =>
        Effect.succeed({ body: bytes(`echo ${request.text}`) })))
      const connection = yield* connect()
      const channel = yield* connection.channel()
      const client = yield* DirectReplyTo.client(channel)
      const replies = yield* Effect.forEach(["a", "b", "c"], (x) => client.call("", queue, bytes(x)), {
        concurrency: "unbounded"
      })
      assert.deepStrictEqual(replies.map((d) => d.text), ["echo a", "echo b", "echo c"])
      assert.strictEqual(yield* client.pending, 0)
      const second = yield* Effect.flip(DirectReplyTo.client(channel))
      assert.strictEqual(second._tag === "ClientRefused" ? second.reason : "", "ReplyConsumerExists")
      const { queue: nobody } = yield* channel.queueDeclare("", { exclusive: true })
      const timedOut = yield* Effect.flip(client.call("", nobody, bytes("?"), { timeout: "200 millis" }))
      assert.strictEqual(timedOut._tag, "Timeout")
    }))

  it.scopedLive("publishAll: a batch completes once written (or all acked); a returned message fails the batch", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      const plain = yield* connection.channel()
      const confirming = yield* connection.channel({ confirm: true })
      const { queue } = yield* confirming.queueDeclare("", { exclusive: true })
      const batch = (n: number, from = 0) =>
        Array.from({ length: n }, (_, i) => ({ exchange: "", routingKey: queue, body: bytes(`m${from + i}`) }))
      yield* plain.publishAll(batch(500))
      yield* confirming.publishAll(batch(500, 500))
      assert.strictEqual((yield* confirming.queueDeclare(queue, { passive: true })).messageCount, 1000)
      const first = Option.getOrThrow(yield* confirming.get(queue, { noAck: true }))
      assert.strictEqual(first.text, "m0")
      const returned = yield* Effect.flip(confirming.publishAll([
        ...batch(3, 1000),
        { exchange: "amq.direct", routingKey: unique("nowhere"), body: bytes("lost"), options: { mandatory: true } }
      ]))
      assert.strictEqual(returned._tag, "PublishReturned")
      const tooLong = yield* Effect.flip(plain.publishAll([{ exchange: "", routingKey: "é".repeat(200), body: bytes("x") }]))
      assert.strictEqual(tooLong._tag === "ClientRefused" ? tooLong.reason : "", "InvalidArgument")
    }))

  it.scopedLive("update-secret replaces the credential on the live connection, which keeps working", () =>
    Effect.gen(function*() {
      const connection = yield* connect()
      yield* connection.updateSecret(Redacted.make(Rabbit.guest.password), "token refresh")
      const channel = yield* connection.channel()
      yield* channel.queueDeclare("", { exclusive: true })
    }))
})
