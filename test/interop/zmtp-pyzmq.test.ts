/**
 * Every socket pair against pyzmq (its bundled libzmq 4.3.5), both roles, both bind directions, with NULL, PLAIN
 * and CURVE; then the refusals: a bad PLAIN password and a wrong CURVE server key, each way.
 *
 * One Python process serves the whole file, driven by one JSON command per line (test/interop/python/zmtp_peer.py).
 */
import { assert, describe, layer } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Stream from "effect/Stream"
import * as Path from "node:path"
import * as Curve from "../../src/zmtp/Curve.js"
import type { Mechanism } from "../../src/zmtp/Mechanism.js"
import * as Plain from "../../src/zmtp/Plain.js"
import * as Socket from "../../src/zmtp/Socket.js"
import * as Z85 from "../../src/zmtp/Z85.js"
import { repoRoot, requirePeer } from "../support/peers.js"
import { missingPyzmq, spawnPython } from "../support/python.js"

const available = requirePeer("zmtp-pyzmq", missingPyzmq())

class PeerFailed extends Data.TaggedError("PeerFailed")<{ readonly message: string }> {}

type Frames = ReadonlyArray<Uint8Array>
interface Reply {
  readonly ok: boolean
  readonly error?: string
  readonly endpoint?: string
  readonly frames?: ReadonlyArray<string>
}

/** The pyzmq peer process: one command, one reply. */
class Python extends Context.Tag("test/Python")<Python, {
  readonly call: (command: Record<string, unknown>) => Effect.Effect<Reply, PeerFailed>
}>() {}

const script = Path.join(repoRoot, "test", "interop", "python", "zmtp_peer.py")

const PythonLive = Layer.scoped(
  Python,
  Effect.gen(function*() {
    const code = `import runpy, sys; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name="__main__")`
    const peer = yield* spawnPython(code, [script, JSON.stringify({ admin: "secret" })], { stdin: true })
    yield* peer.waitForLine(/"ready": true/, "20 seconds")
    const lock = yield* Effect.makeSemaphore(1)
    const call = (command: Record<string, unknown>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        yield* peer.writeStdin(JSON.stringify(command) + "\n")
        const line = yield* peer.waitForLine(() => true, "20 seconds")
        const reply = JSON.parse(line) as Reply
        if (!reply.ok && reply.error !== "timeout") {
          return yield* new PeerFailed({ message: `${JSON.stringify(command)}: ${reply.error}` })
        }
        return reply
      })).pipe(Effect.mapError((error) => error._tag === "PeerFailed" ? error : new PeerFailed({ message: error.message })))
    return { call }
  })
)

const hex = (frame: Uint8Array) => Buffer.from(frame).toString("hex")
const unhex = (frame: string) => new Uint8Array(Buffer.from(frame, "hex"))
const text = (frame: Uint8Array | undefined) => frame === undefined ? "<none>" : new TextDecoder().decode(frame)
const texts = (frames: Frames) => frames.map(text)
const frames = (...parts: Array<string>) => parts.map(Socket.frame)
const z85 = (key: Uint8Array) => Either.getOrThrow(Z85.encode(key))

/** One end of a conversation, ours or pyzmq's, behind the same face. */
interface Side {
  readonly type: Socket.SocketType
  readonly send: (message: Frames) => Effect.Effect<void, unknown>
  /** The next message within `ms`, or none. */
  readonly poll: (ms: number) => Effect.Effect<Option.Option<Frames>, unknown>
  readonly subscribe: (topic: string) => Effect.Effect<void, unknown>
}

const recv = (side: Side) =>
  Effect.flatMap(side.poll(5000), Option.match({
    onNone: () => Effect.fail(new PeerFailed({ message: `${side.type}: nothing received within 5 s` })),
    onSome: Effect.succeed
  }))

const ours = (socket: Socket.Socket): Side => ({
  type: socket.type,
  send: (message) => socket.send(message),
  poll: (ms) => Effect.timeoutOption(socket.receive, Duration.millis(ms)),
  subscribe: (topic) => socket.type === "SUB" ? socket.subscribe(topic) : socket.send([Uint8Array.of(1, ...Socket.frame(topic))])
})

const theirs = (python: Python["Type"], id: string, type: Socket.SocketType): Side => ({
  type,
  send: (message) => python.call({ op: "send", id, frames: message.map(hex) }),
  poll: (ms) =>
    Effect.map(python.call({ op: "recv", id, timeout: ms }), (reply) =>
      reply.ok ? Option.some((reply.frames ?? []).map(unhex)) : Option.none()),
  subscribe: (topic) =>
    type === "SUB"
      ? python.call({ op: "subscribe", id, topic: hex(Socket.frame(topic)) })
      : python.call({ op: "send", id, frames: [hex(Uint8Array.of(1, ...Socket.frame(topic)))] })
})

/**
 * libzmq 4.3.5 drops every reply to a REQ that is a PLAIN or CURVE server with a ZAP user id: its engine hands the
 * session a credential frame first, which the REQ session's envelope check rejects, and the connection is closed.
 * pyzmq REQ against pyzmq REP shows the same. Against such a REQ, only the request is checked.
 */
const requestOnly = (requester: Side, replier: Side) =>
  Effect.gen(function*() {
    yield* requester.send(frames("question"))
    const request = yield* recv(replier)
    assert.deepStrictEqual(texts(request).slice(-2), ["", "question"].slice(replier.type === "ROUTER" ? 0 : 1))
  })

/** REQ or DEALER asks, REP or ROUTER answers; envelopes as each type shows them to its application. */
const requestReply = (requester: Side, replier: Side) =>
  Effect.gen(function*() {
    const wrap = (body: string) => requester.type === "DEALER" ? frames("", body) : frames(body)
    yield* requester.send(wrap("question"))
    const request = yield* recv(replier)
    if (replier.type === "ROUTER") {
      assert.deepStrictEqual(texts(request), ["peer-1", "", "question"])
      yield* replier.send([request[0]!, ...frames("", "answer")])
    } else {
      assert.deepStrictEqual(texts(request), ["question"])
      yield* replier.send(frames("answer"))
    }
    assert.deepStrictEqual(texts(yield* recv(requester)), texts(wrap("answer")))
  })

/** Both ends send and receive unchanged messages (DEALER–DEALER, PAIR–PAIR). */
const dialogue = (a: Side, b: Side) =>
  Effect.gen(function*() {
    yield* a.send(frames("x", "1"))
    assert.deepStrictEqual(texts(yield* recv(b)), ["x", "1"])
    yield* b.send(frames("y"))
    assert.deepStrictEqual(texts(yield* recv(a)), ["y"])
  })

const pushPull = (push: Side, pull: Side) =>
  Effect.gen(function*() {
    for (const i of [1, 2, 3]) yield* push.send(frames(`job-${i}`))
    for (const i of [1, 2, 3]) assert.deepStrictEqual(texts(yield* recv(pull)), [`job-${i}`])
  })

/** Publishes until the subscription has reached the publisher; only the subscribed prefix arrives. */
const publishUntilReceived = (pub: Side, sub: Side) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 100; attempt++) {
      yield* pub.send(frames("other", "no"))
      yield* pub.send(frames("topic.a", "yes"))
      const got = yield* sub.poll(50)
      if (Option.isSome(got)) {
        assert.deepStrictEqual(texts(got.value), ["topic.a", "yes"])
        return
      }
    }
    assert.fail("the subscriber never received a message")
  })

const pubSub = (pub: Side, sub: Side) =>
  Effect.zipRight(sub.subscribe("topic."), publishUntilReceived(pub, sub))

/** XSUB subscribes by message; XPUB's application sees the subscription, then publishes. */
const xpubXsub = (xpub: Side, xsub: Side) =>
  Effect.gen(function*() {
    yield* xsub.subscribe("topic.")
    const subscription = yield* recv(xpub)
    assert.deepStrictEqual([subscription[0]![0], text(subscription[0]!.subarray(1))], [1, "topic."])
    yield* publishUntilReceived(xpub, xsub)
  })

interface PairCase {
  readonly a: Socket.SocketType
  readonly b: Socket.SocketType
  readonly run: (a: Side, b: Side) => Effect.Effect<void, unknown>
}

const pairs: ReadonlyArray<PairCase> = [
  { a: "REQ", b: "REP", run: requestReply },
  { a: "REQ", b: "ROUTER", run: requestReply },
  { a: "DEALER", b: "REP", run: requestReply },
  { a: "DEALER", b: "ROUTER", run: requestReply },
  { a: "DEALER", b: "DEALER", run: dialogue },
  { a: "PUB", b: "SUB", run: pubSub },
  { a: "XPUB", b: "XSUB", run: xpubXsub },
  { a: "PUSH", b: "PULL", run: pushPull },
  { a: "PAIR", b: "PAIR", run: dialogue }
]

type MechanismName = "NULL" | "PLAIN" | "CURVE"

/** The binding side is the server; our mechanism and the peer's settings for one case. */
const mechanisms = (name: MechanismName, weBind: boolean, wrong = false) => {
  // (`wrong`: PLAIN with a bad password, CURVE with a wrong server key.)
  switch (name) {
    case "NULL":
      return { ours: undefined as Mechanism | undefined, theirs: { kind: "NULL" } as Record<string, unknown> }
    case "PLAIN": {
      const password = wrong ? "wrong" : "secret"
      return weBind
        ? {
          ours: Plain.server({
            authenticate: (c) => Effect.succeed(c.username === "admin" && Redacted.value(c.password) === "secret")
          }),
          theirs: { kind: "PLAIN", username: "admin", password }
        }
        : { ours: Plain.client({ username: "admin", password: Redacted.make(password) }), theirs: { kind: "PLAIN", server: true } }
    }
    case "CURVE": {
      const server = Curve.keyPair()
      const client = Curve.keyPair()
      const serverKey = wrong ? Curve.keyPair().publicKey : server.publicKey
      return weBind
        ? {
          ours: Curve.server({ keyPair: server }),
          theirs: { kind: "CURVE", serverKey: z85(serverKey), public: z85(client.publicKey), secret: z85(Redacted.value(client.secretKey)) }
        }
        : {
          ours: Curve.client({ serverKey, keyPair: client }),
          theirs: { kind: "CURVE", server: true, secret: z85(Redacted.value(server.secretKey)) },
          clientKey: z85(client.publicKey)
        }
    }
  }
}

let ids = 0

/** Our socket and pyzmq's, connected: the binder's endpoint is on 127.0.0.1 with a system-chosen port. */
const connectPair = (
  python: Python["Type"],
  options: {
    readonly ours: Socket.SocketType
    readonly theirs: Socket.SocketType
    readonly weBind: boolean
    readonly mechanism: MechanismName
    readonly wrong?: boolean
    /** CURVE against a pyzmq server: whether its ZAP handler knows our key. Default: true. */
    readonly keyKnown?: boolean
  }
) =>
  Effect.gen(function*() {
    const id = `s${ids++}`
    const chosen = mechanisms(options.mechanism, options.weBind, options.wrong)
    const { ours: mechanism, theirs: theirMechanism } = chosen
    if ("clientKey" in chosen && options.keyKnown !== false) yield* python.call({ op: "curve_allow", key: chosen.clientKey })
    const identityFor = (type: Socket.SocketType) => type === "REQ" || type === "DEALER" ? "peer-1" : undefined
    const socket = yield* Socket.make({ type: options.ours, mechanism, identity: identityFor(options.ours), linger: 0 })
    const events = yield* socket.events
    yield* python.call({ op: "socket", id, type: options.theirs, identity: identityFor(options.theirs), mechanism: theirMechanism })
    yield* Effect.addFinalizer(() => Effect.ignore(python.call({ op: "close", id })))
    if (options.weBind) {
      const endpoint = yield* socket.bind("tcp://127.0.0.1:0")
      yield* python.call({ op: "connect", id, endpoint })
    } else {
      const reply = yield* python.call({ op: "bind", id, endpoint: "tcp://127.0.0.1:*" })
      yield* socket.connect(reply.endpoint!)
    }
    return { socket, events, ours: ours(socket), theirs: theirs(python, id, options.theirs) }
  })

const firstHandshakeFailure = (events: Stream.Stream<Socket.SocketEvent>) =>
  events.pipe(
    Stream.filter((event) => event._tag === "HandshakeFailed"),
    Stream.runHead,
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new PeerFailed({ message: "no handshake failure" }) }),
    Effect.map((event) => Option.getOrThrow(event))
  )

describe.runIf(available)("ZMTP socket pairs against pyzmq", () => {
  layer(PythonLive, { excludeTestServices: true, timeout: "30 seconds" })((it) => {
    for (const mechanism of ["NULL", "PLAIN", "CURVE"] as const) {
      for (const pair of pairs) {
        const roles = pair.a === pair.b ? [[pair.a, pair.b] as const] : [[pair.a, pair.b] as const, [pair.b, pair.a] as const]
        for (const [ourType, theirType] of roles) {
          for (const weBind of [true, false]) {
            const name = `${mechanism}: our ${ourType}${weBind ? " (binds)" : ""} with pyzmq ${theirType}${weBind ? "" : " (binds)"}`
            it.scoped(name, () =>
              Effect.gen(function*() {
                const python = yield* Python
                const { ours, theirs } = yield* connectPair(python, { ours: ourType, theirs: theirType, weBind, mechanism })
                const run = theirType === "REQ" && !weBind && mechanism !== "NULL" ? requestOnly : pair.run
                // The scenario takes its sides in the table's order (a, b).
                yield* ourType === pair.a ? run(ours, theirs) : run(theirs, ours)
              }), 30_000)
          }
        }
      }
    }

    for (const weBind of [true, false]) {
      it.scoped(`PLAIN: a bad password is refused (${weBind ? "our server, pyzmq client" : "pyzmq server with ZAP, our client"})`, () =>
        Effect.gen(function*() {
          const python = yield* Python
          const { events, ours, theirs } = yield* connectPair(python, { ours: weBind ? "ROUTER" : "DEALER", theirs: weBind ? "DEALER" : "ROUTER", weBind, mechanism: "PLAIN", wrong: true })
          const failure = yield* firstHandshakeFailure(events)
          assert.strictEqual(failure._tag === "HandshakeFailed" && failure.error.reason, "AuthenticationFailed")
          if (weBind) {
            // Who tried, for the logs.
            assert.match(failure._tag === "HandshakeFailed" ? failure.peerAddress : "", /^127\.0\.0\.1:\d+$/)
            assert.isTrue(Option.isNone(yield* ours.poll(300)))
          } else {
            // pyzmq's ZAP handler answers 400; libzmq passes the status code on in ERROR.
            assert.strictEqual(failure._tag === "HandshakeFailed" && failure.error.code, "400")
            yield* ours.send(frames("let me in"))
            assert.isTrue(Option.isNone(yield* theirs.poll(300)))
          }
        }), 30_000)

      it.scoped(`CURVE: a wrong server key is refused (${weBind ? "our server, pyzmq client" : "pyzmq server, our client"})`, () =>
        Effect.gen(function*() {
          const python = yield* Python
          const { events, ours, theirs } = yield* connectPair(python, { ours: weBind ? "ROUTER" : "DEALER", theirs: weBind ? "DEALER" : "ROUTER", weBind, mechanism: "CURVE", wrong: true })
          const failure = yield* firstHandshakeFailure(events)
          assert.strictEqual(failure._tag, "HandshakeFailed")
          if (weBind) {
            assert.isTrue(Option.isNone(yield* ours.poll(300)))
          } else {
            yield* ours.send(frames("secret?"))
            assert.isTrue(Option.isNone(yield* theirs.poll(300)))
          }
        }), 30_000)
    }

    it.scoped("CURVE: a pyzmq server whose ZAP handler does not know our key refuses it with 400", () =>
      Effect.gen(function*() {
        const python = yield* Python
        const { events, ours, theirs } = yield* connectPair(python, { ours: "DEALER", theirs: "ROUTER", weBind: false, mechanism: "CURVE", keyKnown: false })
        const failure = yield* firstHandshakeFailure(events)
        assert.strictEqual(failure._tag === "HandshakeFailed" && failure.error.reason, "AuthenticationFailed")
        assert.strictEqual(failure._tag === "HandshakeFailed" && failure.error.code, "400")
        yield* ours.send(frames("let me in"))
        assert.isTrue(Option.isNone(yield* theirs.poll(300)))
      }), 30_000)

    it.scoped("PLAIN: our client with the right password gets into a pyzmq server with ZAP, as the user it named", () =>
      Effect.gen(function*() {
        const python = yield* Python
        const { events, ours, theirs } = yield* connectPair(python, { ours: "DEALER", theirs: "ROUTER", weBind: false, mechanism: "PLAIN" })
        const connected = yield* events.pipe(Stream.filter((e) => e._tag === "Connected"), Stream.runHead, Effect.map(Option.getOrThrow))
        assert.strictEqual(connected._tag === "Connected" && connected.userId, "admin")
        yield* ours.send(frames("hello"))
        assert.deepStrictEqual(texts(yield* recv(theirs)), ["peer-1", "hello"])
      }), 30_000)
  })
})
