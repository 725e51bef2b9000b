/**
 * A scheduler with a file store, over memory transports, with the TestClock: schedules survive a restart and
 * run at the right times.
 */
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as ScheduleStore from "../../src/emqp/ScheduleStore.js"
import * as Scheduler from "../../src/emqp/Scheduler.js"
import * as Socket from "../../src/emqp/Socket.js"
import * as Worker from "../../src/emqp/Worker.js"

const scoped = <E>(name: string, body: () => Effect.Effect<void, E, Scope.Scope>) =>
  it.scoped(name, () => body().pipe(Logger.withMinimumLogLevel(LogLevel.None)), 20_000)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "emqp-scheduler-store-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

/** Waits on the real clock (file writes and memory transports are real) until `check` holds. */
const eventually = <A, E>(what: string, effect: Effect.Effect<A, E>, check: (a: A) => boolean) =>
  TestServices.provideLive(
    Effect.gen(function*() {
      while (true) {
        const a = yield* effect
        if (check(a)) return a
        yield* Effect.sleep(Duration.millis(5))
      }
    }).pipe(Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error(`timed out: ${what}`) }))
  )

/** Lets in-flight work on the real clock finish, for assertions that nothing happened. */
const quiet = TestServices.provideLive(Effect.sleep(Duration.millis(50)))

const onDisk = (path: string): ReadonlyArray<Record<string, unknown>> =>
  Fs.existsSync(path) ? JSON.parse(Fs.readFileSync(path, "utf8")).jobs : []

let counter = 0
const system = Effect.gen(function*() {
  const n = ++counter
  const frontend = `memory://emqp-scheduler-store-${n}-frontend`
  const backend = `memory://emqp-scheduler-store-${n}-backend`
  yield* Broker.makeWith({ frontend: Socket.router(frontend), backend: Socket.router(backend) })
  const runs: Array<unknown> = []
  yield* Worker.makeWith(Socket.dealer(backend), (job) => Effect.sync(() => runs.push(job.payload)))
  const client = yield* Client.makeWith(Socket.dealer(frontend))
  /** A scheduler with a file store on `path`, in its own scope. */
  const startScheduler = (path: string, options: Scheduler.SchedulerOptions = {}) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const store = yield* Effect.provide(ScheduleStore.file({ path }), NodeFileSystem.layer)
      const scheduler = yield* Scope.extend(Scheduler.makeWith(Socket.dealer(frontend), { ...options, store }), scope)
      yield* eventually("the scheduler is registered", scheduler.identity, Option.isSome)
      return { scheduler, stop: Scope.close(scope, Exit.void) }
    })
  return { runs, client, startScheduler }
})

describe("Scheduler with a file store", () => {
  scoped("a job survives a restart: runs left kept, missed runs skipped, the next run on its grid", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir, "schedule.json")
      const { client, runs, startScheduler } = yield* system
      const first = yield* startScheduler(path)
      const payload = Client.runPayload({ path: "tasks", callable: "report", args: [7] })
      yield* client.schedule({ payload, interval: Duration.seconds(10), headers: { runCount: 4 } })
      // t=0: the haste run, stored with 3 runs left and the next due at t=10s.
      yield* eventually("the haste run", Effect.sync(() => runs.length), (n) => n === 1)
      yield* eventually("the job on disk", Effect.sync(() => onDisk(path)), (jobs) => jobs[0]?.runsLeft === 3)
      assert.strictEqual(onDisk(path)[0]!.nextRunAt, 10_000)
      assert.strictEqual(onDisk(path)[0]!.payload, JSON.stringify(payload))
      yield* TestClock.adjust(Duration.seconds(10))
      yield* eventually("the run at t=10s", Effect.sync(() => runs.length), (n) => n === 2)
      yield* eventually("runs left on disk", Effect.sync(() => onDisk(path)), (jobs) => jobs[0]?.runsLeft === 2)
      assert.strictEqual(onDisk(path)[0]!.nextRunAt, 20_000)

      yield* first.stop
      // Down from t=10s to t=35s: the runs due at 20s and 30s are missed.
      yield* TestClock.adjust(Duration.seconds(25))
      const second = yield* startScheduler(path)
      yield* quiet
      assert.strictEqual(runs.length, 2, "nothing runs at start-up")
      const [resumed] = yield* second.scheduler.jobs
      assert.deepStrictEqual([resumed?.runsLeft, resumed?.nextRunAt], [2, 40_000])

      yield* TestClock.adjust(Duration.millis(4_999))
      yield* quiet
      assert.strictEqual(runs.length, 2, "not before t=40s")
      yield* TestClock.adjust(Duration.millis(1))
      yield* eventually("the run at t=40s", Effect.sync(() => runs.length), (n) => n === 3)
      yield* eventually("one run left on disk", Effect.sync(() => onDisk(path)), (jobs) => jobs[0]?.runsLeft === 1)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* eventually("the last run at t=50s", Effect.sync(() => runs.length), (n) => n === 4)
      yield* eventually("the finished job leaves the file", Effect.sync(() => onDisk(path)), (jobs) => jobs.length === 0)
      assert.lengthOf(yield* second.scheduler.jobs, 0)
      assert.deepStrictEqual(runs, [payload, payload, payload, payload])
      assert.strictEqual(yield* second.scheduler.storeFailures, 0)
    }))

  scoped("a job that runs forever keeps its phase and is not rewritten per run; a cron job follows its expression", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir, "schedule.json")
      const { client, runs, startScheduler } = yield* system
      const first = yield* startScheduler(path)
      yield* TestClock.adjust(Duration.seconds(3))
      const every = Client.runPayload({ path: "tasks", callable: "every" })
      const cron = Client.runPayload({ path: "tasks", callable: "cron" })
      yield* client.schedule({ payload: every, interval: Duration.seconds(7), headers: { nohaste: true } })
      yield* client.schedule({ payload: cron, cron: "*/20 * * * * *", headers: { nohaste: true } })
      yield* eventually("both jobs on disk", Effect.sync(() => onDisk(path)), (jobs) => jobs.length === 2)
      const written = Fs.statSync(path).mtimeMs
      const document = Fs.readFileSync(path, "utf8")
      // Runs at t=10s and 17s (interval) and t=20s (cron), then stop at t=21s.
      yield* TestClock.adjust(Duration.seconds(7))
      yield* eventually("the interval run", Effect.sync(() => runs.length), (n) => n === 1)
      yield* TestClock.adjust(Duration.seconds(11))
      yield* eventually("the interval and cron runs", Effect.sync(() => runs.length), (n) => n === 3)
      assert.strictEqual(Fs.readFileSync(path, "utf8"), document, "runs of endless jobs leave the file alone")
      assert.strictEqual(Fs.statSync(path).mtimeMs, written)
      yield* first.stop

      // Back at t=50s: the interval grid is 3 + 7k s (next 52s), the cron's next slot is 60s.
      yield* TestClock.adjust(Duration.seconds(29))
      const second = yield* startScheduler(path)
      const next = new Map((yield* second.scheduler.jobs).map((job) => [job.payload, job.nextRunAt]))
      assert.strictEqual(next.get(JSON.stringify(every)), 52_000)
      assert.strictEqual(next.get(JSON.stringify(cron)), 60_000)
      yield* quiet
      assert.strictEqual(runs.length, 3)
      yield* TestClock.adjust(Duration.seconds(2))
      yield* eventually("the interval job at t=52s", Effect.sync(() => runs.length), (n) => n === 4)
      yield* TestClock.adjust(Duration.seconds(7))
      yield* eventually("the interval job at t=59s", Effect.sync(() => runs.length), (n) => n === 5)
      yield* TestClock.adjust(Duration.seconds(1))
      yield* eventually("the cron job at t=60s", Effect.sync(() => runs.length), (n) => n === 6)
      assert.deepStrictEqual(runs, [every, every, cron, every, every, cron])
    }))

  scoped("UNSCHEDULE removes the job from the file, and a restart does not bring it back", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir, "schedule.json")
      const { client, runs, startScheduler } = yield* system
      const first = yield* startScheduler(path)
      const keep = Client.runPayload({ path: "tasks", callable: "keep" })
      const drop = Client.runPayload({ path: "tasks", callable: "drop" })
      yield* client.schedule({ payload: keep, interval: Duration.seconds(5), headers: { nohaste: true } })
      yield* client.schedule({ payload: drop, interval: Duration.seconds(5), headers: { nohaste: true } })
      yield* eventually("both jobs on disk", Effect.sync(() => onDisk(path)), (jobs) => jobs.length === 2)
      yield* client.unschedule(drop)
      yield* eventually("one job on disk", Effect.sync(() => onDisk(path)), (jobs) => jobs.length === 1)
      assert.strictEqual(onDisk(path)[0]!.key, Scheduler.jobKey(JSON.stringify(keep)))
      yield* first.stop
      const second = yield* startScheduler(path)
      assert.deepStrictEqual((yield* second.scheduler.jobs).map((job) => job.payload), [JSON.stringify(keep)])
      yield* TestClock.adjust(Duration.seconds(5))
      yield* eventually("the kept job runs", Effect.sync(() => runs.length), (n) => n === 1)
      yield* quiet
      assert.deepStrictEqual(runs, [keep])
    }))

  scoped("a corrupt file fails start-up with the typed error; a store that cannot write is counted, jobs still run", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const { client, runs, startScheduler } = yield* system
      const corrupt = Path.join(dir, "corrupt.json")
      Fs.writeFileSync(corrupt, "{\"format\": \"effect-wire/emqp-schedule\", \"version\": 1, \"jobs\": [")
      const error = yield* Effect.flip(startScheduler(corrupt))
      assert.strictEqual(error instanceof ScheduleStore.ScheduleStoreError ? error.reason : error.message, "Corrupt")

      const tooMany = Path.join(dir, "two.json")
      const twoJobs = yield* Effect.provide(ScheduleStore.file({ path: tooMany }), NodeFileSystem.layer)
      for (const n of [1, 2]) {
        yield* twoJobs.save({
          key: `k${n}`,
          queue: "default",
          payload: "{}",
          interval: 5,
          cron: undefined,
          runsLeft: undefined,
          nextRunAt: 0
        })
      }
      const limit = yield* Effect.flip(startScheduler(tooMany, { maxJobs: 1 }))
      assert.strictEqual(limit instanceof ScheduleStore.ScheduleStoreError ? limit.reason : limit.message, "TooManyJobs")

      // Its directory does not exist: every write fails.
      const { scheduler } = yield* startScheduler(Path.join(dir, "missing", "schedule.json"))
      yield* client.schedule({ payload: { n: 1 }, interval: Duration.seconds(5), headers: { runCount: 2 } })
      yield* eventually("the haste run", Effect.sync(() => runs.length), (n) => n === 1)
      yield* eventually("failures counted", scheduler.storeFailures, (n) => n === 2)
      yield* TestClock.adjust(Duration.seconds(5))
      yield* eventually("the second run", Effect.sync(() => runs.length), (n) => n === 2)
      yield* eventually("the removal's failure counted", scheduler.storeFailures, (n) => n === 3)
      assert.lengthOf(yield* scheduler.jobs, 0)
    }))

  scoped("a stored run that falls due while the broker is away is sent once, when the broker is back", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir, "schedule.json")
      const store = yield* Effect.provide(ScheduleStore.file({ path }), NodeFileSystem.layer)
      const payload = JSON.stringify(Client.runPayload({ path: "tasks", callable: "late" }))
      yield* store.save({
        key: Scheduler.jobKey(payload),
        queue: "default",
        payload,
        interval: 10,
        cron: undefined,
        runsLeft: 5,
        nextRunAt: 5_000
      })
      const n = ++counter
      const frontend = `memory://emqp-scheduler-store-${n}-frontend`
      const backend = `memory://emqp-scheduler-store-${n}-backend`
      const scheduler = yield* Scheduler.makeWith(Socket.dealer(frontend), { store })
      // Due at t=5s; the broker starts at t=12s.
      yield* TestClock.adjust(Duration.seconds(12))
      yield* quiet
      const runs: Array<unknown> = []
      yield* Broker.makeWith({ frontend: Socket.router(frontend), backend: Socket.router(backend) })
      yield* Worker.makeWith(Socket.dealer(backend), (job) => Effect.sync(() => runs.push(job.payload)))
      for (let i = 0; i < 20 && Option.isNone(yield* scheduler.identity); i++) {
        yield* TestClock.adjust(Duration.seconds(1))
        yield* quiet
      }
      assert.isTrue(Option.isSome(yield* scheduler.identity), "the scheduler reconnected")
      yield* eventually("the late run", Effect.sync(() => runs.length), (k) => k === 1)
      const [job] = yield* scheduler.jobs
      assert.strictEqual(job?.runsLeft, 4)
      assert.strictEqual((job?.nextRunAt ?? 0) % 10_000, 5_000, "the grid is kept")
      yield* quiet
      assert.strictEqual(runs.length, 1, "one late run, not one per missed slot")
    }))

  scoped("layerWithStore: schedulers built on one ScheduleStore service hand their jobs over", () =>
    Effect.gen(function*() {
      const { client, runs } = yield* system
      const frontend = `memory://emqp-scheduler-store-${counter}-frontend`
      const store = yield* ScheduleStore.memory
      const build = Effect.gen(function*() {
        const scope = yield* Scope.make()
        const context = yield* Layer.buildWithScope(
          Scheduler.layerWithStore({ address: frontend }).pipe(
            Layer.provide(Layer.succeed(ScheduleStore.ScheduleStore, store))
          ),
          scope
        )
        const scheduler = yield* Scheduler.Scheduler.pipe(Effect.provide(context))
        yield* eventually("the scheduler is registered", scheduler.identity, Option.isSome)
        return { scheduler, stop: Scope.close(scope, Exit.void) }
      })
      const first = yield* build
      const payload = Client.runPayload({ path: "tasks", callable: "handover" })
      yield* client.schedule({ payload, interval: Duration.seconds(10), headers: { nohaste: true, runCount: 2 } })
      yield* eventually("the job is stored", store.load, (jobs) => jobs.length === 1)
      yield* first.stop
      const second = yield* build
      assert.lengthOf(yield* second.scheduler.jobs, 1)
      yield* TestClock.adjust(Duration.seconds(10))
      yield* eventually("the run at t=10s", Effect.sync(() => runs.length), (n) => n === 1)
      yield* eventually("one run left", store.load, (jobs) => jobs[0]?.runsLeft === 1)
    }))
})
