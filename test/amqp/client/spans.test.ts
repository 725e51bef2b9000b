/**
 * Tracing: one span per synchronous request, named after the class and method (`amqp.queue.declare`), a child of
 * the caller's span; none per publish, ack or frame.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import { spanName } from "../../../src/amqp/internal/client/spans.js"
import * as Methods from "../../../src/amqp/Methods.js"
import * as FakeBroker from "./fakeBroker.js"

interface Recorded {
  readonly name: string
  readonly parent: string | undefined
  readonly attributes: Map<string, unknown>
  exit: Exit.Exit<unknown, unknown> | undefined
}

/** A tracer that records every span it starts. */
const recordingTracer = () => {
  const spans: Array<Recorded> = []
  let ids = 0
  const tracer = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      const recorded: Recorded = {
        name,
        parent: Option.match(parent, { onNone: () => undefined, onSome: (p) => p._tag === "Span" ? p.name : p.spanId }),
        attributes: new Map(),
        exit: undefined
      }
      spans.push(recorded)
      let status: Tracer.SpanStatus = { _tag: "Started", startTime }
      const span: Tracer.Span = {
        _tag: "Span",
        name,
        spanId: `span-${++ids}`,
        traceId: "trace",
        parent,
        context,
        get status() {
          return status
        },
        attributes: recorded.attributes,
        links,
        sampled: true,
        kind,
        end: (endTime, exit) => {
          status = { _tag: "Ended", startTime, endTime, exit }
          recorded.exit = exit
        },
        attribute: (key, value) => void recorded.attributes.set(key, value),
        event: () => {},
        addLinks: () => {}
      }
      return span
    },
    context: (f) => f()
  })
  return { spans, tracer }
}

const bytes = (s: string) => new TextEncoder().encode(s)

describe("spans", () => {
  it.scopedLive("one span per synchronous method, under the caller's span; publishes and acks add none", () => {
    const { spans, tracer } = recordingTracer()
    return Effect.gen(function*() {
      const { broker, connection } = yield* FakeBroker.connected()
      const work = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const channel = yield* connection.channel()
        const { queue } = yield* channel.queueDeclare("jobs")
        yield* channel.qos(10)
        for (let i = 0; i < 100; i++) yield* channel.publish("", queue, bytes(`m${i}`))
        yield* channel.ack(1n)
        return queue
      })).pipe(Effect.withSpan("app.work")))
      const id = yield* broker.acceptChannel
      yield* broker.expect("QueueDeclare", id)
      yield* broker.send(id, Methods.make("QueueDeclareOk", { queue: "jobs", messageCount: 0, consumerCount: 0 }))
      yield* broker.expect("BasicQos", id)
      yield* broker.send(id, Methods.make("BasicQosOk", {}))
      for (let i = 0; i < 100 * 3 + 1; i++) yield* broker.recv
      yield* broker.expect("ChannelClose", id)
      yield* broker.send(id, Methods.make("ChannelCloseOk", {}))
      assert.strictEqual(yield* Fiber.join(work), "jobs")

      const names = spans.map((s) => s.name).filter((name) => name !== "amqp.connect")
      assert.deepStrictEqual(names, [
        "app.work",
        "amqp.channel.open",
        "amqp.queue.declare",
        "amqp.basic.qos",
        "amqp.channel.close"
      ])
      for (const span of spans.filter((s) => s.name.startsWith("amqp.") && s.name !== "amqp.connect")) {
        assert.strictEqual(span.parent, "app.work", span.name)
        assert.strictEqual(span.attributes.get("messaging.system"), "rabbitmq")
        assert.strictEqual(span.attributes.get("messaging.rabbitmq.channel"), id)
        assert.strictEqual(span.exit?._tag, "Success", span.name)
      }
    }).pipe(Effect.withTracer(tracer))
  })

  it.scopedLive("a refused request ends its span with the failure; later calls fail with the same error", () => {
    const { spans, tracer } = recordingTracer()
    return Effect.gen(function*() {
      const { broker, connection } = yield* FakeBroker.connected()
      const work = yield* Effect.fork(Effect.scoped(Effect.flatMap(
        connection.channel(),
        (channel) =>
          Effect.all([
            Effect.flip(channel.queueDeclare("missing", { passive: true })),
            Effect.flip(channel.qos(1)),
            Effect.flip(channel.publish("", "q", bytes("x")))
          ])
      ).pipe(Effect.withSpan("app.work"))))
      const id = yield* broker.acceptChannel
      yield* broker.expect("QueueDeclare", id)
      yield* broker.send(id, Methods.make("ChannelClose", { replyCode: 404, replyText: "NOT_FOUND", classId: 50, methodId: 10 }))
      yield* broker.expect("ChannelCloseOk", id)
      const [error, later, publish] = yield* Fiber.join(work)
      assert.strictEqual(error._tag, "ChannelClosed")
      // Inside spans too, every caller gets the very error the channel closed with (not a per-span copy).
      assert.strictEqual(later, error)
      assert.strictEqual(publish, error)
      const declare = spans.find((s) => s.name === "amqp.queue.declare")
      assert.strictEqual(declare?.exit?._tag, "Failure")
    }).pipe(Effect.withTracer(tracer))
  })

  it("span names follow the spec's class and method names", () => {
    assert.deepStrictEqual(
      (["ConnectionUpdateSecret", "ExchangeUnbind", "ConfirmSelect", "TxCommit", "BasicGet", "QueueDeclare"] as const)
        .map(spanName),
      [
        "amqp.connection.update-secret",
        "amqp.exchange.unbind",
        "amqp.confirm.select",
        "amqp.tx.commit",
        "amqp.basic.get",
        "amqp.queue.declare"
      ]
    )
  })
})
