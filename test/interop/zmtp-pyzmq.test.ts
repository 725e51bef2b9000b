/**
 * Interop with pyzmq (its bundled libzmq), run as a separate process from the peers' venv.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Curve from "../../src/zmtp/Curve.js"
import * as Socket from "../../src/zmtp/Socket.js"
import * as Z85 from "../../src/zmtp/Z85.js"
import { requirePeer } from "../support/peers.js"
import { missingPyzmq, runPython } from "../support/python.js"

const available = requirePeer("zmtp-pyzmq", missingPyzmq())

const text = (bytes: Uint8Array | undefined) => bytes === undefined ? "<none>" : new TextDecoder().decode(bytes)

const dealer = `
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER)
s.setsockopt(zmq.IDENTITY, b"py-1")
s.setsockopt(zmq.LINGER, 0)
s.RCVTIMEO = 5000
s.connect(sys.argv[1])
s.send_multipart([b"", b"hello"])
print("|".join(f.decode() for f in s.recv_multipart()))
`

const curveReq = `
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
public, secret = zmq.curve_keypair()
s.curve_serverkey = sys.argv[2].encode()
s.curve_publickey = public
s.curve_secretkey = secret
s.setsockopt(zmq.LINGER, 0)
s.RCVTIMEO = 5000
s.connect(sys.argv[1])
s.send_multipart([b"over", b"curve"])
print("|".join(f.decode() for f in s.recv_multipart()))
`

const sub = `
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.setsockopt(zmq.LINGER, 0)
s.RCVTIMEO = 5000
s.subscribe(b"b")
s.connect(sys.argv[1])
print("|".join(f.decode() for f in s.recv_multipart()))
`

describe.runIf(available)("ZMTP interop with pyzmq", () => {
  it.scopedLive("pyzmq DEALER -> our ROUTER: its identity as routing id, the reply back", () =>
    Effect.gen(function*() {
      const router = yield* Socket.make({ type: "ROUTER" })
      const endpoint = yield* router.bind("tcp://127.0.0.1:0")
      const serving = yield* Effect.fork(Effect.flatMap(router.receive, (request) =>
        Effect.as(router.send([request[0]!, Socket.frame(""), Socket.frame("world")]), request)))
      const output = yield* runPython(dealer, [endpoint], { timeout: "20 seconds" })
      const request = yield* Fiber.join(serving)
      assert.deepStrictEqual(request.map(text), ["py-1", "", "hello"])
      assert.strictEqual(output.trim(), "|world")
    }), 30_000)

  it.scopedLive("pyzmq CURVE REQ -> our CURVE REP", () =>
    Effect.gen(function*() {
      const keys = Curve.keyPair()
      const rep = yield* Socket.make({ type: "REP", mechanism: Curve.server({ keyPair: keys }) })
      const endpoint = yield* rep.bind("tcp://127.0.0.1:0")
      const serving = yield* Effect.fork(Effect.flatMap(rep.receive, (request) =>
        Effect.as(rep.send([Socket.frame("secured"), ...request]), request)))
      const output = yield* runPython(curveReq, [endpoint, Either.getOrThrow(Z85.encode(keys.publicKey))], { timeout: "20 seconds" })
      assert.deepStrictEqual((yield* Fiber.join(serving)).map(text), ["over", "curve"])
      assert.strictEqual(output.trim(), "secured|over|curve")
    }), 30_000)

  it.scopedLive("pyzmq SUB -> our PUB: only its prefix arrives", () =>
    Effect.gen(function*() {
      const pub = yield* Socket.make({ type: "PUB" })
      const endpoint = yield* pub.bind("tcp://127.0.0.1:0")
      // Publish until the subscriber has joined and received one matching message.
      const publishing = yield* Effect.fork(
        Effect.forever(Effect.zipRight(
          Effect.zipRight(pub.send([Socket.frame("a"), Socket.frame("no")]), pub.send([Socket.frame("b"), Socket.frame("yes")])),
          Effect.sleep("20 millis")
        ))
      )
      const output = yield* runPython(sub, [endpoint], { timeout: "20 seconds" })
      yield* Fiber.interrupt(publishing)
      assert.strictEqual(output.trim(), "b|yes")
    }), 30_000)
})
