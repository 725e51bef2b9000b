/**
 * A price feed over TCP: one PUB, a fast subscriber and a slow one. The slow subscriber's small receive queue fills
 * and it drops what it cannot keep up with; the publisher and the fast subscriber never wait for it. Counters show
 * where messages went. Run with `npm run example examples/zmtp-pubsub.ts`.
 */
import * as Effect from "effect/Effect"
import * as Socket from "../src/zmtp/Socket.js"

const ticks = 20_000

const program = Effect.gen(function*() {
  const feed = yield* Socket.make({ type: "PUB" })
  const endpoint = yield* feed.bind("tcp://127.0.0.1:0")

  const fast = yield* Socket.make({ type: "SUB" })
  const slow = yield* Socket.make({ type: "SUB", receiveHighWaterMark: 100 })
  for (const sub of [fast, slow]) {
    yield* sub.subscribe("prices.")
    yield* sub.connect(endpoint)
  }
  // Subscriptions travel to the publisher after the handshake: publish once both are in.
  while ((yield* feed.connectedPeers) < 2) yield* Effect.sleep("10 millis")
  yield* Effect.sleep("50 millis")

  let fastCount = 0
  let slowCount = 0
  yield* Effect.forkScoped(Effect.forever(Effect.zipRight(fast.receive, Effect.sync(() => fastCount++))))
  // The slow consumer spends a millisecond on each tick.
  yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.zipRight(slow.receive, Effect.sleep("1 millis")), Effect.sync(() => slowCount++))))

  const started = Date.now()
  for (let i = 0; i < ticks; i++) {
    yield* feed.send([Socket.frame("prices.EURUSD"), Socket.frame(String(1.08 + (i % 100) / 10_000))])
    if (i % 200 === 199) yield* Effect.sleep("1 millis") // a feed has pauses; the fast reader keeps pace
  }
  yield* Effect.log(`published ${ticks} ticks in ${Date.now() - started} ms`)
  yield* Effect.sleep("500 millis")

  const [feedStats, fastStats, slowStats] = yield* Effect.all([feed.stats, fast.stats, slow.stats])
  yield* Effect.log(`fast subscriber: ${fastCount} handled, ${fastStats.dropped} dropped`)
  yield* Effect.log(`slow subscriber: ${slowCount} handled, ${slowStats.dropped} dropped at its queue`)
  yield* Effect.log(`publisher: ${feedStats.messagesOut} written, ${feedStats.dropped} dropped at full pipes`)
})

Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (error) => {
  process.stderr.write(`${String(error)}\n`)
  process.exit(1)
})
