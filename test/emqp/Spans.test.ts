/**
 * Tracing: a request and the job it runs each get a span once a tracer that exports spans is installed; under
 * Effect's built-in tracer, which exports nothing, no span is made per job.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Socket from "../../src/emqp/Socket.js"
import * as Worker from "../../src/emqp/Worker.js"

let counter = 0

/** A broker, one worker whose job reports the span it runs in, and a client, over memory endpoints. */
const system = Effect.gen(function*() {
  const n = ++counter
  const frontend = `memory://emqp-spans-${n}-frontend`
  const backend = `memory://emqp-spans-${n}-backend`
  yield* Broker.makeWith({ frontend: Socket.router(frontend), backend: Socket.router(backend) }, {})
  yield* Worker.makeWith(
    Socket.dealer(backend),
    () => Effect.map(Effect.option(Effect.currentSpan), Option.match({ onNone: () => "none", onSome: (span) => span.name })),
    { concurrency: 1 }
  )
  return yield* Client.makeWith(Socket.dealer(frontend))
})

/** Effect's own tracer, recording the names and attributes of the spans it is asked for. */
const recording = () => {
  const builtIn = Effect.runSync(Effect.tracer)
  const spans: Array<Tracer.Span> = []
  const tracer = Tracer.make({
    span: (...args) => {
      const span = builtIn.span(...args)
      spans.push(span)
      return span
    },
    context: builtIn.context
  })
  return { tracer, spans }
}

describe("eMQP spans", () => {
  it.scopedLive("an installed tracer gets a span for the request and one for the job, with their attributes", () =>
    Effect.gen(function*() {
      const { spans, tracer } = recording()
      const inJob = yield* Effect.gen(function*() {
        const client = yield* system
        return yield* client.request({ n: 1 }, { queue: "default" })
      }).pipe(Effect.withTracer(tracer))
      assert.strictEqual(inJob, "emqp.worker.job")
      const request = spans.find((span) => span.name === "emqp.client.request")
      const job = spans.find((span) => span.name === "emqp.worker.job")
      assert.isDefined(request)
      assert.isDefined(job)
      assert.strictEqual(request!.attributes.get("messaging.destination.name"), "default")
      assert.isString(job!.attributes.get("messaging.message.id"))
      assert.strictEqual(request!.status._tag, "Ended")
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

  it.scopedLive("under the built-in tracer a job runs without a span of its own", () =>
    Effect.gen(function*() {
      const client = yield* system
      assert.strictEqual(yield* client.request({ n: 1 }), "none")
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
})
