/**
 * Publisher confirms: 10,000 messages published with up to 500 in flight on one confirm channel. Each publish
 * completes when the broker acks it; an unroutable `mandatory` message fails with `PublishReturned`, and a
 * channel the broker closes fails every outstanding publish with `ChannelClosed` (404 for a missing exchange).
 *
 *   AMQP_URL=amqp://guest:guest@localhost:5672 npm run example examples/amqp-confirms.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Connection from "../src/amqp/Connection.js"

const program = Effect.gen(function*() {
  const connection = yield* Connection.Connection
  const channel = yield* connection.channel({ confirm: true })
  const { queue } = yield* channel.queueDeclare("", { exclusive: true })

  const start = Date.now()
  yield* Effect.forEach(
    Array.from({ length: 10_000 }, (_, i) => i),
    (i) => channel.publish("", queue, new TextEncoder().encode(`message ${i}`), { properties: { messageId: String(i) } }),
    { concurrency: 500, discard: true }
  )
  const { messageCount } = yield* channel.queueDeclare(queue, { passive: true })
  yield* Effect.log(`10,000 publishes confirmed in ${Date.now() - start} ms; the queue holds ${messageCount}`)

  // Mandatory and unroutable: returned (312 NO_ROUTE) before the ack, so the publish fails.
  const returned = yield* Effect.flip(
    channel.publish("amq.direct", "no-binding-here", new TextEncoder().encode("?"), { mandatory: true })
  )
  yield* Effect.log(`mandatory publish: ${returned.message}`)

  // A missing exchange: the broker closes the channel; the connection and other channels carry on.
  const doomed = yield* connection.channel({ confirm: true })
  const closed = yield* Effect.flip(doomed.publish("no-such-exchange", "x", new Uint8Array(1)))
  yield* Effect.log(`publish to a missing exchange: ${closed.message}`)
}).pipe(Effect.scoped, Effect.provide(Connection.layerConfig()))

NodeRuntime.runMain(program)
