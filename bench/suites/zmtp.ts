/**
 * ZMTP: DEALER→ROUTER throughput (64 B, and a 7-frame eMQP-style request) and REQ/REP round-trip latency over TCP
 * on 127.0.0.1, ours against libzmq 4.3.5 through the `zeromq` package, in the same run.
 */
import * as Effect from "effect/Effect"
import * as zmq from "zeromq"
import * as Socket from "../../src/zmtp/Socket.js"
import { bestOf, percentile, type Row, type Suite } from "../harness.js"

const messages = 100_000
const roundTrips = 3_000

const small = [new Uint8Array(64).fill(1)]
const request = ["", "eMQP/1.0", "REQUEST", "0e9c4b1a-7f00-4c8e-9a61-2b8a5e4c9d10", "default", "", JSON.stringify({ path: "jobs.run", args: [1, 2, 3] })]
  .map((s) => new TextEncoder().encode(s))

const ourThroughput = (message: ReadonlyArray<Uint8Array>) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const router = yield* Socket.make({ type: "ROUTER" })
    const endpoint = yield* router.bind("tcp://127.0.0.1:0")
    const dealer = yield* Socket.make({ type: "DEALER" })
    yield* dealer.connect(endpoint)
    yield* dealer.send(message)
    yield* router.receive
    const start = process.hrtime.bigint()
    const receiver = yield* Effect.fork(Effect.forEach(Array.from({ length: messages }), () => router.receive, { discard: true }))
    for (let i = 0; i < messages; i++) yield* dealer.send(message)
    yield* receiver.await
    return messages / (Number(process.hrtime.bigint() - start) / 1e9)
  })))

const nativeThroughput = async (message: ReadonlyArray<Uint8Array>) => {
  const router = new zmq.Router()
  const dealer = new zmq.Dealer()
  router.linger = 0
  dealer.linger = 0
  await router.bind("tcp://127.0.0.1:*")
  dealer.connect(router.lastEndpoint!)
  await dealer.send(message as Array<Uint8Array>)
  await router.receive()
  const start = process.hrtime.bigint()
  const receiving = (async () => {
    for (let i = 0; i < messages; i++) await router.receive()
  })()
  for (let i = 0; i < messages; i++) await dealer.send(message as Array<Uint8Array>)
  await receiving
  const rate = messages / (Number(process.hrtime.bigint() - start) / 1e9)
  router.close()
  dealer.close()
  return rate
}

const ourLatency = () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const rep = yield* Socket.make({ type: "REP" })
    const endpoint = yield* rep.bind("tcp://127.0.0.1:0")
    const req = yield* Socket.make({ type: "REQ" })
    yield* req.connect(endpoint)
    yield* Effect.fork(Effect.forever(Effect.flatMap(rep.receive, (m) => rep.send(m))))
    const samples: Array<number> = []
    for (let i = 0; i < roundTrips; i++) {
      const start = process.hrtime.bigint()
      yield* req.send(small)
      yield* req.receive
      samples.push(Number(process.hrtime.bigint() - start) / 1000)
    }
    return percentile(samples.slice(roundTrips / 10), 50)
  })))

const nativeLatency = async () => {
  const rep = new zmq.Reply()
  const req = new zmq.Request()
  rep.linger = 0
  req.linger = 0
  await rep.bind("tcp://127.0.0.1:*")
  req.connect(rep.lastEndpoint!)
  let running = true
  const echo = (async () => {
    while (running) {
      const m = await rep.receive()
      await rep.send(m)
    }
  })()
  const samples: Array<number> = []
  for (let i = 0; i < roundTrips; i++) {
    const start = process.hrtime.bigint()
    await req.send(small as Array<Uint8Array>)
    await req.receive()
    samples.push(Number(process.hrtime.bigint() - start) / 1000)
  }
  running = false
  req.close()
  rep.close()
  void echo.catch(() => undefined)
  return percentile(samples.slice(roundTrips / 10), 50)
}

const suite: Suite = {
  name: "zmtp",
  run: async () => {
    const rows: Array<Row> = []
    rows.push({
      metric: "DEALER→ROUTER throughput, 1 × 64 B",
      unit: "msg/s",
      better: "higher",
      ours: await bestOf(3, () => ourThroughput(small)),
      peers: { "zeromq.js (libzmq 4.3.5)": await bestOf(3, () => nativeThroughput(small)) }
    })
    rows.push({
      metric: "DEALER→ROUTER throughput, 7-frame request",
      unit: "msg/s",
      better: "higher",
      ours: await bestOf(3, () => ourThroughput(request)),
      peers: { "zeromq.js (libzmq 4.3.5)": await bestOf(3, () => nativeThroughput(request)) }
    })
    rows.push({
      metric: "REQ/REP round trip p50, 64 B",
      unit: "µs",
      better: "lower",
      ours: await bestOf(3, ourLatency, "lower"),
      peers: { "zeromq.js (libzmq 4.3.5)": await bestOf(3, nativeLatency, "lower") }
    })
    return rows
  }
}

export default suite
