import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Worker from "../../src/emqp/Worker.js"

const load = (entries: Record<string, string>) =>
  Effect.withConfigProvider(Worker.config, ConfigProvider.fromMap(new Map(Object.entries(entries))))

describe("Worker.config (the reference job manager's settings)", () => {
  it.effect("defaults are the reference's", () =>
    Effect.gen(function*() {
      const options = yield* load({})
      assert.strictEqual(options.address, "tcp://127.0.0.1:47290")
      assert.strictEqual(options.concurrency, 4)
      assert.strictEqual(options.prefetch, 0)
      assert.deepStrictEqual(options.queues, [{ weight: 10, name: "default" }])
      assert.isTrue(Duration.equals(Duration.decode(options.jobTimeout!), Duration.seconds(300)))
      assert.strictEqual(options.liveness, 3)
    }))

  it.effect("reads WORKER_ADDR, CONCURRENT_JOBS, QUEUES (JSON, in priority order), GLOBAL_TIMEOUT, PREFETCH", () =>
    Effect.gen(function*() {
      const options = yield* load({
        WORKER_ADDR: "tcp://10.0.0.1:47290",
        CONCURRENT_JOBS: "8",
        QUEUES: "[[30, \"email\"], [10, \"default\"]]",
        GLOBAL_TIMEOUT: "60",
        PREFETCH: "2"
      })
      assert.strictEqual(options.address, "tcp://10.0.0.1:47290")
      assert.strictEqual(options.concurrency, 8)
      assert.strictEqual(options.prefetch, 2)
      assert.deepStrictEqual(options.queues, [{ weight: 30, name: "email" }, { weight: 10, name: "default" }])
      assert.isTrue(Duration.equals(Duration.decode(options.jobTimeout!), Duration.seconds(60)))
    }))

  it.effect("QUEUES that are not [[weight, name], …] are a config error", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(load({ QUEUES: "default,email" }))
      assert.include(String(error), "QUEUES")
    }))
})
