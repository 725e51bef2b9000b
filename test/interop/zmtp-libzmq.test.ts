/**
 * Interop with libzmq 4.3.5 through the `zeromq` npm package: its sockets run on libzmq's own I/O threads in this
 * process, and talk to ours over real TCP on 127.0.0.1.
 */
import { assert, describe, it } from "@effect/vitest"
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as Curve from "../../src/zmtp/Curve.js"
import * as Plain from "../../src/zmtp/Plain.js"
import * as Socket from "../../src/zmtp/Socket.js"
import * as Z85 from "../../src/zmtp/Z85.js"
import { requirePeer } from "../support/peers.js"

const zmq = await import("zeromq").catch(() => undefined)
const available = requirePeer("zmtp-libzmq", zmq === undefined ? "npm package zeromq is not installed" : undefined)

const text = (bytes: Uint8Array | undefined) => bytes === undefined ? "<none>" : new TextDecoder().decode(bytes)
const texts = (message: ReadonlyArray<Uint8Array>) => message.map(text)
const msg = (...parts: Array<string>) => parts.map(Socket.frame)

type Closable = { close(): void; linger: number }
/** A libzmq socket closed with the scope. */
const native = <S extends Closable>(make: () => S) =>
  Effect.acquireRelease(Effect.sync(() => {
    const socket = make()
    socket.linger = 0
    return socket
  }), (socket) => Effect.sync(() => socket.close()))

const promise = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (e) => e }).pipe(Effect.orDie)
const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.timeout(effect, "5 seconds")

// A full garbage collection on demand, so that retained memory can be measured.
V8.setFlagsFromString("--expose-gc")
const collect = Vm.runInNewContext("gc") as () => void

/**
 * Heap and buffer memory still reachable after full collections. Buffers libzmq handed to JavaScript are freed by
 * finalizers that run after a collection, hence a pause and a second one.
 */
const retained = Effect.gen(function*() {
  collect()
  yield* Effect.sleep("100 millis")
  collect()
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
})

/** A free TCP endpoint chosen by binding one of our sockets... or libzmq's. */
const bindNative = (socket: { bind(endpoint: string): Promise<void>; readonly lastEndpoint: string | null }) =>
  Effect.map(promise(() => socket.bind("tcp://127.0.0.1:*")), () => socket.lastEndpoint!)

describe.runIf(available)("ZMTP interop with libzmq (zeromq npm)", () => {
  const Z = zmq!

  it.scopedLive("our DEALER with an identity -> libzmq ROUTER, and the reply back", () =>
    Effect.gen(function*() {
      const router = yield* native(() => new Z.Router())
      const endpoint = yield* bindNative(router)
      const dealer = yield* Socket.make({ type: "DEALER", identity: "worker-1" })
      yield* dealer.connect(endpoint)
      yield* dealer.send(msg("", "hello"))
      const request = yield* timed(promise(() => router.receive()))
      assert.deepStrictEqual(texts(request), ["worker-1", "", "hello"])
      yield* promise(() => router.send([request[0]!, "", "world"]))
      assert.deepStrictEqual(texts(yield* timed(dealer.receive)), ["", "world"])
    }))

  it.scopedLive("libzmq DEALERs -> our ROUTER: routing ids from Identity, and assigned 00 + counter", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({ type: "ROUTER" })
      const endpoint = yield* router.bind("tcp://127.0.0.1:0")
      const named = yield* native(() => new Z.Dealer({ routingId: "native-1" }))
      const anonymous = yield* native(() => new Z.Dealer())
      named.connect(endpoint)
      anonymous.connect(endpoint)
      yield* promise(() => named.send(["", "from named"]))
      const first = yield* timed(router.receive)
      assert.deepStrictEqual(texts(first), ["native-1", "", "from named"])
      yield* promise(() => anonymous.send("from anonymous"))
      const second = yield* timed(router.receive)
      assert.strictEqual(second[0]!.length, 5)
      assert.strictEqual(second[0]![0], 0)
      yield* router.send([second[0]!, Socket.frame("to anonymous")])
      yield* router.send([Socket.frame("native-1"), Socket.frame(""), Socket.frame("to named")])
      assert.deepStrictEqual(texts(yield* timed(promise(() => anonymous.receive()))), ["to anonymous"])
      assert.deepStrictEqual(texts(yield* timed(promise(() => named.receive()))), ["", "to named"])
    }))

  it.scopedLive("our ROUTER learns which libzmq peer left: Disconnected carries its routing id", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({ type: "ROUTER", linger: 0 })
      const endpoint = yield* router.bind("tcp://127.0.0.1:0")
      const events = yield* router.events
      const stay = yield* native(() => new Z.Dealer({ routingId: "stays" }))
      const leave = new Z.Dealer({ routingId: "leaves", linger: 0 })
      stay.connect(endpoint)
      leave.connect(endpoint)
      yield* promise(() => stay.send("hi"))
      yield* promise(() => leave.send("hi"))
      const ids = yield* Effect.forEach([0, 1], () => Effect.map(timed(router.receive), (m) => text(m[0])))
      assert.deepStrictEqual(ids.sort(), ["leaves", "stays"])
      leave.close()
      const gone = yield* timed(events.pipe(Stream.filter((e) => e._tag === "Disconnected"), Stream.runHead))
      assert.isTrue(Option.isSome(gone) && gone.value._tag === "Disconnected")
      if (Option.isSome(gone) && gone.value._tag === "Disconnected") {
        assert.strictEqual(text(gone.value.routingId), "leaves")
        assert.strictEqual(gone.value.peerSocketType, "DEALER")
        assert.match(gone.value.peerAddress, /^127\.0\.0\.1:\d+$/)
      }
      assert.strictEqual(yield* router.connectedPeers, 1)
    }))

  it.scopedLive("REQ/REP both ways", () =>
    Effect.gen(function*() {
      const rep = yield* native(() => new Z.Reply())
      const endpoint = yield* bindNative(rep)
      const req = yield* Socket.make({ type: "REQ" })
      yield* req.connect(endpoint)
      yield* req.send(msg("ping"))
      assert.deepStrictEqual(texts(yield* timed(promise(() => rep.receive()))), ["ping"])
      yield* promise(() => rep.send("pong"))
      assert.deepStrictEqual(texts(yield* timed(req.receive)), ["pong"])

      const ourRep = yield* Socket.make({ type: "REP" })
      const ourEndpoint = yield* ourRep.bind("tcp://127.0.0.1:0")
      const nativeReq = yield* native(() => new Z.Request())
      nativeReq.connect(ourEndpoint)
      yield* promise(() => nativeReq.send(["a", "b"]))
      assert.deepStrictEqual(texts(yield* timed(ourRep.receive)), ["a", "b"])
      yield* ourRep.send(msg("c"))
      assert.deepStrictEqual(texts(yield* timed(promise(() => nativeReq.receive()))), ["c"])
    }))

  it.scopedLive("PUB/SUB filtering both ways (SUBSCRIBE commands to and from libzmq)", () =>
    Effect.gen(function*() {
      const pub = yield* native(() => new Z.Publisher())
      const endpoint = yield* bindNative(pub)
      const sub = yield* Socket.make({ type: "SUB" })
      yield* sub.subscribe("news.")
      yield* sub.connect(endpoint)
      // libzmq drops until the subscription arrives: publish until the first message gets through.
      const received = yield* Effect.fork(timed(sub.receive))
      yield* promise(() => pub.send(["sports", "x"])).pipe(Effect.zipRight(promise(() => pub.send(["news.eu", "1"]))), Effect.zipRight(Effect.sleep("20 millis")), Effect.repeat({ times: 100, until: () => false }), Effect.timeout("3 seconds"), Effect.ignore, Effect.fork)
      const first = yield* received
      assert.deepStrictEqual(texts(first), ["news.eu", "1"])

      const ourPub = yield* Socket.make({ type: "PUB" })
      const ourEndpoint = yield* ourPub.bind("tcp://127.0.0.1:0")
      const nativeSub = yield* native(() => new Z.Subscriber())
      nativeSub.connect(ourEndpoint)
      nativeSub.subscribe("b")
      const got = yield* Effect.fork(timed(promise(() => nativeSub.receive())))
      yield* ourPub.send(msg("a", "no")).pipe(Effect.zipRight(ourPub.send(msg("b", "yes"))), Effect.zipRight(Effect.sleep("20 millis")), Effect.repeat({ times: 100, until: () => false }), Effect.timeout("3 seconds"), Effect.ignore, Effect.fork)
      assert.deepStrictEqual(texts(yield* got), ["b", "yes"])
    }))

  it.scopedLive("PUSH/PULL both ways and PAIR", () =>
    Effect.gen(function*() {
      const pull = yield* native(() => new Z.Pull())
      const endpoint = yield* bindNative(pull)
      const push = yield* Socket.make({ type: "PUSH" })
      yield* push.connect(endpoint)
      yield* Effect.forEach([1, 2, 3], (i) => push.send(msg(`${i}`)))
      const got = yield* Effect.forEach([1, 2, 3], () => timed(promise(() => pull.receive())))
      assert.deepStrictEqual(got.map(texts), [["1"], ["2"], ["3"]])

      const ourPull = yield* Socket.make({ type: "PULL" })
      const ourEndpoint = yield* ourPull.bind("tcp://127.0.0.1:0")
      const nativePush = yield* native(() => new Z.Push())
      nativePush.connect(ourEndpoint)
      for (let i = 0; i < 1000; i++) yield* promise(() => nativePush.send(`m${i}`))
      const all = yield* timed(ourPull.messages.pipe(Stream.take(1000), Stream.runCollect))
      assert.strictEqual(all.length, 1000)

      const pair = yield* native(() => new Z.Pair())
      const pairEndpoint = yield* bindNative(pair)
      const ourPair = yield* Socket.make({ type: "PAIR" })
      yield* ourPair.connect(pairEndpoint)
      yield* ourPair.send(msg("hi"))
      assert.deepStrictEqual(texts(yield* timed(promise(() => pair.receive()))), ["hi"])
      yield* promise(() => pair.send("back"))
      assert.deepStrictEqual(texts(yield* timed(ourPair.receive)), ["back"])
    }))

  it.scopedLive("CURVE with libzmq as server and as client; a wrong server key is refused", () =>
    Effect.gen(function*() {
      const serverKeys = Z.curveKeyPair()
      const clientKeys = Z.curveKeyPair()
      const router = yield* native(() => new Z.Router({ curveServer: true, curveSecretKey: serverKeys.secretKey, curvePublicKey: serverKeys.publicKey }))
      const endpoint = yield* bindNative(router)
      const ourKeys = Either.getOrThrow(Curve.keyPairFromSecret(clientKeys.secretKey))
      const dealer = yield* Socket.make({ type: "DEALER", identity: "curvy", mechanism: Curve.client({ serverKey: serverKeys.publicKey, keyPair: ourKeys }) })
      yield* dealer.connect(endpoint)
      yield* dealer.send([Socket.frame("secret"), new Uint8Array(3000).fill(9)])
      const request = yield* timed(promise(() => router.receive()))
      assert.deepStrictEqual(text(request[0]), "curvy")
      assert.deepStrictEqual(text(request[1]), "secret")
      assert.strictEqual(request[2]!.length, 3000)
      yield* promise(() => router.send([request[0]!, "reply"]))
      assert.deepStrictEqual(texts(yield* timed(dealer.receive)), ["reply"])

      const ours = Curve.keyPair()
      const ourRouter = yield* Socket.make({ type: "ROUTER", mechanism: Curve.server({ keyPair: ours }) })
      const ourEndpoint = yield* ourRouter.bind("tcp://127.0.0.1:0")
      const z85 = Either.getOrThrow(Z85.encode(ours.publicKey))
      const nativeDealer = yield* native(() => new Z.Dealer({ curveServerKey: z85, curvePublicKey: clientKeys.publicKey, curveSecretKey: clientKeys.secretKey }))
      nativeDealer.connect(ourEndpoint)
      yield* promise(() => nativeDealer.send("over curve"))
      const got = yield* timed(ourRouter.receive)
      assert.deepStrictEqual(text(got[1]), "over curve")
      yield* ourRouter.send([got[0]!, Socket.frame("back over curve")])
      assert.deepStrictEqual(texts(yield* timed(promise(() => nativeDealer.receive()))), ["back over curve"])

      // libzmq client with the wrong server key: our server refuses the HELLO.
      const events = yield* ourRouter.events
      const wrong = yield* native(() => new Z.Dealer({ curveServerKey: Z.curveKeyPair().publicKey, curvePublicKey: clientKeys.publicKey, curveSecretKey: clientKeys.secretKey }))
      wrong.connect(ourEndpoint)
      const refused = yield* timed(events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead))
      assert.isTrue(Option.isSome(refused) && refused.value._tag === "HandshakeFailed" && refused.value.error.reason === "HandshakeFailed")
    }))

  it.scopedLive("CURVE allow-list refuses an unknown libzmq client key", () =>
    Effect.gen(function*() {
      const ours = Curve.keyPair()
      const known = Curve.keyPair()
      const router = yield* Socket.make({ type: "ROUTER", mechanism: Curve.server({ keyPair: ours, allow: [known.publicKey] }) })
      const events = yield* router.events
      const endpoint = yield* router.bind("tcp://127.0.0.1:0")
      const stranger = Z.curveKeyPair()
      const nativeDealer = yield* native(() => new Z.Dealer({ curveServerKey: Either.getOrThrow(Z85.encode(ours.publicKey)), curvePublicKey: stranger.publicKey, curveSecretKey: stranger.secretKey }))
      nativeDealer.connect(endpoint)
      const refused = yield* timed(events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead))
      assert.isTrue(Option.isSome(refused) && refused.value._tag === "HandshakeFailed" && refused.value.error.reason === "AuthenticationFailed")
    }))

  it.scopedLive("PLAIN: libzmq client with the right password gets in, with a wrong one is refused", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({
        type: "ROUTER",
        mechanism: Plain.server({ authenticate: ({ password, username }) => Effect.succeed(username === "admin" && Redacted.value(password) === "secret") })
      })
      const events = yield* router.events
      const endpoint = yield* router.bind("tcp://127.0.0.1:0")
      const good = yield* native(() => new Z.Dealer({ plainUsername: "admin", plainPassword: "secret" }))
      good.connect(endpoint)
      yield* promise(() => good.send("let me in"))
      assert.deepStrictEqual(text((yield* timed(router.receive))[1]), "let me in")
      const bad = yield* native(() => new Z.Dealer({ plainUsername: "admin", plainPassword: "nope" }))
      bad.connect(endpoint)
      const refused = yield* timed(events.pipe(Stream.filter((e) => e._tag === "HandshakeFailed"), Stream.runHead))
      assert.isTrue(Option.isSome(refused) && refused.value._tag === "HandshakeFailed" && refused.value.error.reason === "AuthenticationFailed")
    }))

  it.scopedLive("heartbeats: libzmq PINGs are answered; our PINGs keep an idle libzmq connection alive", () =>
    Effect.gen(function*() {
      const router = yield* native(() => new Z.Router({ heartbeatInterval: 50, heartbeatTimeout: 200, heartbeatTimeToLive: 300 }))
      const endpoint = yield* bindNative(router)
      const dealer = yield* Socket.make({ type: "DEALER", identity: "hb", heartbeat: { interval: "50 millis", timeout: "300 millis" } })
      const events = yield* dealer.events
      yield* dealer.connect(endpoint)
      yield* dealer.send(msg("before"))
      assert.deepStrictEqual(texts(yield* timed(promise(() => router.receive()))), ["hb", "before"])
      yield* Effect.sleep("1 second")
      yield* promise(() => router.send(["hb", "after"]))
      assert.deepStrictEqual(texts(yield* timed(dealer.receive)), ["after"])
      // Still the first connection: nothing was dropped for silence.
      const seen = yield* events.pipe(Stream.take(1), Stream.runCollect)
      assert.deepStrictEqual(Array.from(seen, (e) => e._tag), ["Connected"])
    }))

  it.scopedLive("reconnect after libzmq restarts on the same port", () =>
    Effect.gen(function*() {
      const first = new Z.Router()
      first.linger = 0
      yield* promise(() => first.bind("tcp://127.0.0.1:*"))
      const endpoint = first.lastEndpoint!
      const dealer = yield* Socket.make({ type: "DEALER", identity: "again", reconnect: Schedule.spaced("50 millis") })
      yield* dealer.connect(endpoint)
      yield* dealer.send(msg("one"))
      assert.deepStrictEqual(texts(yield* timed(promise(() => first.receive()))), ["again", "one"])
      first.close()
      yield* Effect.sleep("200 millis")
      const second = yield* native(() => new Z.Router())
      yield* promise(() => second.bind(endpoint))
      yield* dealer.send(msg("two"))
      assert.deepStrictEqual(texts(yield* timed(promise(() => second.receive()))), ["again", "two"])
    }))

  it.scopedLive("a libzmq ROUTER that stops reading: our DEALER blocks at the high-water mark, memory bounded", () =>
    Effect.gen(function*() {
      const router = yield* native(() => new Z.Router({ receiveHighWaterMark: 10 }))
      const endpoint = yield* bindNative(router)
      const dealer = yield* Socket.make({ type: "DEALER", sendHighWaterMark: 100, linger: 0 })
      yield* dealer.connect(endpoint)
      let sent = 0
      const payload = new Uint8Array(64 * 1024)
      const sender = yield* Effect.fork(Effect.forEach(Array.from({ length: 20_000 }), () => Effect.zipRight(dealer.send([payload]), Effect.sync(() => sent++)), { discard: true }))
      yield* Effect.sleep("1500 millis")
      const plateau = sent
      yield* Effect.sleep("300 millis")
      assert.strictEqual(sent, plateau)
      assert.isBelow(sent, 20_000)
      // Nothing read by the router yet; once it reads, the sender moves on.
      yield* Effect.forEach(Array.from({ length: 400 }), () => timed(promise(() => router.receive())), { discard: true })
      yield* Effect.sleep("500 millis")
      assert.isAbove(sent, plateau)
      yield* Fiber.interrupt(sender)
    }), 20_000)

  it.scopedLive("our PUB with a libzmq SUB that stops reading: it loses messages, the other SUB gets all of them", () =>
    Effect.gen(function*() {
      const pub = yield* Socket.make({ type: "PUB", linger: 0 })
      const endpoint = yield* pub.bind("tcp://127.0.0.1:0")
      const fast = yield* native(() => new Z.Subscriber())
      const stalled = yield* native(() => new Z.Subscriber({ receiveHighWaterMark: 10 }))
      for (const sub of [fast, stalled]) {
        sub.subscribe()
        sub.connect(endpoint)
      }
      // Both subscriptions in: publish until each subscriber has one message.
      for (const sub of [fast, stalled]) {
        const joined = yield* Effect.fork(timed(promise(() => sub.receive())))
        while (Option.isNone(yield* Fiber.poll(joined))) {
          yield* pub.send([Socket.frame("hello")])
          yield* Effect.sleep("20 millis")
        }
        yield* Fiber.join(joined)
      }
      let received = 0
      yield* Effect.forkScoped(Effect.forever(Effect.zipRight(promise(() => fast.receive()), Effect.sync(() => received++))))
      yield* Effect.sleep("50 millis")
      const start = received
      const total = 6000
      const size = 16 * 1024
      const retainedBefore = yield* retained
      for (let i = 0; i < total; i++) {
        // A fresh buffer per message: whatever the socket keeps for the stalled subscriber stays allocated.
        yield* pub.send([new Uint8Array(size)])
        // Paced by the fast subscriber only: the stalled one must not slow the publisher down.
        if (i % 100 === 99) {
          while (received - start < i - 200) yield* Effect.sleep("1 millis")
        }
      }
      yield* timed(Effect.repeat(Effect.sleep("10 millis"), { until: () => received - start >= total - 150 }))
      yield* Effect.sleep("200 millis")
      assert.strictEqual(received - start, total)
      const stats = yield* pub.stats
      // The stalled subscriber took what fits in its pipe (1000), libzmq's (10) and the kernel's buffers (a few
      // MB); the rest of its 96 MB was dropped, not kept.
      assert.isAtLeast(stats.dropped, total - 2500)
      assert.isBelow(stats.dropped, total)
      // Memory: at most its pipe of 1000 messages (16 MB) is held for it, far from the 70 MB it would take to keep
      // what it dropped.
      const growth = (yield* retained) - retainedBefore
      assert.isBelow(growth, 40 * 1024 * 1024, `retained ${Math.round(growth / 1048576)} MB`)
    }), 30_000)
})
