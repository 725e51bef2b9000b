/**
 * A publisher and a consumer that ride out broker restarts: the connection rotates over two hosts (the first
 * refuses), reports its states, and restores its channels, queue and consumer after every loss. Publishes go
 * through a pool of confirm channels and are retried when a loss leaves them unconfirmed.
 *
 *   npm run example examples/amqp-recovery.ts
 *
 * While it runs, force a loss with `rabbitmqctl close_all_connections test` or `rabbitmqctl stop_app` followed
 * by `rabbitmqctl start_app`: the counts keep going up and every confirmed message is received.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as ChannelPool from "../src/amqp/ChannelPool.js"
import * as Recovery from "../src/amqp/Recovery.js"

const program = Effect.gen(function*() {
  const amqp = yield* Recovery.make({
    url: process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672",
    hosts: ["127.0.0.1:1", "127.0.0.1:5672"],
    connectionName: "recovery-example",
    afterRecovery: () => Console.log("recovered: channels, queue and consumer are back")
  })
  yield* amqp.states.pipe(Stream.runForEach((state) => Console.log(`state: ${state._tag}`, state)), Effect.fork)

  const channel = yield* amqp.channel({ prefetch: 100 })
  const { queue } = yield* channel.queueDeclare("", { exclusive: true })

  const received = new Set<string>()
  let redelivered = 0
  yield* channel.consume(queue).pipe(
    Stream.runForEach((delivery) =>
      Effect.gen(function*() {
        if (delivery.redelivered) redelivered++
        received.add(delivery.text)
        // A delivery of a connection that is gone cannot be acked; the broker redelivers it.
        yield* Effect.ignore(delivery.ack())
      })
    ),
    Effect.fork
  )

  const pool = yield* ChannelPool.make(amqp, { size: 2, inFlight: 64 })
  let confirmed = 0
  yield* Effect.forEach(
    Array.from({ length: 20_000 }, (_, i) => `message ${i}`),
    (text) => Effect.tap(pool.publish("", queue, new TextEncoder().encode(text)), () => confirmed++),
    { concurrency: 128, discard: true }
  ).pipe(Effect.fork)

  for (let second = 1; second <= 10; second++) {
    yield* Effect.sleep("1 second")
    yield* Console.log(`${second} s: ${confirmed} confirmed, ${received.size} received, ${redelivered} redelivered`)
  }
}).pipe(Effect.scoped)

Effect.runPromise(program).catch((error) => {
  process.exitCode = 1
  process.stderr.write(`${String(error)}\n`)
})
