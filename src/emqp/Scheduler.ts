/**
 * An eMQP scheduler: registers on the broker's frontend (`INFORM … scheduler`), receives the SCHEDULE and
 * UNSCHEDULE commands clients send, and emits `REQUEST [queue, "reply-requested", payload]` when a job is due.
 *
 * Jobs are keyed like the reference's: for a reference payload (`["run", {callable, path, args, …}]`) the key
 * is the SHA-1 of Python's `json.dumps` of those six fields with sorted keys, so scheduling the same call twice
 * updates one job and UNSCHEDULE finds it whatever its interval; other payloads are keyed by their text.
 * Headers: `nohaste` (no run at schedule time) and `run_count:N` (N runs in all, the first one included).
 * Unlike the reference, cron jobs run in their own queue (the reference sends them to `default`).
 *
 * Jobs are kept in a `ScheduleStore`: in memory by default (a restart forgets them), or in a file
 * (`ScheduleStore.file`), from which a new scheduler resumes them where the old one stopped.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Cron from "effect/Cron"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberMap from "effect/FiberMap"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ioScheduler } from "../internal/ioScheduler.js"
import * as Command from "./Command.js"
import * as Headers from "./Headers.js"
import * as PyJson from "./internal/pyjson.js"
import * as ScheduleStore from "./ScheduleStore.js"
import * as Session from "./internal/session.js"
import * as Socket from "./Socket.js"

/**
 * A job the scheduler holds (`ScheduleStore.Job`): exactly one of `interval` and `cron` is set; `runsLeft` is
 * `undefined` for a job that runs forever; `nextRunAt` is when its next run is due (ms since the epoch).
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduledJob extends ScheduleStore.Job {}

/**
 * @since 0.1.0
 * @category models
 */
export interface SchedulerOptions {
  /** Jobs held at most; further SCHEDULEs are refused (logged), a longer stored schedule fails start-up. Default: 10000. */
  readonly maxJobs?: number | undefined
  /**
   * Where jobs are kept (`ScheduleStore.file` to survive restarts). Default: a fresh `ScheduleStore.memory`,
   * so a restart forgets every schedule.
   */
  readonly store?: ScheduleStore.ScheduleStoreService | undefined
  /** Default: 3 seconds. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** Default: 5 seconds. */
  readonly heartbeatTimeout?: Duration.DurationInput | undefined
  /** Default: 3. */
  readonly liveness?: number | undefined
  /** Default: 5 seconds. */
  readonly ackTimeout?: Duration.DurationInput | undefined
  /** Default: 1 second. */
  readonly reconnectDelay?: Duration.DurationInput | undefined
  /** The layout of the commands this side sends (`Command.Profile`). Default: `"reference"` (EventMQ 0.3.13). */
  readonly profile?: Command.Profile | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SchedulerService {
  readonly jobs: Effect.Effect<ReadonlyArray<ScheduledJob>>
  /** The identity of the current connection, if the broker has ACKed it. */
  readonly identity: Effect.Effect<Option.Option<string>>
  /** Store operations that failed since start (each is logged; the scheduler carries on with its jobs in memory). */
  readonly storeFailures: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Scheduler extends Context.Tag("effect-wire/emqp/Scheduler")<Scheduler, SchedulerService>() {}

const RunPayload = Schema.parseJson(Schema.Tuple(
  Schema.Literal("run"),
  Schema.Struct({
    callable: Schema.Unknown,
    path: Schema.Unknown,
    args: Schema.Unknown,
    kwargs: Schema.Unknown,
    class_args: Schema.Unknown,
    class_kwargs: Schema.Unknown
  })
))

/**
 * The key of a scheduled job, as the reference computes it.
 *
 * @since 0.1.0
 * @category keys
 */
export const jobKey = (payload: string): string => {
  const parsed = Schema.decodeUnknownEither(RunPayload)(payload)
  const text = Either.isRight(parsed)
    ? PyJson.dumps({
      args: parsed.right[1].args,
      kwargs: parsed.right[1].kwargs,
      class_args: parsed.right[1].class_args,
      class_kwargs: parsed.right[1].class_kwargs,
      path: parsed.right[1].path,
      callable: parsed.right[1].callable
    }, true)
    : payload
  return createHash("sha1").update(text, "utf8").digest("hex")
}

const storeFailuresTotal = Metric.counter("emqp_scheduler_store_failures", {
  description: "schedule store operations that failed",
  incremental: true
})

/** The first run on an interval job's grid (`anchor + k × interval`) that is not before `now`. */
const onGrid = (anchor: number, intervalMillis: number, now: number): number =>
  anchor >= now ? anchor : intervalMillis <= 0 ? now : anchor + Math.ceil((now - anchor) / intervalMillis) * intervalMillis

const nextCron = (cron: Cron.Cron, after: number): number => Cron.next(cron, after).getTime()

/**
 * Runs a scheduler connected with `connect` until the scope closes.
 *
 * At start it loads `options.store` and resumes every stored job: an interval job keeps its grid of runs (the
 * first one not earlier than now), a cron job follows its expression from now; runs that fell due while no
 * scheduler was running are skipped, and runs left are kept. A SCHEDULE or UNSCHEDULE is stored before the job
 * starts or stops (eMQP acknowledges neither), and a run that counts down `run_count` is stored before its
 * REQUEST is sent, as the reference does with Redis. A store that fails is logged and counted (`storeFailures`,
 * metric `emqp_scheduler_store_failures`) and the scheduler carries on; one that cannot be loaded fails start-up.
 * A run that falls due while the broker is away is sent once it is back.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  connect: Socket.Connect,
  options: SchedulerOptions = {}
): Effect.Effect<SchedulerService, ScheduleStore.ScheduleStoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const maxJobs = options.maxJobs ?? 10_000
    const store = options.store ?? (yield* ScheduleStore.memory)
    const jobs = new Map<string, ScheduledJob>()
    const fibers = yield* FiberMap.make<string>()
    const connected = yield* Effect.makeLatch(false)
    let current: Session.Connection | undefined
    let storeFailures = 0

    const persist = (what: string, effect: Effect.Effect<void, ScheduleStore.ScheduleStoreError>) =>
      Effect.catchAll(effect, (error) =>
        Effect.zipRight(
          Effect.zipRight(
            Effect.sync(() => {
              storeFailures++
            }),
            Metric.increment(storeFailuresTotal)
          ),
          Effect.logError(`could not store ${what}: ${error.message}`)
        ))

    const emit = (job: ScheduledJob) => {
      const connection = current
      if (!connection) return Effect.logWarning(`job ${job.key} is due but the broker is not connected; run skipped`)
      return connection.send(Command.Request.make({
        msgid: Command.unsafeMessageId(),
        queue: job.queue,
        headers: Headers.make({ replyRequested: true }),
        payload: job.payload
      }, true)).pipe(Effect.catchAll((error) => Effect.logWarning(`could not send job ${job.key}: ${error.message}`)))
    }

    /** One run: counts down (stored first when `runsLeft` changes), emits, and says whether more runs are due. */
    const runOnce = (key: string, cron: Cron.Cron | undefined) =>
      Effect.gen(function*() {
        const job = jobs.get(key)
        if (!job) return false
        const now = yield* Clock.currentTimeMillis
        const runsLeft = job.runsLeft === undefined ? undefined : job.runsLeft - 1
        const more = runsLeft === undefined || runsLeft > 0
        if (more) {
          const nextRunAt = cron === undefined
            ? onGrid(job.nextRunAt + (job.interval ?? 0) * 1000, (job.interval ?? 0) * 1000, now)
            : nextCron(cron, Math.max(now, job.nextRunAt))
          const next: ScheduledJob = { ...job, runsLeft, nextRunAt }
          jobs.set(key, next)
          // A job that runs forever keeps its grid: nothing to store.
          if (runsLeft !== undefined) yield* Effect.uninterruptible(persist(`job ${key}`, store.save(next)))
        } else {
          jobs.delete(key)
          yield* Effect.uninterruptible(persist(`the end of job ${key}`, store.remove(key)))
        }
        yield* emit(job)
        return more
      })

    const loop = (key: string, cron: Cron.Cron | undefined): Effect.Effect<void> =>
      Effect.gen(function*() {
        while (true) {
          const job = jobs.get(key)
          if (!job) return
          const now = yield* Clock.currentTimeMillis
          if (job.nextRunAt > now) yield* Effect.sleep(Duration.millis(job.nextRunAt - now))
          yield* connected.await
          if (!(yield* runOnce(key, cron))) return
        }
      })

    const parseCron = (expression: string) => Either.getRight(Cron.parse(expression))

    const onSchedule = (command: Command.Schedule) =>
      Effect.gen(function*() {
        const key = jobKey(command.payload)
        if (!jobs.has(key) && jobs.size >= maxJobs) {
          return yield* Effect.logWarning(`refused SCHEDULE ${command.msgid}: ${maxJobs} jobs held already`)
        }
        let cron: Cron.Cron | undefined
        if (command.interval < 0) {
          const parsed = parseCron(command.cron)
          if (Option.isNone(parsed)) {
            return yield* Effect.logWarning(
              `refused SCHEDULE ${command.msgid}: cron ${JSON.stringify(command.cron)} is invalid`
            )
          }
          cron = parsed.value
        }
        const now = yield* Clock.currentTimeMillis
        const interval = command.interval >= 0 ? command.interval : undefined
        const job: ScheduledJob = {
          key,
          queue: command.queue,
          payload: command.payload,
          interval,
          cron: cron === undefined ? undefined : command.cron,
          runsLeft: command.headers.runCount > 0 ? command.headers.runCount : undefined,
          nextRunAt: !command.headers.nohaste
            ? now
            : cron === undefined
            ? now + (interval ?? 0) * 1000
            : nextCron(cron, now)
        }
        // The previous version of this job stops before the new one is stored, so it cannot overwrite it.
        yield* FiberMap.remove(fibers, key)
        jobs.set(key, job)
        yield* persist(`job ${key}`, store.save(job))
        yield* Effect.logInfo(`scheduled job ${key} (${interval !== undefined ? `every ${interval}s` : job.cron})`)
        yield* FiberMap.run(fibers, key, loop(key, cron))
      })

    const onUnschedule = (command: Command.Unschedule) =>
      Effect.gen(function*() {
        const key = jobKey(command.payload)
        jobs.delete(key)
        yield* FiberMap.remove(fibers, key)
        yield* persist(`the removal of job ${key}`, store.remove(key))
        yield* Effect.logInfo(`unscheduled job ${key}`)
      })

    // Resume what the store holds before taking new commands.
    const stored = yield* store.load
    if (stored.length > maxJobs) {
      return yield* new ScheduleStore.ScheduleStoreError({
        reason: "TooManyJobs",
        detail: `${stored.length} jobs stored, this scheduler holds at most ${maxJobs}`
      })
    }
    const startedAt = yield* Clock.currentTimeMillis
    for (const job of stored) {
      const cron = job.cron === undefined ? undefined : parseCron(job.cron)
      if (cron !== undefined && Option.isNone(cron)) {
        return yield* new ScheduleStore.ScheduleStoreError({
          reason: "Corrupt",
          detail: `job ${job.key}: cron ${JSON.stringify(job.cron)} is invalid`
        })
      }
      const expression = cron === undefined ? undefined : cron.value
      jobs.set(job.key, {
        ...job,
        nextRunAt: expression === undefined
          ? onGrid(job.nextRunAt, (job.interval ?? 0) * 1000, startedAt)
          : nextCron(expression, startedAt)
      })
      yield* FiberMap.run(fibers, job.key, loop(job.key, expression))
    }
    if (stored.length > 0) yield* Effect.logInfo(`resumed ${stored.length} stored jobs`)

    yield* Effect.forkScoped(Session.run({
      connect,
      peerType: "scheduler",
      queues: [],
      heartbeatInterval: Duration.decode(options.heartbeatInterval ?? Duration.seconds(3)),
      heartbeatTimeout: Duration.decode(options.heartbeatTimeout ?? Duration.seconds(5)),
      liveness: options.liveness ?? 3,
      ackTimeout: Duration.decode(options.ackTimeout ?? Duration.seconds(5)),
      reconnectDelay: Duration.decode(options.reconnectDelay ?? Duration.seconds(1)),
      profile: options.profile ?? "reference"
    }, {
      onConnected: (connection) =>
        Effect.zipRight(
          Effect.sync(() => {
            current = connection
          }),
          connected.open
        ),
      onDisconnected: (_, reason) =>
        Effect.zipRight(
          Effect.zipRight(
            Effect.sync(() => {
              current = undefined
            }),
            connected.close
          ),
          Effect.logWarning(`disconnected from the broker: ${reason}`)
        ),
      onCommand: (_, command) =>
        command._tag === "Schedule"
          ? onSchedule(command)
          : command._tag === "Unschedule"
          ? onUnschedule(command)
          : Effect.void
    }))

    // Say goodbye on the way out, as the reference does on SIGTERM.
    yield* Effect.addFinalizer(() => {
      const connection = current
      return connection
        ? Effect.ignore(connection.send(Command.Kbye.make({ msgid: Command.unsafeMessageId() }, true)))
        : Effect.void
    })

    return Scheduler.of({
      jobs: Effect.sync(() => [...jobs.values()]),
      identity: Effect.sync(() => Option.fromNullable(current?.identity)),
      storeFailures: Effect.sync(() => storeFailures)
    })
  }).pipe(Effect.annotateLogs({ "emqp.role": "scheduler" }), Effect.withScheduler(ioScheduler))

/**
 * @since 0.1.0
 * @category models
 */
export interface SchedulerAddressOptions extends SchedulerOptions, Socket.SocketOptions {
  /** The broker's frontend. Default: `tcp://127.0.0.1:47291`. */
  readonly address?: string | undefined
}

/**
 * A scheduler connected over ZMTP to the broker's frontend.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SchedulerAddressOptions = {}
): Effect.Effect<SchedulerService, ScheduleStore.ScheduleStoreError, Scope.Scope> =>
  makeWith(Socket.dealer(options.address ?? "tcp://127.0.0.1:47291", options), options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SchedulerAddressOptions = {}): Layer.Layer<Scheduler, ScheduleStore.ScheduleStoreError> =>
  Layer.scoped(Scheduler, make(options))

/**
 * A scheduler that keeps its jobs in the `ScheduleStore` service.
 *
 * @example
 * ```ts
 * import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
 * import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
 * import { ScheduleStore, Scheduler } from "effect-wire/emqp"
 *
 * const SchedulerLive = Scheduler.layerWithStore({ address: "tcp://127.0.0.1:47291" }).pipe(
 *   Layer.provide(ScheduleStore.layerFile({ path: "/var/lib/emqp/schedule.json" })),
 *   Layer.provide(NodeFileSystem.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWithStore = (
  options: Omit<SchedulerAddressOptions, "store"> = {}
): Layer.Layer<Scheduler, ScheduleStore.ScheduleStoreError, ScheduleStore.ScheduleStore> =>
  Layer.scoped(Scheduler, Effect.flatMap(ScheduleStore.ScheduleStore, (store) => make({ ...options, store })))
