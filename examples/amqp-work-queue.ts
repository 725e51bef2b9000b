/**
 * A work queue with typed messages: a producer publishes jobs as JSON (validated by a Schema), a worker consumes
 * them with a prefetch of 5, acknowledges each after the work is done, and dead-letters (nack without requeue)
 * bodies that do not decode.
 *
 *   AMQP_URL=amqp://guest:guest@localhost:5672 npm run example examples/amqp-work-queue.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Connection from "../src/amqp/Connection.js"
import * as Consumer from "../src/amqp/Consumer.js"
import * as Publisher from "../src/amqp/Publisher.js"

class Job extends Schema.Class<Job>("Job")({
  id: Schema.Number,
  task: Schema.Literal("resize", "transcode", "index"),
  submittedAt: Schema.DateFromString
}) {}

const encodeJob = Publisher.encodeJson(Job)
const decodeJob = Consumer.decodeJson(Job)

const queue = "effect-wire.example.jobs"

const producer = Effect.gen(function*() {
  const connection = yield* Connection.Connection
  const channel = yield* connection.channel({ confirm: true })
  yield* channel.queueDeclare(queue, { durable: true })
  for (let id = 1; id <= 10; id++) {
    const job = new Job({ id, task: id % 3 === 0 ? "index" : id % 2 === 0 ? "transcode" : "resize", submittedAt: new Date() })
    const { body, properties } = yield* encodeJob(job, { deliveryMode: 2, messageId: `job-${id}` })
    // Confirmed: the broker has the job on disk when this returns.
    yield* channel.publish("", queue, body, { properties })
  }
  // One body that is not a Job: the worker rejects it without requeueing.
  yield* channel.publish("", queue, new TextEncoder().encode("{\"id\":\"oops\"}"), {
    properties: { contentType: "application/json" }
  })
  yield* Effect.log("published 10 jobs and one malformed message")
})

const worker = Effect.gen(function*() {
  const connection = yield* Connection.Connection
  const channel = yield* connection.channel()
  yield* channel.consume(queue, { prefetch: 5 }).pipe(
    Stream.mapEffect((delivery) =>
      decodeJob(delivery).pipe(
        Effect.tap((job) => Effect.log(`job ${job.id}: ${job.task}`).pipe(Effect.delay("20 millis"))),
        Effect.zipRight(delivery.ack()),
        Effect.as(1),
        Effect.catchTag("BodyDecodeError", (error) =>
          Effect.logWarning(`rejecting delivery ${error.delivery.deliveryTag}: ${error.cause.message}`).pipe(
            Effect.zipRight(error.delivery.nack({ requeue: false })),
            Effect.as(0)
          ))
      )
    ),
    Stream.take(11),
    Stream.runSum,
    Effect.tap((done) => Effect.log(`worker done: ${done} jobs processed`))
  )
})

const program = Effect.scoped(Effect.zipRight(producer, worker)).pipe(
  Effect.provide(Connection.layerConfig())
)

NodeRuntime.runMain(program)
