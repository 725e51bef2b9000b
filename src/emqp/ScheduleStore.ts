/**
 * Where a scheduler keeps its jobs, so that schedules survive a restart.
 *
 * `memory` holds them for the life of the store (a scheduler's default: a restart forgets every schedule);
 * `file` keeps them in one JSON document, replaced atomically on every change (written to `<path>.tmp`,
 * fsynced, renamed over `<path>`, directory fsynced). Changes that arrive while a write is under way are
 * written together by the next one, and each caller returns once a write holding its change is on disk.
 *
 * The reference (EventMQ 0.3.13) persists to Redis but, through a bug, never restores at start-up.
 *
 * @example
 * ```ts
 * import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
 * import * as Effect from "effect/Effect"
 * import { ScheduleStore, Scheduler } from "effect-wire/emqp"
 *
 * const program = Effect.gen(function*() {
 *   const store = yield* ScheduleStore.file({ path: "/var/lib/emqp/schedule.json" })
 *   yield* Scheduler.make({ address: "tcp://127.0.0.1:47291", store })
 *   yield* Effect.never
 * }).pipe(Effect.scoped, Effect.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.1.0
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "node:path"
import * as Context from "effect/Context"
import * as Cron from "effect/Cron"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"

/**
 * Why a schedule store failed.
 *
 * - `Unreadable`: the file exists but cannot be read.
 * - `Corrupt`: the file is not a schedule document (not JSON, a wrong shape, an invalid job, a duplicate key).
 * - `TooManyJobs`: the document holds more jobs than the store or scheduler may hold (`maxJobs`).
 * - `Unwritable`: writing, syncing or renaming the new document failed; the previous document is intact.
 *
 * @since 0.1.0
 * @category models
 */
export type ScheduleStoreErrorReason = "Unreadable" | "Corrupt" | "TooManyJobs" | "Unwritable"

/**
 * @since 0.1.0
 * @category errors
 */
export class ScheduleStoreError extends Data.TaggedError("ScheduleStoreError")<{
  readonly reason: ScheduleStoreErrorReason
  /** The store's file, for the file store. */
  readonly path?: string | undefined
  readonly detail?: string | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    const parts: Array<string> = [this.reason]
    if (this.path !== undefined) parts.push(`path=${this.path}`)
    if (this.detail !== undefined) parts.push(this.detail)
    return parts.join(" ")
  }
}

/** `A | undefined` in memory, `A | null` in JSON. */
const orNull = <A, I>(schema: Schema.Schema<A, I>) =>
  Schema.transform(Schema.NullOr(schema), Schema.UndefinedOr(Schema.typeSchema(schema)), {
    strict: true,
    decode: (value) => value ?? undefined,
    encode: (value) => value ?? null
  })

const CronExpression = Schema.String.pipe(
  Schema.filter((text) => Either.isRight(Cron.parse(text)) || `invalid cron expression ${JSON.stringify(text)}`)
)

/**
 * A scheduled job as stored: exactly one of `interval` and `cron` is set.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Job = Schema.Struct({
  /** The job key (`Scheduler.jobKey` of the payload). */
  key: Schema.NonEmptyString,
  /** The queue its REQUESTs go to. */
  queue: Schema.String,
  /** The REQUEST payload (JSON text). */
  payload: Schema.String,
  /** Seconds between runs, or `undefined` for a cron job. */
  interval: orNull(Schema.NonNegative.pipe(Schema.finite())),
  cron: orNull(CronExpression),
  /** Runs left; `undefined` = forever. */
  runsLeft: orNull(Schema.Int.pipe(Schema.positive())),
  /**
   * When the next run is due, in milliseconds since the epoch. For an interval job this anchors its grid of
   * runs (`nextRunAt + k × interval`); a cron job's next run comes from its expression.
   */
  nextRunAt: Schema.Number.pipe(Schema.finite())
}).pipe(
  Schema.filter((job) =>
    (job.interval === undefined) !== (job.cron === undefined) || "a job has exactly one of interval and cron"
  )
)

/**
 * @since 0.1.0
 * @category models
 */
export interface Job extends Schema.Schema.Type<typeof Job> {}

/**
 * The file store's document.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Document = Schema.Struct({
  format: Schema.Literal("effect-wire/emqp-schedule"),
  version: Schema.Literal(1),
  jobs: Schema.Array(Job)
})

/**
 * @since 0.1.0
 * @category models
 */
export interface ScheduleStoreService {
  /** Every stored job. */
  readonly load: Effect.Effect<ReadonlyArray<Job>, ScheduleStoreError>
  /** Adds or replaces the job with the same key; done when the change is durable. */
  readonly save: (job: Job) => Effect.Effect<void, ScheduleStoreError>
  /** Forgets the job with this key, if there is one; done when the change is durable. */
  readonly remove: (key: string) => Effect.Effect<void, ScheduleStoreError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class ScheduleStore extends Context.Tag("effect-wire/emqp/ScheduleStore")<ScheduleStore, ScheduleStoreService>() {}

/**
 * A store in memory: jobs live as long as the store (a scheduler made without a store gets a fresh one, so a
 * restart forgets every schedule, as the reference does).
 *
 * @since 0.1.0
 * @category constructors
 */
export const memory: Effect.Effect<ScheduleStoreService> = Effect.sync(() => {
  const jobs = new Map<string, Job>()
  return ScheduleStore.of({
    load: Effect.sync(() => [...jobs.values()]),
    save: (job) =>
      Effect.sync(() => {
        jobs.set(job.key, job)
      }),
    remove: (key) =>
      Effect.sync(() => {
        jobs.delete(key)
      })
  })
})

/**
 * @since 0.1.0
 * @category models
 */
export interface FileOptions {
  /** The document's path. Its directory must exist; the file is created on the first change. */
  readonly path: string
  /** Jobs the document may hold; a longer document fails `load` with `TooManyJobs`. Default: 10000. */
  readonly maxJobs?: number | undefined
}

const decodeDocument = Schema.decodeUnknownEither(Schema.parseJson(Document))
const encodeDocument = Schema.encodeSync(Schema.parseJson(Document, { space: 2 }))
const utf8 = new TextEncoder()

/**
 * A store in one JSON document (see the module's description). The file is read once, by `load`; a missing
 * file is an empty schedule, an unreadable or corrupt one a `ScheduleStoreError`. Only one process should use
 * a file at a time.
 *
 * @since 0.1.0
 * @category constructors
 */
export const file = (options: FileOptions): Effect.Effect<ScheduleStoreService, never, FileSystem.FileSystem> =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const path = options.path
    const maxJobs = options.maxJobs ?? 10_000
    const temp = `${path}.tmp`
    const directory = Path.dirname(path)
    const jobs = new Map<string, Job>()
    const lock = yield* Effect.makeSemaphore(1)
    // `changes` counts changes to `jobs`; `written` is the count the file on disk reflects.
    let changes = 0
    let written = 0

    const fail = (reason: ScheduleStoreErrorReason, detail: string, cause?: unknown) =>
      new ScheduleStoreError({ reason, path, detail, cause })

    const load = Effect.gen(function*() {
      const exists = yield* Effect.mapError(fs.exists(path), (cause) => fail("Unreadable", cause.message, cause))
      if (!exists) {
        jobs.clear()
        return []
      }
      const text = yield* Effect.mapError(fs.readFileString(path), (cause) => fail("Unreadable", cause.message, cause))
      const decoded = decodeDocument(text)
      if (Either.isLeft(decoded)) return yield* fail("Corrupt", decoded.left.message, decoded.left)
      const stored = decoded.right.jobs
      if (stored.length > maxJobs) {
        return yield* fail("TooManyJobs", `${stored.length} jobs stored, at most ${maxJobs} allowed`)
      }
      const keys = new Set<string>()
      for (const job of stored) {
        if (keys.has(job.key)) return yield* fail("Corrupt", `job ${job.key} is stored twice`)
        keys.add(job.key)
      }
      jobs.clear()
      for (const job of stored) jobs.set(job.key, job)
      return stored
    })

    const writeDocument = (contents: Uint8Array) =>
      Effect.gen(function*() {
        yield* Effect.scoped(Effect.flatMap(
          fs.open(temp, { flag: "w", mode: 0o600 }),
          (handle) => Effect.zipRight(handle.writeAll(contents), handle.sync)
        ))
        yield* fs.rename(temp, path)
        // The rename is durable once the directory is synced; platforms that cannot open a directory skip it.
        yield* Effect.ignore(Effect.scoped(Effect.flatMap(fs.open(directory, { flag: "r" }), (dir) => dir.sync)))
      }).pipe(
        Effect.tapError(() => Effect.ignore(fs.remove(temp))),
        Effect.mapError((cause) => fail("Unwritable", cause.message, cause))
      )

    /** Returns once the file reflects change number `target` (a later write may have covered it already). */
    const flush = (target: number) =>
      lock.withPermits(1)(Effect.suspend(() => {
        if (written >= target) return Effect.void
        const covering = changes
        const contents = utf8.encode(encodeDocument({
          format: "effect-wire/emqp-schedule",
          version: 1,
          jobs: [...jobs.values()]
        }) + "\n")
        return Effect.map(writeDocument(contents), () => {
          written = Math.max(written, covering)
        })
      }))

    return ScheduleStore.of({
      load: lock.withPermits(1)(load),
      save: (job) =>
        Effect.suspend(() => {
          jobs.set(job.key, job)
          return flush(++changes)
        }),
      remove: (key) =>
        Effect.suspend(() => {
          if (!jobs.delete(key) && written >= changes) return Effect.void
          return flush(++changes)
        })
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<ScheduleStore> = Layer.effect(ScheduleStore, memory)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerFile = (options: FileOptions): Layer.Layer<ScheduleStore, never, FileSystem.FileSystem> =>
  Layer.effect(ScheduleStore, file(options))
