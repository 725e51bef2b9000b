import * as FileSystem from "@effect/platform/FileSystem"
import * as PlatformError from "@effect/platform/Error"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as ScheduleStore from "../../src/emqp/ScheduleStore.js"

/** A fresh directory, removed when the test's scope closes. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "emqp-store-"))),
  (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
)

const job = (n: number, overrides: Partial<ScheduleStore.Job> = {}): ScheduleStore.Job => ({
  key: `key-${n}`,
  queue: "default",
  payload: JSON.stringify(["run", { callable: "tick", path: "tasks", args: [n] }]),
  interval: 60,
  cron: undefined,
  runsLeft: undefined,
  nextRunAt: 1_700_000_000_000 + n,
  ...overrides
})

const fileStore = (path: string, maxJobs?: number) =>
  Effect.provide(ScheduleStore.file({ path, maxJobs }), NodeFileSystem.layer)

const loadError = (path: string, maxJobs?: number) =>
  Effect.flip(Effect.flatMap(fileStore(path, maxJobs), (store) => store.load))

const document = (jobs: ReadonlyArray<unknown>) =>
  JSON.stringify({ format: "effect-wire/emqp-schedule", version: 1, jobs })

/** The stored form of `job(n)`. */
const stored = (n: number) => ({ ...job(n), cron: null, runsLeft: null })

const arbitraryJob: FastCheck.Arbitrary<ScheduleStore.Job> = FastCheck.record({
  key: FastCheck.hexaString({ minLength: 1, maxLength: 40 }),
  queue: FastCheck.fullUnicodeString({ maxLength: 20 }),
  payload: FastCheck.fullUnicodeString({ maxLength: 200 }),
  timing: FastCheck.oneof(
    FastCheck.integer({ min: 0, max: 31_536_000 }).map((interval) => ({ interval, cron: undefined })),
    FastCheck.constantFrom("* * * * *", "*/5 * * * * *", "0 9 * * 1-5", "30 2 1 * *")
      .map((cron) => ({ interval: undefined, cron }))
  ),
  runsLeft: FastCheck.option(FastCheck.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
  nextRunAt: FastCheck.integer({ min: 0, max: 2 ** 47 })
}).map(({ timing, ...job }) => ({ ...job, ...timing }))

describe("ScheduleStore", () => {
  it.effect.prop(
    "file: any set of jobs saved is loaded back unchanged by a new store",
    [FastCheck.uniqueArray(arbitraryJob, { selector: (job) => job.key, maxLength: 12 })],
    ([jobs]) =>
      Effect.scoped(Effect.gen(function*() {
        const path = Path.join(yield* tempDir, "schedule.json")
        const store = yield* fileStore(path)
        yield* Effect.forEach(jobs, store.save, { concurrency: "unbounded" })
        const loaded = yield* Effect.flatMap(fileStore(path), (s) => s.load)
        const byKey = (list: ReadonlyArray<ScheduleStore.Job>) => [...list].sort((a, b) => a.key < b.key ? -1 : 1)
        assert.deepStrictEqual(byKey(loaded), byKey(jobs))
      })),
    { fastCheck: { numRuns: 40 } }
  )

  it.effect("memory: save replaces by key, remove forgets, load lists", () =>
    Effect.gen(function*() {
      const store = yield* ScheduleStore.memory
      yield* store.save(job(1))
      yield* store.save(job(2))
      yield* store.save(job(1, { runsLeft: 4 }))
      yield* store.remove("key-2")
      yield* store.remove("unknown")
      assert.deepStrictEqual(yield* store.load, [job(1, { runsLeft: 4 })])
    }))

  it.scoped("file: a missing file is an empty schedule; what one store saves, the next one loads", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir, "schedule.json")
      const first = yield* fileStore(path)
      assert.deepStrictEqual(yield* first.load, [])
      assert.isFalse(Fs.existsSync(path), "loading creates nothing")
      const cronJob = job(2, { interval: undefined, cron: "*/5 * * * *", runsLeft: 3 })
      yield* first.save(job(1))
      yield* first.save(cronJob)
      yield* first.save(job(3))
      yield* first.remove("key-3")
      const onDisk = JSON.parse(Fs.readFileSync(path, "utf8"))
      assert.deepStrictEqual(onDisk, {
        format: "effect-wire/emqp-schedule",
        version: 1,
        jobs: [stored(1), { ...cronJob, interval: null }]
      })
      const second = yield* fileStore(path)
      assert.deepStrictEqual(yield* second.load, [job(1), cronJob])
    }))

  it.scoped("file: writes are atomic and leave no temporary file behind", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "schedule.json")
      const store = yield* fileStore(path)
      yield* store.save(job(1))
      yield* store.save(job(2))
      assert.deepStrictEqual(Fs.readdirSync(dir), ["schedule.json"])
      assert.strictEqual(Fs.statSync(path).mode & 0o777, 0o600)
    }))

  it.scoped("file: a failed write is a typed error, keeps the previous document and removes its temporary file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "schedule.json")
      const node = yield* Effect.provide(FileSystem.FileSystem, NodeFileSystem.layer)
      let failRename = false
      const flaky = FileSystem.FileSystem.of({
        ...node,
        rename: (from, to) =>
          failRename
            ? Effect.fail(
              new PlatformError.SystemError({ reason: "PermissionDenied", module: "FileSystem", method: "rename" })
            )
            : node.rename(from, to)
      })
      const store = yield* Effect.provideService(ScheduleStore.file({ path }), FileSystem.FileSystem, flaky)
      yield* store.save(job(1))
      const before = Fs.readFileSync(path, "utf8")
      failRename = true
      const error = yield* Effect.flip(store.save(job(2)))
      assert.strictEqual(error._tag, "ScheduleStoreError")
      assert.strictEqual(error.reason, "Unwritable")
      assert.strictEqual(error.path, path)
      assert.strictEqual(Fs.readFileSync(path, "utf8"), before)
      assert.deepStrictEqual(Fs.readdirSync(dir), ["schedule.json"])
      // The next successful write carries the change that failed.
      failRename = false
      yield* store.save(job(3))
      const reloaded = yield* Effect.flatMap(fileStore(path), (s) => s.load)
      assert.deepStrictEqual(reloaded.map((j) => j.key), ["key-1", "key-2", "key-3"])
    }))

  it.scoped("file: concurrent changes share writes, and each caller returns once its change is on disk", () =>
    Effect.gen(function*() {
      const path = Path.join(yield* tempDir, "schedule.json")
      const node = yield* Effect.provide(FileSystem.FileSystem, NodeFileSystem.layer)
      let writes = 0
      const counting = FileSystem.FileSystem.of({
        ...node,
        rename: (from, to) => Effect.zipRight(Effect.sync(() => writes++), node.rename(from, to))
      })
      const store = yield* Effect.provideService(ScheduleStore.file({ path }), FileSystem.FileSystem, counting)
      yield* Effect.forEach(Array.from({ length: 200 }, (_, n) => n), (n) =>
        Effect.flatMap(store.save(job(n)), () =>
          Effect.sync(() => {
            const keys = new Set(JSON.parse(Fs.readFileSync(path, "utf8")).jobs.map((j: { key: string }) => j.key))
            assert.isTrue(keys.has(`key-${n}`), `key-${n} is on disk when its save returns`)
          })), { concurrency: "unbounded" })
      assert.isAtMost(writes, 10, `${writes} writes for 200 saves`)
      const reloaded = yield* Effect.flatMap(fileStore(path), (s) => s.load)
      assert.strictEqual(reloaded.length, 200)
    }))

  it.scoped("file: a corrupt, invalid, oversized or unreadable document fails load with the typed error", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const path = Path.join(dir, "schedule.json")
      const cases: ReadonlyArray<readonly [string, string, ScheduleStore.ScheduleStoreErrorReason]> = [
        ["truncated JSON", document([stored(1)]).slice(0, 40), "Corrupt"],
        ["another format", JSON.stringify({ format: "other", version: 1, jobs: [] }), "Corrupt"],
        ["a job with interval and cron", document([{ ...stored(1), cron: "* * * * *" }]), "Corrupt"],
        ["a job with neither", document([{ ...stored(1), interval: null }]), "Corrupt"],
        ["an invalid cron expression", document([{ ...stored(1), interval: null, cron: "every tuesday" }]), "Corrupt"],
        ["a key stored twice", document([stored(1), stored(1)]), "Corrupt"],
        ["runsLeft zero", document([{ ...stored(1), runsLeft: 0 }]), "Corrupt"],
        ["three jobs for two places", document([stored(1), stored(2), stored(3)]), "TooManyJobs"]
      ]
      for (const [what, text, reason] of cases) {
        Fs.writeFileSync(path, text)
        const error = yield* loadError(path, 2)
        assert.strictEqual(error.reason, reason, what)
        assert.strictEqual(error.path, path, what)
      }
      const error = yield* loadError(dir)
      assert.strictEqual(error.reason, "Unreadable", "a directory")
    }))
})
