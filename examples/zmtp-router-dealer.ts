/**
 * A ROUTER serving requests from DEALER workers over TCP, with CURVE: the router knows its workers' keys and
 * refuses everyone else. Run with `npm run example examples/zmtp-router-dealer.ts`.
 */
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Curve from "../src/zmtp/Curve.js"
import * as Socket from "../src/zmtp/Socket.js"

const text = (bytes: Uint8Array | undefined) => new TextDecoder().decode(bytes)

const program = Effect.gen(function*() {
  const serverKeys = Curve.keyPair()
  const workerKeys = [Curve.keyPair(), Curve.keyPair()]

  const router = yield* Socket.make({
    type: "ROUTER",
    mechanism: Curve.server({ keyPair: serverKeys, allow: workerKeys.map((k) => k.publicKey) })
  })
  const endpoint = yield* router.bind("tcp://127.0.0.1:0")
  yield* Effect.log(`router listening on ${endpoint}`)

  // Echo service: reply to every request with its body upper-cased.
  yield* router.messages.pipe(
    Stream.runForEach(([id, ...body]) =>
      router.send([id!, ...body.map((frame) => new TextEncoder().encode(text(frame).toUpperCase()))])
    ),
    Effect.forkScoped
  )

  yield* Effect.forEach(workerKeys, (keyPair, i) =>
    Effect.gen(function*() {
      const worker = yield* Socket.make({
        type: "DEALER",
        identity: `worker-${i}`,
        mechanism: Curve.client({ serverKey: serverKeys.publicKey, keyPair })
      })
      yield* worker.connect(endpoint)
      yield* worker.send([Socket.frame(`hello from worker ${i}`)])
      const reply = yield* worker.receive
      yield* Effect.log(`worker-${i} got: ${text(reply[0])}`)
    }), { concurrency: "unbounded", discard: true })
})

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (error) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
