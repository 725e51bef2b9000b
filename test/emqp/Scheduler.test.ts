import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Scheduler from "../../src/emqp/Scheduler.js"
import * as Socket from "../../src/emqp/Socket.js"
import * as Worker from "../../src/emqp/Worker.js"
import * as PyJson from "../../src/emqp/internal/pyjson.js"

const live = <E>(name: string, body: () => Effect.Effect<void, E, Scope.Scope>) =>
  it.scopedLive(name, () => body().pipe(Logger.withMinimumLogLevel(LogLevel.Error)), 20_000)

let counter = 0
const system = Effect.gen(function*() {
  const n = ++counter
  const frontend = `memory://emqp-scheduler-${n}-frontend`
  const backend = `memory://emqp-scheduler-${n}-backend`
  const broker = yield* Broker.makeWith({ frontend: Socket.router(frontend), backend: Socket.router(backend) })
  const runs: Array<unknown> = []
  yield* Worker.makeWith(Socket.dealer(backend), (job) => Effect.sync(() => runs.push(job.payload)))
  const scheduler = yield* Scheduler.makeWith(Socket.dealer(frontend))
  yield* Effect.gen(function*() {
    while (Option.isNone(yield* scheduler.identity)) yield* Effect.sleep(Duration.millis(10))
  })
  const client = yield* Client.makeWith(Socket.dealer(frontend))
  return { broker, runs, scheduler, client }
})

describe("Scheduler", () => {
  it("keys reference payloads exactly as the Python scheduler does", () => {
    const payload = "[\"run\", {\"callable\": \"send_email\", \"path\": \"app.tasks\", \"args\": [1, \"\\u00e9\"], " +
      "\"kwargs\": {\"to\": \"a@b.c\", \"n\": 2}, \"class_args\": [], \"class_kwargs\": {}}]"
    // Computed with CPython 3.11: sha1(json.dumps({args, kwargs, class_args, class_kwargs, path, callable}, sort_keys=True))
    assert.strictEqual(Scheduler.jobKey(payload), "7e2672444d7160d987f774d86348ca088c21e53b")
    // Same call, different JSON layout: same job.
    assert.strictEqual(Scheduler.jobKey(JSON.stringify(JSON.parse(payload))), "7e2672444d7160d987f774d86348ca088c21e53b")
  })

  it("formats JSON as Python's json.dumps", () => {
    assert.strictEqual(
      PyJson.dumps({ b: [1, 2.5, "é\u2028\x7f\"\\"], a: { z: null, y: true }, c: "\n\t" }, true),
      "{\"a\": {\"y\": true, \"z\": null}, \"b\": [1, 2.5, \"\\u00e9\\u2028\\u007f\\\"\\\\\"], \"c\": \"\\n\\t\"}"
    )
  })

  live("an interval job runs at once, then every interval, run_count times in all", () =>
    Effect.gen(function*() {
      const { client, runs, scheduler } = yield* system
      const payload = Client.runPayload({ path: "tasks", callable: "tick" })
      yield* client.schedule({ payload, interval: Duration.seconds(1), headers: { runCount: 3 } })
      yield* Effect.sleep(Duration.millis(2_600))
      assert.strictEqual(runs.length, 3)
      assert.deepStrictEqual(runs[0], payload)
      assert.lengthOf(yield* scheduler.jobs, 0, "done after its last run")
    }))

  live("nohaste waits for the first interval; UNSCHEDULE stops the job", () =>
    Effect.gen(function*() {
      const { client, runs, scheduler } = yield* system
      const payload = Client.runPayload({ path: "tasks", callable: "tock", args: [1] })
      yield* client.schedule({ payload, interval: Duration.seconds(1), headers: { nohaste: true } })
      yield* Effect.sleep(Duration.millis(500))
      assert.strictEqual(runs.length, 0)
      yield* Effect.sleep(Duration.millis(800))
      assert.strictEqual(runs.length, 1)
      yield* client.unschedule(payload)
      yield* Effect.sleep(Duration.millis(100))
      assert.lengthOf(yield* scheduler.jobs, 0)
      yield* Effect.sleep(Duration.millis(1_200))
      assert.strictEqual(runs.length, 1)
    }))

  live("a cron job runs on its schedule", () =>
    Effect.gen(function*() {
      const { client, runs } = yield* system
      yield* client.schedule({ payload: { every: "second" }, cron: "* * * * * *", headers: { nohaste: true } })
      yield* Effect.sleep(Duration.millis(2_300))
      assert.isAtLeast(runs.length, 2)
      assert.isAtMost(runs.length, 3)
    }))

  live("SCHEDULE without a scheduler is refused on the client's outcome stream", () =>
    Effect.gen(function*() {
      const n = ++counter
      yield* Broker.makeWith({
        frontend: Socket.router(`memory://emqp-scheduler-${n}-f`),
        backend: Socket.router(`memory://emqp-scheduler-${n}-b`)
      })
      const client = yield* Client.makeWith(Socket.dealer(`memory://emqp-scheduler-${n}-f`))
      const msgid = yield* client.schedule({ payload: {}, interval: Duration.seconds(5) })
      const outcome = yield* Stream.runHead(client.outcomes)
      assert.isTrue(Option.isSome(outcome))
      const nack = Option.getOrThrow(outcome)
      assert.deepStrictEqual(
        [nack._tag, nack.requestId, nack._tag === "Nack" ? nack.code : ""],
        ["Nack", msgid, "no-scheduler"]
      )
    }))
})
