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
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ioScheduler } from "../internal/ioScheduler.js"
import * as Command from "./Command.js"
import * as Headers from "./Headers.js"
import * as PyJson from "./internal/pyjson.js"
import * as Session from "./internal/session.js"
import * as Socket from "./Socket.js"

/**
 * A job the scheduler holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduledJob {
  readonly key: string
  readonly queue: string
  readonly payload: string
  /** Seconds between runs, or `undefined` for a cron job. */
  readonly interval: number | undefined
  readonly cron: string | undefined
  /** Runs left; `undefined` = forever. */
  readonly runsLeft: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface SchedulerOptions {
  /** Jobs held at most; further SCHEDULEs are refused (logged). Default: 10000. */
  readonly maxJobs?: number | undefined
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

/**
 * Runs a scheduler connected with `connect` until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  connect: Socket.Connect,
  options: SchedulerOptions = {}
): Effect.Effect<SchedulerService, never, Scope.Scope> =>
  Effect.gen(function*() {
    const maxJobs = options.maxJobs ?? 10_000
    const jobs = new Map<string, ScheduledJob>()
    const fibers = yield* FiberMap.make<string>()
    let current: Session.Connection | undefined

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

    /** One run: emits, counts down, and says whether more runs are due. */
    const runOnce = (key: string) =>
      Effect.suspend(() => {
        const job = jobs.get(key)
        if (!job) return Effect.succeed(false)
        const runsLeft = job.runsLeft === undefined ? undefined : job.runsLeft - 1
        const more = runsLeft === undefined || runsLeft > 0
        if (more) jobs.set(key, { ...job, runsLeft })
        else jobs.delete(key)
        return Effect.as(emit(job), more)
      })

    const untilNext = (job: ScheduledJob, cron: Cron.Cron | undefined) =>
      cron === undefined
        ? Effect.succeed(Duration.seconds(job.interval ?? 0))
        : Effect.map(Clock.currentTimeMillis, (now) => Duration.millis(Math.max(0, Cron.next(cron, now).getTime() - now)))

    const loop = (job: ScheduledJob, cron: Cron.Cron | undefined, haste: boolean): Effect.Effect<void> =>
      Effect.gen(function*() {
        let more = true
        if (haste) more = yield* runOnce(job.key)
        while (more) {
          yield* Effect.sleep(yield* untilNext(job, cron))
          more = yield* runOnce(job.key)
        }
      })

    const onSchedule = (command: Command.Schedule) => {
      const key = jobKey(command.payload)
      if (!jobs.has(key) && jobs.size >= maxJobs) {
        return Effect.logWarning(`refused SCHEDULE ${command.msgid}: ${maxJobs} jobs held already`)
      }
      let cron: Cron.Cron | undefined
      if (command.interval < 0) {
        const parsed = Cron.parse(command.cron)
        if (Either.isLeft(parsed)) {
          return Effect.logWarning(`refused SCHEDULE ${command.msgid}: cron ${JSON.stringify(command.cron)} is invalid`)
        }
        cron = parsed.right
      }
      const job: ScheduledJob = {
        key,
        queue: command.queue,
        payload: command.payload,
        interval: command.interval >= 0 ? command.interval : undefined,
        cron: command.interval >= 0 ? undefined : command.cron,
        runsLeft: command.headers.runCount > 0 ? command.headers.runCount : undefined
      }
      jobs.set(key, job)
      return Effect.zipRight(
        Effect.logInfo(`scheduled job ${key} (${job.interval !== undefined ? `every ${job.interval}s` : job.cron})`),
        FiberMap.run(fibers, key, loop(job, cron, !command.headers.nohaste))
      )
    }

    const onUnschedule = (command: Command.Unschedule) =>
      Effect.suspend(() => {
        const key = jobKey(command.payload)
        jobs.delete(key)
        return Effect.zipRight(FiberMap.remove(fibers, key), Effect.logInfo(`unscheduled job ${key}`))
      })

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
        Effect.sync(() => {
          current = connection
        }),
      onDisconnected: (_, reason) =>
        Effect.zipRight(
          Effect.sync(() => {
            current = undefined
          }),
          Effect.logWarning(`disconnected from the broker: ${reason}`)
        ),
      onCommand: (_, command) =>
        command._tag === "Schedule"
          ? Effect.asVoid(onSchedule(command))
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
      identity: Effect.sync(() => Option.fromNullable(current?.identity))
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
export const make = (options: SchedulerAddressOptions = {}): Effect.Effect<SchedulerService, never, Scope.Scope> =>
  makeWith(Socket.dealer(options.address ?? "tcp://127.0.0.1:47291", options), options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SchedulerAddressOptions = {}): Layer.Layer<Scheduler> =>
  Layer.scoped(Scheduler, make(options))
