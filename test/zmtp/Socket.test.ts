import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Command from "../../src/zmtp/Command.js"
import * as Curve from "../../src/zmtp/Curve.js"
import * as Frame from "../../src/zmtp/Frame.js"
import * as Greeting from "../../src/zmtp/Greeting.js"
import * as Metadata from "../../src/zmtp/Metadata.js"
import * as Plain from "../../src/zmtp/Plain.js"
import * as Socket from "../../src/zmtp/Socket.js"
import { endpoint as newEndpoint, msg, pair, rawPeer, settle, text, texts } from "./support.js"

const endpoint = () => newEndpoint()

describe("Socket", () => {
  it.scoped("DEALER to ROUTER with an identity, and the reply back", () =>
    Effect.gen(function*() {
      const [router, dealer] = yield* pair({ type: "ROUTER" }, { type: "DEALER", identity: "worker-1" })
      yield* dealer.send(msg("", "hello"))
      const request = yield* router.receive
      assert.deepStrictEqual(texts(request), ["worker-1", "", "hello"])
      yield* router.send([request[0]!, ...msg("", "world")])
      assert.deepStrictEqual(texts(yield* dealer.receive), ["", "world"])
    }))

  it.scoped("ROUTER assigns 5-byte ids 00 + counter to anonymous peers", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER" })
      yield* router.bind(address)
      const a = yield* Socket.make({ type: "DEALER" })
      const b = yield* Socket.make({ type: "DEALER" })
      yield* a.connect(address)
      yield* a.send(msg("a"))
      const [idA] = yield* router.receive
      yield* b.connect(address)
      yield* b.send(msg("b"))
      const [idB] = yield* router.receive
      assert.strictEqual(idA!.length, 5)
      assert.strictEqual(idA![0], 0)
      const counter = (id: Uint8Array) => Buffer.from(id).readUInt32BE(1)
      assert.strictEqual(counter(idB!), (counter(idA!) + 1) >>> 0)
    }))

  it.scoped("ROUTER mandatory: unknown routing id fails with HostUnreachable; otherwise dropped", () =>
    Effect.gen(function*() {
      const mandatory = yield* Socket.make({ type: "ROUTER", routerMandatory: true })
      const error = yield* Effect.flip(mandatory.send(msg("nobody", "x")))
      assert.strictEqual(error.reason, "HostUnreachable")
      assert.strictEqual(text(error.routingId), "nobody")
      const lax = yield* Socket.make({ type: "ROUTER" })
      yield* lax.send(msg("nobody", "x"))
    }))

  it.scoped("ROUTER handover: a second peer with the same identity takes over", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", routerHandover: true })
      yield* router.bind(address)
      const first = yield* Socket.make({ type: "DEALER", identity: "same", reconnect: Schedule.stop })
      yield* first.connect(address)
      yield* first.send(msg("1"))
      assert.deepStrictEqual(texts(yield* router.receive), ["same", "1"])
      const second = yield* Socket.make({ type: "DEALER", identity: "same" })
      yield* second.connect(address)
      yield* second.send(msg("2"))
      assert.deepStrictEqual(texts(yield* router.receive), ["same", "2"])
      yield* router.send(msg("same", "to-second"))
      assert.deepStrictEqual(texts(yield* second.receive), ["to-second"])
      yield* settle
      assert.strictEqual(yield* router.connectedPeers, 1)
    }))

  it.scoped("ROUTER without handover keeps the newcomer anonymous: its messages are dropped", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER" })
      yield* router.bind(address)
      const first = yield* Socket.make({ type: "DEALER", identity: "same" })
      yield* first.connect(address)
      yield* first.send(msg("1"))
      assert.deepStrictEqual(texts(yield* router.receive), ["same", "1"])
      const second = yield* Socket.make({ type: "DEALER", identity: "same" })
      yield* second.connect(address)
      yield* second.send(msg("dropped"))
      yield* settle
      yield* first.send(msg("3"))
      assert.deepStrictEqual(texts(yield* router.receive), ["same", "3"])
    }))

  it.scoped("DEALER round-robins whole messages across peers and fair-queues replies", () =>
    Effect.gen(function*() {
      const a = endpoint()
      const b = endpoint()
      const ra = yield* Socket.make({ type: "ROUTER" })
      const rb = yield* Socket.make({ type: "ROUTER" })
      yield* ra.bind(a)
      yield* rb.bind(b)
      const dealer = yield* Socket.make({ type: "DEALER" })
      yield* dealer.connect(a)
      yield* dealer.connect(b)
      yield* settle
      for (let i = 0; i < 6; i++) yield* dealer.send(msg(`m${i}`, "tail"))
      const atA = yield* Effect.forEach([0, 1, 2], () => ra.receive)
      const atB = yield* Effect.forEach([0, 1, 2], () => rb.receive)
      assert.deepStrictEqual(atA.map((m) => text(m[1])).concat(atB.map((m) => text(m[1]))).sort(), ["m0", "m1", "m2", "m3", "m4", "m5"])
      assert.isTrue(atA.every((m) => text(m[2]) === "tail"))
      // Alternating: a peer gets every other message.
      const indexes = atA.map((m) => Number(text(m[1]).slice(1)))
      assert.isTrue(indexes.every((i) => i % 2 === indexes[0]! % 2))
    }))

  it.scoped("REQ/REP: envelope, strict alternation", () =>
    Effect.gen(function*() {
      const [rep, req] = yield* pair({ type: "REP" }, { type: "REQ" })
      yield* req.send(msg("ping"))
      assert.strictEqual((yield* Effect.flip(req.send(msg("again")))).reason, "InvalidState")
      assert.deepStrictEqual(texts(yield* rep.receive), ["ping"])
      yield* rep.send(msg("pong"))
      assert.deepStrictEqual(texts(yield* req.receive), ["pong"])
      assert.strictEqual((yield* Effect.flip(rep.send(msg("x")))).reason, "InvalidState")
    }))

  it.scoped("REQ to ROUTER carries the empty delimiter; DEALER to REP needs one", () =>
    Effect.gen(function*() {
      const [router, req] = yield* pair({ type: "ROUTER" }, { type: "REQ" })
      yield* req.send(msg("q"))
      const request = yield* router.receive
      assert.deepStrictEqual(texts(request.slice(1)), ["", "q"])
      yield* router.send([request[0]!, ...msg("", "a")])
      assert.deepStrictEqual(texts(yield* req.receive), ["a"])

      const [rep, dealer] = yield* pair({ type: "REP" }, { type: "DEALER" })
      yield* dealer.send(msg("", "q2"))
      assert.deepStrictEqual(texts(yield* rep.receive), ["q2"])
      yield* rep.send(msg("a2"))
      assert.deepStrictEqual(texts(yield* dealer.receive), ["", "a2"])
    }))

  it.scoped("PUB/SUB: prefix filters, counted subscriptions, cancel", () =>
    Effect.gen(function*() {
      const [pub, sub] = yield* pair({ type: "PUB" }, { type: "SUB" })
      yield* sub.subscribe("news.")
      yield* sub.subscribe("news.")
      yield* settle
      yield* pub.send(msg("news.eu", "1"))
      yield* pub.send(msg("sports", "2"))
      yield* pub.send(msg("news.us", "3"))
      assert.deepStrictEqual(texts(yield* sub.receive), ["news.eu", "1"])
      assert.deepStrictEqual(texts(yield* sub.receive), ["news.us", "3"])
      yield* sub.unsubscribe("news.")
      yield* settle
      yield* pub.send(msg("news.x", "4"))
      assert.deepStrictEqual(texts(yield* sub.receive), ["news.x", "4"])
      yield* sub.unsubscribe("news.")
      yield* sub.subscribe("z")
      yield* settle
      yield* pub.send(msg("news.y", "5"))
      yield* pub.send(msg("z", "6"))
      assert.deepStrictEqual(texts(yield* sub.receive), ["z", "6"])
    }))

  it.scoped("XPUB sees subscriptions; XSUB subscribes by message", () =>
    Effect.gen(function*() {
      const [xpub, xsub] = yield* pair({ type: "XPUB" }, { type: "XSUB" })
      yield* xsub.send([Uint8Array.of(1, 0x61)])
      assert.deepStrictEqual([...(yield* xpub.receive)[0]!], [1, 0x61])
      yield* xpub.send(msg("a1"))
      yield* xpub.send(msg("b1"))
      assert.deepStrictEqual(texts(yield* xsub.receive), ["a1"])
      yield* xsub.send([Uint8Array.of(0, 0x61)])
      assert.deepStrictEqual([...(yield* xpub.receive)[0]!], [0, 0x61])
    }))

  it.scoped("PUSH/PULL and PAIR", () =>
    Effect.gen(function*() {
      const [pull, push] = yield* pair({ type: "PULL" }, { type: "PUSH" })
      yield* Effect.forEach([1, 2, 3], (i) => push.send(msg(`${i}`)))
      const got = yield* pull.messages.pipe(Stream.take(3), Stream.runCollect)
      assert.deepStrictEqual(Chunk.toArray(got).map(texts), [["1"], ["2"], ["3"]])
      assert.strictEqual((yield* Effect.flip(pull.send(msg("x")))).reason, "InvalidState")
      const [p1, p2] = yield* pair({ type: "PAIR" }, { type: "PAIR" })
      yield* p2.send(msg("hi"))
      assert.deepStrictEqual(texts(yield* p1.receive), ["hi"])
      yield* p1.send(msg("back"))
      assert.deepStrictEqual(texts(yield* p2.receive), ["back"])
    }))

  it.scoped("an incompatible socket type is refused with a typed error on both sides", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER" })
      const events = yield* router.events
      yield* router.bind(address)
      const pub = yield* Socket.make({ type: "PUB", reconnect: Schedule.stop })
      yield* pub.connect(address)
      const failed = yield* events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead)
      assert.isTrue(Option.isSome(failed))
      if (Option.isSome(failed) && failed.value._tag === "HandshakeFailed") {
        assert.strictEqual(failed.value.error.reason, "IncompatibleSocketType")
      }
    }))

  it.scoped("PLAIN: good credentials pass with the user id, a bad password is refused", () =>
    Effect.gen(function*() {
      const server = Plain.server({
        authenticate: ({ password, username }) => Effect.succeed(username === "admin" && Redacted.value(password) === "secret")
      })
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", mechanism: server })
      const events = yield* router.events
      yield* router.bind(address)
      const good = yield* Socket.make({ type: "DEALER", mechanism: Plain.client({ username: "admin", password: Redacted.make("secret") }) })
      yield* good.connect(address)
      yield* good.send(msg("in"))
      assert.deepStrictEqual(texts((yield* router.receive).slice(1)), ["in"])
      const connected = yield* events.pipe(Stream.filter((e) => e._tag === "Connected"), Stream.runHead)
      assert.strictEqual(Option.isSome(connected) && connected.value._tag === "Connected" ? connected.value.userId : "", "admin")

      const bad = yield* Socket.make({ type: "DEALER", reconnect: Schedule.stop, mechanism: Plain.client({ username: "admin", password: "wrong" }) })
      const badEvents = yield* bad.events
      yield* bad.connect(address)
      const refused = yield* badEvents.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead)
      assert.isTrue(Option.isSome(refused) && refused.value._tag === "HandshakeFailed" && refused.value.error.reason === "AuthenticationFailed")
      if (Option.isSome(refused) && refused.value._tag === "HandshakeFailed") assert.strictEqual(refused.value.error.code, "400")
    }))

  it.scoped("CURVE: encrypted round trip, allow-list, wrong server key refused", () =>
    Effect.gen(function*() {
      const serverKeys = Curve.keyPair()
      const allowed = Curve.keyPair()
      const stranger = Curve.keyPair()
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", mechanism: Curve.server({ keyPair: serverKeys, allow: [allowed.publicKey] }) })
      const routerEvents = yield* router.events
      yield* router.bind(address)
      const client = yield* Socket.make({ type: "DEALER", mechanism: Curve.client({ serverKey: serverKeys.publicKey, keyPair: allowed }) })
      yield* client.connect(address)
      const big = new Uint8Array(70_000).fill(7)
      yield* client.send([Socket.frame("small"), big])
      const received = yield* router.receive
      assert.deepStrictEqual(text(received[1]), "small")
      assert.strictEqual(received[2]!.length, 70_000)
      yield* router.send([received[0]!, Socket.frame("reply")])
      assert.deepStrictEqual(texts(yield* client.receive), ["reply"])

      const refusedBy = (mechanism: Parameters<typeof Curve.client>[0]) =>
        Effect.gen(function*() {
          const socket = yield* Socket.make({ type: "DEALER", reconnect: Schedule.stop, mechanism: Curve.client(mechanism) })
          const events = yield* socket.events
          yield* socket.connect(address)
          const event = yield* events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead)
          return Option.isSome(event) && event.value._tag === "HandshakeFailed" ? event.value.error.reason : "none"
        })
      assert.strictEqual(yield* refusedBy({ serverKey: serverKeys.publicKey, keyPair: stranger }), "AuthenticationFailed")
      // A client with the wrong server key: the server cannot open HELLO and closes.
      yield* refusedBy({ serverKey: Curve.keyPair().publicKey, keyPair: allowed })
      const serverSide = yield* routerEvents.pipe(
        Stream.filter((e) => e._tag === "HandshakeFailed" && e.error.reason === "HandshakeFailed"),
        Stream.runHead
      )
      assert.isTrue(Option.isSome(serverSide))
    }))

  it.scoped("a mechanism mismatch is refused", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const router = yield* Socket.make({ type: "ROUTER", mechanism: Curve.server({ keyPair: Curve.keyPair() }) })
      yield* router.bind(address)
      const dealer = yield* Socket.make({ type: "DEALER", reconnect: Schedule.stop })
      const events = yield* dealer.events
      yield* dealer.connect(address)
      const event = yield* events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead)
      assert.isTrue(Option.isSome(event) && event.value._tag === "HandshakeFailed" && event.value.error.reason === "MechanismMismatch")
    }))

  it.scoped("raw peer: our greeting and READY byte for byte, PING answered with PONG", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      const raw = yield* rawPeer(router)
      const greeting = yield* raw.readExactly(64)
      assert.deepStrictEqual([...greeting], [...Greeting.encode(Greeting.make("NULL"))])
      yield* raw.transport.write(Greeting.encode(Greeting.make("NULL")))
      const ready = yield* raw.readFrame
      assert.strictEqual(ready.flags, Frame.COMMAND)
      assert.strictEqual(ready.body.length, 41)
      yield* raw.transport.write(Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "DEALER"), Metadata.property("Identity", "raw-1")]))))
      yield* raw.transport.write(Frame.encodeCommand(Command.encode(Command.ping(50, Socket.frame("ctx123")))))
      const pong = yield* raw.readFrame
      assert.strictEqual(Buffer.from(Frame.encodeCommand(pong.body)).toString("hex"), "040b04504f4e47637478313233")
      yield* raw.transport.write(Frame.encodeMessage(msg("", "hello")))
      assert.deepStrictEqual(texts(yield* router.receive), ["raw-1", "", "hello"])
    }))

  it.scoped("malformed greeting and frames close that connection with a typed error; the socket keeps serving", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      const events = yield* router.events
      const bad = yield* rawPeer(router)
      yield* bad.transport.write(new Uint8Array(64).fill(0x41))
      const first = yield* events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead)
      assert.isTrue(Option.isSome(first) && first.value._tag === "HandshakeFailed" && first.value.error.reason === "BadGreeting")

      const garbage = yield* rawPeer(router)
      yield* garbage.transport.write(Greeting.encode(Greeting.make("NULL")))
      yield* garbage.transport.write(Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "DEALER")]))))
      yield* garbage.transport.write(Uint8Array.of(0x05, 0x01, 0x00))
      const second = yield* events.pipe(Stream.filter((e) => e._tag === "Disconnected"), Stream.runHead)
      assert.isTrue(Option.isSome(second) && second.value._tag === "Disconnected" && second.value.error.reason === "MalformedFrame")

      const address = endpoint()
      yield* router.bind(address)
      const dealer = yield* Socket.make({ type: "DEALER" })
      yield* dealer.connect(address)
      yield* dealer.send(msg("still serving"))
      assert.deepStrictEqual(texts((yield* router.receive).slice(1)), ["still serving"])
    }))

  it.scoped("maximum message size disconnects the sender", () =>
    Effect.gen(function*() {
      const [pull, push] = yield* pair({ type: "PULL", maxMessageSize: 1000, linger: 0 }, { type: "PUSH", reconnect: Schedule.stop, linger: 0 })
      const events = yield* pull.events
      yield* push.send([new Uint8Array(600), new Uint8Array(600)])
      const event = yield* events.pipe(Stream.filter((e) => e._tag === "Disconnected"), Stream.runHead)
      assert.isTrue(Option.isSome(event) && event.value._tag === "Disconnected" && event.value.error.reason === "MessageTooLarge")
    }))

  it.scoped("send high-water mark: DEALER blocks, PUB drops; memory stays bounded when the peer stops reading", () =>
    Effect.gen(function*() {
      const [, dealer] = yield* pair({ type: "ROUTER", receiveHighWaterMark: 5, linger: 0 }, { type: "DEALER", sendHighWaterMark: 10, linger: 0 })
      let sent = 0
      const sender = yield* Effect.fork(Effect.forEach(Array.from({ length: 500 }), () => Effect.zipRight(dealer.send(msg("x".repeat(1000))), Effect.sync(() => sent++)), { discard: true }))
      // Let the pipeline fill until the sender stops advancing.
      let plateau = -1
      for (let round = 0; round < 50 && plateau !== sent; round++) {
        plateau = sent
        yield* settle
      }
      assert.strictEqual(sent, plateau)
      // 500 attempted; in flight at most: our pipe (10) and the batch being written (10), the memory pair's
      // 64 KiB (~65 messages), the frames of the peer's last read (~65) and the peer's inbox (5).
      assert.isBelow(sent, 10 + 10 + 66 + 66 + 5)
      assert.isAtLeast(sent, 15)
      yield* Fiber.interrupt(sender)

      const [sub, pub] = yield* pair({ type: "SUB", receiveHighWaterMark: 5, linger: 0 }, { type: "PUB", sendHighWaterMark: 10, linger: 0 })
      yield* sub.subscribe("")
      yield* settle
      for (let i = 0; i < 10_000; i++) yield* pub.send(msg("y".repeat(1000)))
      yield* settle
      // Every send returned at once: the PUB dropped what did not fit; the subscriber holds at most its mark.
      let received = 0
      const counter = yield* Effect.fork(Effect.forEach(Array.from({ length: 1000 }), () => Effect.zipRight(sub.receive, Effect.sync(() => received++)), { discard: true }))
      yield* settle
      yield* Fiber.interrupt(counter)
      assert.isAtMost(received, 5 + 10 + 70)
      assert.isAtLeast(received, 1)
    }))

  it.scoped("heartbeats: a silent peer is dropped after the timeout (TestClock)", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({ type: "ROUTER", linger: 0, heartbeat: { interval: "1 second", timeout: "3 seconds", ttl: "10 seconds" } })
      const events = yield* router.events
      const raw = yield* rawPeer(router)
      yield* raw.readExactly(64)
      yield* raw.transport.write(Greeting.encode(Greeting.make("NULL")))
      yield* raw.readFrame
      yield* raw.transport.write(Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "DEALER")]))))
      yield* settle
      yield* TestClock.adjust(Duration.seconds(1))
      const ping = yield* raw.readFrame
      const decoded = Command.decode(ping.body)
      assert.isTrue(decoded._tag === "Right" && decoded.right._tag === "Ping" && decoded.right.ttl === 100)
      const collected = yield* Effect.fork(events.pipe(Stream.filter((e) => e._tag === "Disconnected"), Stream.runHead))
      yield* TestClock.adjust(Duration.seconds(5))
      const event = yield* Fiber.join(collected)
      assert.isTrue(Option.isSome(event) && event.value._tag === "Disconnected" && event.value.error.reason === "HeartbeatTimeout")
    }))

  it.scoped("reconnects after the peer goes away and comes back (TestClock)", () =>
    Effect.gen(function*() {
      const address = endpoint()
      const dealer = yield* Socket.make({ type: "DEALER", reconnect: Schedule.spaced("100 millis") })
      const events = yield* dealer.events
      yield* dealer.connect(address)
      yield* settle
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
        yield* router.bind(address)
        yield* TestClock.adjust(Duration.millis(100))
        yield* dealer.send(msg("one"))
        return texts((yield* router.receive).slice(1))
      }))
      assert.deepStrictEqual(first, ["one"])
      const router = yield* Socket.make({ type: "ROUTER" })
      yield* router.bind(address)
      yield* settle
      yield* TestClock.adjust(Duration.millis(500))
      yield* dealer.send(msg("two"))
      assert.deepStrictEqual(texts((yield* router.receive).slice(1)), ["two"])
      const seen = yield* events.pipe(Stream.take(3), Stream.map((e) => e._tag), Stream.runCollect)
      assert.deepStrictEqual(Chunk.toArray(seen).slice(0, 1), ["ConnectFailed"])
    }))
})
