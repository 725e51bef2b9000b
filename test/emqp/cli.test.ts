import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Deferred from "effect/Deferred"
import * as Client from "../../src/emqp/Client.js"
import * as Worker from "../../src/emqp/Worker.js"
import * as Cli from "../../src/emqp/cli.js"

const refused = (args: ReadonlyArray<string>) =>
  Effect.map(Effect.flip(Cli.run(args)), (error) => {
    if (error._tag !== "EmqpError") return assert.fail(`expected an EmqpError, got ${error._tag}`)
    return error
  })

describe("cli", () => {
  it.effect("refuses unknown commands and flags with a usage error", () =>
    Effect.gen(function*() {
      const unknown = yield* refused(["emqp", "frob"])
      assert.strictEqual(unknown.reason, "Malformed")
      assert.include(unknown.detail, "usage:")
      const flag = yield* refused(["broker", "--frontend"])
      assert.include(flag.detail, "unexpected argument --frontend")
      const noModule = yield* refused(["worker"])
      assert.include(noModule.detail, "--module")
    }))

  it.scopedLive("`emqp broker` and `emqp worker --module` serve a client's requests", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "emqp-cli-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const module = Path.join(dir, "jobs.mjs")
      Fs.writeFileSync(module, "export default async (job) => ({ echoed: job.payload, queue: job.queue })\n")
      yield* Effect.forkScoped(Cli.run([
        "emqp", "broker", "--frontend", "memory://cli-frontend", "--backend", "memory://cli-backend", "--admin", "none"
      ]))
      yield* Effect.forkScoped(Cli.run([
        "emqp", "worker", "--module", module, "--address", "memory://cli-backend", "--queues", "10:echo", "--concurrency", "2"
      ]))
      yield* Effect.sleep(Duration.millis(300))
      const client = yield* Client.make({ address: "memory://cli-frontend" })
      const result = yield* client.request({ hello: "cli" }, { queue: "echo", timeout: Duration.seconds(5) })
      assert.deepStrictEqual(result, { echoed: { hello: "cli" }, queue: "echo" })
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

  it.scopedLive("`emqp scheduler --store` runs a scheduled job and keeps it in the store file", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "emqp-cli-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true })))
      const store = Path.join(dir, "schedule.json")
      yield* Effect.forkScoped(Cli.run([
        "emqp", "broker", "--frontend", "memory://cli-s-frontend", "--backend", "memory://cli-s-backend", "--admin", "none"
      ]))
      yield* Effect.forkScoped(Cli.run(["emqp", "scheduler", "--address", "memory://cli-s-frontend", "--store", store]))
      const ran = yield* Deferred.make<unknown>()
      yield* Worker.make((job) => Deferred.succeed(ran, job.payload), {
        address: "memory://cli-s-backend",
        queues: [{ weight: 10, name: "nightly" }]
      })
      yield* Effect.sleep(Duration.millis(300))
      const client = yield* Client.make({ address: "memory://cli-s-frontend" })
      yield* client.schedule({ queue: "nightly", payload: { report: "sales" }, interval: Duration.hours(1) })
      const payload = yield* Deferred.await(ran).pipe(Effect.timeout(Duration.seconds(10)))
      assert.deepStrictEqual(payload, { report: "sales" })
      const saved = Fs.readFileSync(store, "utf8")
      assert.include(saved, "nightly")
      assert.include(saved, "sales")
    }).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
})
