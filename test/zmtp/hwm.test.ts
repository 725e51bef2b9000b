/**
 * High-water marks per peer, fair queueing, the drop policies of PUB and SUB, non-blocking sends, counters and
 * the peer details in socket events.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Command from "../../src/zmtp/Command.js"
import * as Frame from "../../src/zmtp/Frame.js"
import * as Greeting from "../../src/zmtp/Greeting.js"
import * as Metadata from "../../src/zmtp/Metadata.js"
import * as Socket from "../../src/zmtp/Socket.js"
import { endpoint, msg, pair, rawPeer, settle, text, texts } from "./support.js"

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

describe("Socket high-water marks and fair queueing", () => {
  it.scoped("ROUTER takes from its peers in turn, not in arrival order", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      yield* router.bind(address)
      const a = yield* Socket.make({ type: "DEALER", identity: "a", linger: 0 })
      const b = yield* Socket.make({ type: "DEALER", identity: "b", linger: 0 })
      yield* a.connect(address)
      yield* b.connect(address)
      yield* settle
      for (const i of range(20)) yield* a.send(msg(`a${i}`))
      yield* settle
      for (const i of range(3)) yield* b.send(msg(`b${i}`))
      yield* settle
      const first = yield* Effect.forEach(range(8), () => router.receive)
      assert.deepStrictEqual(first.map((m) => text(m[1])), ["a0", "b0", "a1", "b1", "a2", "b2", "a3", "a4"])
    }))

  it.scoped("the receive mark is per peer: a flooding peer does not hold back another peer's message", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", receiveHighWaterMark: 5, linger: 0 })
      yield* router.bind(address)
      const flood = yield* Socket.make({ type: "DEALER", identity: "flood", sendHighWaterMark: 5, linger: 0 })
      const quiet = yield* Socket.make({ type: "DEALER", identity: "quiet", linger: 0 })
      yield* flood.connect(address)
      yield* quiet.connect(address)
      yield* settle
      const flooding = yield* Effect.fork(Effect.forEach(range(1000), (i) => flood.send(msg(`f${i}`)), { discard: true }))
      for (let round = 0; round < 10; round++) yield* settle
      yield* quiet.send(msg("q"))
      yield* settle
      const first = yield* Effect.forEach(range(2), () => router.receive)
      assert.include(first.map((m) => text(m[0])), "quiet")
      yield* Fiber.interrupt(flooding)
    }))

  it.scoped("PUB: a subscriber that stops reading loses messages; the other subscriber gets every one", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const pub = yield* Socket.make({ type: "PUB", sendHighWaterMark: 10, linger: 0 })
      yield* pub.bind(address)
      const fast = yield* Socket.make({ type: "SUB", linger: 0 })
      yield* fast.subscribe("")
      yield* fast.connect(address)
      // The stalled subscriber: a handshake and a subscription, then it never reads again.
      const stalled = yield* rawPeer(pub)
      yield* stalled.readExactly(64)
      yield* stalled.transport.write(Greeting.encode(Greeting.make("NULL")))
      yield* stalled.readFrame
      yield* stalled.transport.write(Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "SUB")]))))
      yield* stalled.transport.write(Frame.encodeCommand(Command.encode(Command.subscribe(new Uint8Array(0)))))
      yield* settle
      assert.strictEqual(yield* pub.connectedPeers, 2)

      const total = 3000
      let received = 0
      const receiving = yield* Effect.fork(
        Effect.forEach(range(total), () => Effect.zipRight(fast.receive, Effect.sync(() => received++)), { discard: true })
      )
      for (const i of range(total)) {
        yield* pub.send([Socket.frame("t"), new Uint8Array(1000)])
        if (i % 5 === 4) yield* settle
      }
      yield* Fiber.join(receiving)
      assert.strictEqual(received, total)
      const stats = yield* pub.stats
      // Into the stalled peer went at most its pipe (10), one batch in the writer and the memory pair's 64 KiB
      // (~64 messages of 1 KB): everything else for it was dropped, and nothing for the fast one.
      assert.isAtLeast(stats.dropped, total - 150)
      assert.isAtMost(stats.dropped, total - 10)
      assert.strictEqual(stats.messagesOut + stats.dropped >= 2 * total - 150, true)
    }))

  it.scoped("SUB: a full receive queue drops inbound messages; the connection keeps being read", () =>
    Effect.gen(function*() {
      const [pub, sub] = yield* pair({ type: "PUB", linger: 0 }, { type: "SUB", receiveHighWaterMark: 5, linger: 0 })
      yield* sub.subscribe("")
      yield* settle
      for (const i of range(100)) {
        yield* pub.send(msg("x", `${i}`))
        if (i % 5 === 4) yield* settle
      }
      yield* settle
      const subStats = yield* sub.stats
      assert.strictEqual(subStats.messagesIn, 100)
      assert.strictEqual(subStats.dropped, 95)
      assert.strictEqual((yield* pub.stats).dropped, 0)
      const kept = yield* Effect.forEach(range(5), () => sub.receive)
      assert.deepStrictEqual(kept.map((m) => text(m[1])), ["0", "1", "2", "3", "4"])
      yield* pub.send(msg("x", "after"))
      assert.deepStrictEqual(texts(yield* sub.receive), ["x", "after"])
    }))

  it.scoped("SUB: a burst larger than the mark in one read reaches a consumer that keeps up; without one, it drops", () =>
    Effect.gen(function*() {
      const burst = (sub: Socket.Socket) =>
        Effect.gen(function*() {
          // A raw publisher that writes 100 messages in one write.
          const raw = yield* rawPeer(sub)
          yield* raw.readExactly(64)
          yield* raw.transport.write(Greeting.encode(Greeting.make("NULL")))
          yield* raw.readFrame
          yield* raw.transport.write(Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "PUB")]))))
          yield* raw.readFrame // SUBSCRIBE ""
          const bytes = range(100).map((i) => Frame.encodeMessage(msg("t", `${i}`)))
          yield* raw.transport.write(Buffer.concat(bytes))
          yield* settle
        })
      const keeping = yield* Socket.make({ type: "SUB", receiveHighWaterMark: 10, linger: 0 })
      yield* keeping.subscribe("")
      const got: Array<string> = []
      const consumer = yield* Effect.fork(Effect.forever(Effect.map(keeping.receive, (m) => got.push(text(m[1])))))
      yield* burst(keeping)
      for (let round = 0; round < 20 && got.length < 100; round++) yield* settle
      assert.deepStrictEqual(got, range(100).map(String))
      assert.strictEqual((yield* keeping.stats).dropped, 0)
      yield* Fiber.interrupt(consumer)

      const idle = yield* Socket.make({ type: "SUB", receiveHighWaterMark: 10, linger: 0 })
      yield* idle.subscribe("")
      yield* burst(idle)
      assert.strictEqual((yield* idle.stats).dropped, 90)
      assert.deepStrictEqual(texts(yield* idle.receive), ["t", "0"])
    }))

  it.scoped("several receivers share the messages; interrupting one strands none", () =>
    Effect.gen(function*() {
      const [pull, push] = yield* pair({ type: "PULL", linger: 0 }, { type: "PUSH", linger: 0 })
      const got: Array<string> = []
      const receiver = Effect.forever(Effect.map(pull.receive, (m) => got.push(text(m[0]))))
      const a = yield* Effect.fork(receiver)
      const b = yield* Effect.fork(receiver)
      yield* settle
      for (const i of range(10)) yield* push.send(msg(`${i}`))
      yield* settle
      assert.strictEqual(got.length, 10)
      yield* Fiber.interrupt(a)
      // Offered while the interrupted receiver's wake-up may still be in flight.
      yield* Effect.forEach(range(5), (i) => push.send(msg(`late-${i}`)), { discard: true })
      for (let round = 0; round < 5 && got.length < 15; round++) yield* settle
      assert.deepStrictEqual(got.slice(10).sort(), range(5).map((i) => `late-${i}`))
      yield* Fiber.interrupt(b)
    }))

  it.scoped("XPUB reports a prefix's first subscription and its last cancel, once across peers", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const xpub = yield* Socket.make({ type: "XPUB", linger: 0 })
      yield* xpub.bind(address)
      const one = yield* Socket.make({ type: "SUB", linger: 0 })
      const two = yield* Socket.make({ type: "SUB", linger: 0 })
      yield* one.connect(address)
      yield* two.connect(address)
      yield* settle
      const step = (effect: Effect.Effect<void, unknown>) => Effect.zipRight(effect, settle)
      const next = Effect.map(xpub.receive, (m) => [m[0]![0], text(m[0]!.subarray(1))])
      yield* step(one.subscribe("a"))
      assert.deepStrictEqual(yield* next, [1, "a"])
      yield* step(two.subscribe("a"))
      yield* step(one.subscribe("b"))
      assert.deepStrictEqual(yield* next, [1, "b"])
      yield* step(one.unsubscribe("a"))
      yield* step(one.unsubscribe("b"))
      assert.deepStrictEqual(yield* next, [0, "b"])
      yield* step(two.unsubscribe("a"))
      assert.deepStrictEqual(yield* next, [0, "a"])
    }))
})

describe("Socket non-blocking sends", () => {
  it.scoped("trySend fails with WouldBlock where send would wait, and queues nothing", () =>
    Effect.gen(function*() {
      const dealer = yield* Socket.make({ type: "DEALER", sendHighWaterMark: 2, linger: 0 })
      assert.strictEqual((yield* Effect.flip(dealer.trySend(msg("x")))).reason, "WouldBlock")
      // A connect endpoint queues before it is up, up to the mark.
      const address = endpoint()
      yield* dealer.connect(address)
      yield* dealer.trySend(msg("1"))
      yield* dealer.trySend(msg("2"))
      const error = yield* Effect.flip(dealer.trySend(msg("3")))
      assert.strictEqual(error._tag, "ZmtpError")
      assert.strictEqual(error.reason, "WouldBlock")
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      yield* router.bind(address)
      yield* TestClock.adjust("200 millis")
      const got = yield* Effect.forEach(range(2), () => router.receive)
      assert.deepStrictEqual(got.map((m) => text(m[1])), ["1", "2"])
      yield* dealer.trySend(msg("4"))
      assert.strictEqual(text((yield* router.receive)[1]), "4")
      // ROUTER with routerMandatory: an unknown id is HostUnreachable, a full pipe WouldBlock.
      const router2 = yield* Socket.make({ type: "ROUTER", routerMandatory: true, sendHighWaterMark: 2, linger: 0 })
      const stalled = yield* rawPeer(router2)
      yield* stalled.readExactly(64)
      yield* stalled.transport.write(Greeting.encode(Greeting.make("NULL")))
      yield* stalled.readFrame
      yield* stalled.transport.write(Frame.encodeCommand(Command.encode(Command.ready([
        Metadata.property("Socket-Type", "DEALER"),
        Metadata.property("Identity", "slow")
      ]))))
      yield* settle
      assert.strictEqual((yield* Effect.flip(router2.trySend(msg("nobody", "x")))).reason, "HostUnreachable")
      // 100 KB messages: the first write fills the memory pair and waits for a reader that never comes.
      const big = new Uint8Array(100_000)
      let accepted = 0
      let refused: string | undefined = undefined
      for (let i = 0; i < 10 && refused === undefined; i++) {
        const result = yield* Effect.either(router2.trySend([Socket.frame("slow"), big]))
        if (result._tag === "Left") refused = result.left.reason
        else accepted++
        yield* settle
      }
      assert.strictEqual(refused, "WouldBlock")
      // One in the writer's hands, two in the pipe.
      assert.strictEqual(accepted, 3)
      // PUB never waits: trySend drops as send does.
      const pub = yield* Socket.make({ type: "PUB", linger: 0 })
      yield* pub.trySend(msg("nobody"))
    }))

  it.scoped("unsafeTrySend does what trySend does, synchronously, for every socket type", () =>
    Effect.gen(function*() {
      const reason = (error: { readonly reason: string } | undefined) => error?.reason
      const dealer = yield* Socket.make({ type: "DEALER", sendHighWaterMark: 2, linger: 0 })
      assert.strictEqual(reason(dealer.unsafeTrySend(msg("x"))), "WouldBlock")
      const address = endpoint()
      yield* dealer.connect(address)
      assert.isUndefined(dealer.unsafeTrySend(msg("1")))
      assert.isUndefined(dealer.unsafeTrySend(msg("2")))
      assert.strictEqual(reason(dealer.unsafeTrySend(msg("3"))), "WouldBlock")
      assert.strictEqual(reason(dealer.unsafeTrySend([])), "InvalidState")
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      yield* router.bind(address)
      yield* TestClock.adjust("200 millis")
      const got = yield* Effect.forEach(range(2), () => router.receive)
      assert.deepStrictEqual(got.map((m) => text(m[1])), ["1", "2"])
      // ROUTER: back to the DEALER by its routing id; an unknown id is dropped and counted, or HostUnreachable.
      assert.isUndefined(router.unsafeTrySend([got[0]![0]!, Socket.frame("back")]))
      assert.strictEqual(text((yield* dealer.receive)[0]), "back")
      assert.isUndefined(router.unsafeTrySend(msg("nobody", "x")))
      assert.strictEqual((yield* router.stats).dropped, 1)
      const mandatory = yield* Socket.make({ type: "ROUTER", routerMandatory: true, linger: 0 })
      assert.strictEqual(reason(mandatory.unsafeTrySend(msg("nobody", "x"))), "HostUnreachable")
      // REQ keeps its alternation: a second request before the reply is refused.
      const [rep, req] = yield* pair({ type: "REP", linger: 0 }, { type: "REQ", linger: 0 })
      yield* settle
      assert.isUndefined(req.unsafeTrySend(msg("question")))
      assert.strictEqual(reason(req.unsafeTrySend(msg("again"))), "InvalidState")
      assert.deepStrictEqual(texts(yield* rep.receive), ["question"])
      // PUB never waits: with no subscriber the message is dropped.
      const pub = yield* Socket.make({ type: "PUB", linger: 0 })
      assert.isUndefined(pub.unsafeTrySend(msg("nobody")))
    }))
})

describe("Socket events and counters", () => {
  it.scoped("Connected and Disconnected carry the peer's routing id and address", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      yield* router.bind(address)
      const events = yield* router.events
      yield* Effect.scoped(Effect.gen(function*() {
        const dealer = yield* Socket.make({ type: "DEALER", identity: "w1", linger: 0 })
        yield* dealer.connect(address)
        yield* dealer.send(msg("hi"))
        yield* router.receive
      }))
      const seen = Chunk.toArray(yield* events.pipe(Stream.take(2), Stream.runCollect))
      assert.deepStrictEqual(seen.map((e) => e._tag), ["Connected", "Disconnected"])
      for (const event of seen) {
        if (event._tag !== "Connected" && event._tag !== "Disconnected") return assert.fail(event._tag)
        assert.strictEqual(text(event.routingId), "w1")
        assert.strictEqual(event.peerSocketType, "DEALER")
        assert.strictEqual(event.endpoint, address)
      }
    }))

  it.scoped("stats count messages and bytes both ways, and handshake failures; the process-wide metrics follow", () =>
    Effect.gen(function*() {
      const before = yield* Metric.value(Socket.metrics.messagesIn)
      const [router, dealer] = yield* pair({ type: "ROUTER", linger: 0 }, { type: "DEALER", linger: 0 })
      yield* settle
      for (const i of range(10)) yield* dealer.send(msg("", `m${i}`))
      yield* Effect.forEach(range(10), () => router.receive, { discard: true })
      const out = yield* dealer.stats
      const inn = yield* router.stats
      assert.strictEqual(out.messagesOut, 10)
      assert.strictEqual(inn.messagesIn, 10)
      // Two frames each: 01 00, then 00 02 "mN".
      assert.strictEqual(out.bytesOut, 10 * (2 + 4))
      assert.strictEqual(inn.bytesIn, out.bytesOut)
      const after = yield* Metric.value(Socket.metrics.messagesIn)
      assert.isAtLeast(after.count - before.count, 10)
      const [, pushing] = yield* pair({ type: "ROUTER", linger: 0 }, { type: "PUSH", linger: 0 })
      yield* settle
      const refused = yield* Effect.gen(function*() {
        for (let i = 0; i < 5; i++) yield* settle
        return yield* pushing.stats
      })
      assert.isAtLeast(refused.handshakeFailures, 1)
    }))
})

class Jobs extends Context.Tag("test/Jobs")<Jobs, Socket.Socket>() {}
class Worker extends Context.Tag("test/Worker")<Worker, Socket.Socket>() {}

describe("Socket layers", () => {
  it.scoped("layer and layerConfig: one tag per socket role, bound and connected as configured", () =>
    Effect.gen(function*() {
      const address = endpoint("layer")
      // The worker's layer is built once the router is bound.
      const sockets = Layer.provideMerge(
        Socket.layerConfig(Worker, {
          type: Config.literal("DEALER")("ZMQ_TYPE"),
          identity: Config.string("ZMQ_IDENTITY"),
          connect: Config.string("ZMQ_CONNECT")
        }).pipe(Layer.provide(Layer.setConfigProvider(ConfigProvider.fromJson({
          ZMQ_TYPE: "DEALER",
          ZMQ_IDENTITY: "w-7",
          ZMQ_CONNECT: address
        })))),
        Socket.layer(Jobs, { type: "ROUTER", bind: address, linger: 0 })
      )
      const request = yield* Effect.gen(function*() {
        const worker = yield* Worker
        const jobs = yield* Jobs
        yield* worker.send(msg("ready"))
        return yield* jobs.receive
      }).pipe(Effect.provide(sockets))
      assert.deepStrictEqual(texts(request), ["w-7", "ready"])
    }))
})
