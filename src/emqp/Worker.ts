/**
 * An eMQP worker (the reference's "job manager"): announces its queues to the broker's backend, offers one
 * READY per free job slot, runs each REQUEST's handler as an Effect with bounded concurrency, and sends the
 * result (`REPLY {"value": …}`) when the request asks for it.
 *
 * Heartbeats both ways; when the broker goes silent or says KBYE the worker reconnects with a new identity.
 * Closing the scope drains gracefully: no new READY, running jobs finish (within `drainTimeout`), then KBYE.
 *
 * Results follow the reference: `{"value": x}`. A failed job also carries an `error` object
 * (`{"value": "<message>", "error": {"message": …, "tag": …}}`): 0.3.13 routers ignore it, an effect-wire broker
 * uses it for `retry-count`, an effect-wire client turns it into `JobFailed`.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Layer from "effect/Layer"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { ioScheduler } from "../internal/ioScheduler.js"
import * as Command from "./Command.js"
import type { EmqpError } from "./EmqpError.js"
import type * as Headers from "./Headers.js"
import { Deque } from "./internal/deque.js"
import * as Session from "./internal/session.js"
import { withSpan } from "./internal/spans.js"
import { Deadlines } from "./internal/waiters.js"
import * as Socket from "./Socket.js"

/**
 * A job as the handler sees it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job {
  /** The job id: the client's REQUEST msgid. */
  readonly id: string
  readonly queue: string
  readonly headers: Headers.Headers
  /** The request's payload, parsed from JSON (the reference sends `["run", {callable, path, args, …}]`). */
  readonly payload: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WorkerOptions {
  /** Queues in priority order (the first is served first). Default: `[{ weight: 10, name: "default" }]`. */
  readonly queues?: ReadonlyArray<Command.Queue> | undefined
  /** Jobs run at once. Default: 4 (the reference's `CONCURRENT_JOBS`). */
  readonly concurrency?: number | undefined
  /**
   * Jobs taken ahead of a free slot, so that the next job is already here when one finishes (no READY → REQUEST
   * round trip between jobs). The worker offers `concurrency + prefetch` READYs. A prefetched job waits here
   * even if another worker is idle, so keep it small for long jobs. Default: 0 (one READY per slot, as the
   * reference's job manager).
   */
  readonly prefetch?: number | undefined
  /** Job timeout when the request has no `timeout:N`. Default: 300 seconds (the reference's). */
  readonly jobTimeout?: Duration.DurationInput | undefined
  /** Default: 3 seconds. */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** Silence that counts as one missed heartbeat. Default: 5 seconds. */
  readonly heartbeatTimeout?: Duration.DurationInput | undefined
  /** Missed heartbeats before the broker is considered gone. Default: 3. */
  readonly liveness?: number | undefined
  /** How long to wait for the ACK of an INFORM. Default: 5 seconds. */
  readonly ackTimeout?: Duration.DurationInput | undefined
  /** Pause before reconnecting. Default: 1 second. */
  readonly reconnectDelay?: Duration.DurationInput | undefined
  /** The layout of the commands this side sends (`Command.Profile`). Default: `"reference"` (EventMQ 0.3.13). */
  readonly profile?: Command.Profile | undefined
  /** How long running jobs may take to finish when the worker shuts down. Default: 30 seconds. */
  readonly drainTimeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface WorkerService {
  /** The identity of the current connection, if the broker has ACKed it. */
  readonly identity: Effect.Effect<Option.Option<string>>
  /** Jobs running now. */
  readonly running: Effect.Effect<number>
  /** Jobs finished since start. */
  readonly completed: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Worker extends Context.Tag("effect-wire/emqp/Worker")<Worker, WorkerService>() {}

const errorInfo = (cause: Cause.Cause<unknown>): { readonly message: string; readonly tag?: string } => {
  const failure = Cause.failureOption(cause)
  const error = Option.isSome(failure) ? failure.value : Cause.squash(cause)
  const tag = Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : undefined
  const message = error instanceof Error
    ? error.message
    : Predicate.hasProperty(error, "message") && typeof error.message === "string"
    ? error.message
    : String(error)
  return tag === undefined ? { message } : { message, tag }
}

const stringify = (value: unknown): Either.Either<string, string> =>
  Either.try({
    try: () => JSON.stringify({ value: value === undefined ? null : value }),
    catch: (error) => error instanceof Error ? error.message : String(error)
  })

const failure = (error: { readonly message: string; readonly tag?: string }) =>
  JSON.stringify({ value: error.message, error })

const timeoutExit = Exit.fail({ _tag: "TimeoutError", message: "TimeoutError" })

/** Jobs waiting for a slot when a broker sends more than the worker offered. */
const backlogCapacity = 1024

/**
 * The REPLY body for a finished job: `{"value": x}`, or for a failure `{"value": "<message>", "error": {…}}`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const resultJson = (exit: Exit.Exit<unknown, unknown>): string => {
  if (Exit.isSuccess(exit)) {
    const json = stringify(exit.value)
    return Either.isRight(json) ? json.right : failure({ message: json.left, tag: "TypeError" })
  }
  return failure(errorInfo(exit.cause))
}

/**
 * Runs a worker that connects with `connect` and runs `handler` for each job, until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = <E, R>(
  connect: Socket.Connect,
  handler: (job: Job) => Effect.Effect<unknown, E, R>,
  options: WorkerOptions = {}
): Effect.Effect<WorkerService, never, Scope.Scope | R> =>
  Effect.gen(function*() {
    const concurrency = Math.max(1, options.concurrency ?? 4)
    const capacity = concurrency + Math.max(0, Math.min(options.prefetch ?? 0, backlogCapacity))
    const jobTimeout = Duration.toMillis(Duration.decode(options.jobTimeout ?? Duration.seconds(300)))
    const jobs = yield* FiberSet.make<void, never>()
    const runFork = yield* FiberSet.runtime(jobs)<R>()
    // One sweeper interrupts the jobs that pass their timeout (no timer per job).
    const deadlines = new Deadlines()
    yield* Effect.forkScoped(deadlines.run)
    // Jobs beyond the free slots (prefetched, or a broker that sent more than it was offered) wait here, bounded.
    const backlog = new Deque<Command.Request>(backlogCapacity)
    let current: Session.Connection | undefined
    // READYs the broker holds for us: offered minus jobs received. Jobs held + credits stay within `capacity`.
    let credits = 0
    let running = 0
    let completed = 0
    let draining = false

    const ready = (): Command.Ready => ({ _tag: "Ready", msgid: Command.unsafeMessageId() })

    const sendReady = (connection: Session.Connection, n: number): Effect.Effect<void, EmqpError> => {
      if (n <= 0) return Effect.void
      credits += n
      if (n === 1) return connection.send(ready())
      return Effect.forEach(Array.from({ length: n }, ready), connection.send, { discard: true })
    }

    const report = (request: Command.Request, result: string) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        running--
        completed++
        const next = backlog.shift()
        if (next !== undefined) start(next, now)
        const connection = current
        if (!connection) return Effect.void
        const reply = request.headers.replyRequested
          ? connection.send(
            { _tag: "Result", msgid: Command.unsafeMessageId(), result, requestId: request.msgid }
          )
          : Effect.void
        // The freed place is offered again at once.
        const free = draining ? 0 : capacity - running - backlog.size - credits
        return free > 0 ? Effect.zipRight(reply, sendReady(connection, 1)) : reply
      }).pipe(Effect.catchAll((error) => Effect.logWarning(`could not report job ${request.msgid}: ${error.message}`)))

    // The broker sent more jobs than slots and backlog: answered at once as failed (it retries per its headers).
    const refuse = (request: Command.Request) =>
      Effect.zipRight(
        Effect.logWarning(`refused job ${request.msgid}: ${backlogCapacity} jobs are waiting for a slot`),
        current && request.headers.replyRequested
          ? Effect.ignore(current.send(Command.Result.make({
            msgid: Command.unsafeMessageId(),
            result: resultJson(Exit.fail({ _tag: "Busy", message: "the worker has no free slot" })),
            requestId: request.msgid
          }, true)))
          : Effect.void
      )

    const start = (request: Command.Request, now: number): void => {
      running++
      const parsed = Either.try(() => JSON.parse(request.payload) as unknown)
      if (Either.isLeft(parsed)) {
        runFork(report(request, resultJson(Exit.fail({ _tag: "Malformed", message: "the payload is not JSON" }))))
        return
      }
      // Forked jobs start at once and may end before `runFork` returns: the deadline's key is not the fiber.
      const key = {}
      let fiber: Fiber.RuntimeFiber<void, never> | undefined
      let timedOut = false
      let reported = false
      const once = (exit: Exit.Exit<unknown, unknown>) =>
        Effect.suspend(() => {
          if (reported) return Effect.void
          reported = true
          deadlines.remove(key)
          return report(request, resultJson(exit))
        })
      const job = handler({ id: request.msgid, queue: request.queue, headers: request.headers, payload: parsed.right })
        .pipe(
          Effect.exit,
          Effect.flatMap(once),
          // Interrupted by its deadline (or by the worker's shutdown): reported all the same.
          Effect.onInterrupt(() => once(timedOut ? timeoutExit : Exit.interrupt(FiberId.none))),
          withSpan("emqp.worker.job", {
            attributes: { "messaging.message.id": request.msgid },
            captureStackTrace: false
          })
        )
      const seconds = request.headers.timeout
      deadlines.add(key, now + (seconds > 0 ? seconds * 1000 : jobTimeout), () => {
        timedOut = true
        fiber?.unsafeInterruptAsFork(FiberId.none)
      })
      fiber = runFork(job)
      if (reported) fiber = undefined
    }

    const session = Session.run({
      connect,
      peerType: "worker",
      queues: options.queues ?? [{ weight: 10, name: "default" }],
      heartbeatInterval: Duration.decode(options.heartbeatInterval ?? Duration.seconds(3)),
      heartbeatTimeout: Duration.decode(options.heartbeatTimeout ?? Duration.seconds(5)),
      liveness: options.liveness ?? 3,
      ackTimeout: Duration.decode(options.ackTimeout ?? Duration.seconds(5)),
      reconnectDelay: Duration.decode(options.reconnectDelay ?? Duration.seconds(1)),
      profile: options.profile ?? "reference"
    }, {
      onConnected: (connection) =>
        Effect.suspend(() => {
          // Set the connection and count free places in one step, so each is offered exactly once. A new
          // connection is a new identity: the broker holds no READY of ours yet.
          current = connection
          credits = 0
          return draining ? Effect.void : sendReady(connection, capacity - running - backlog.size)
        }).pipe(Effect.catchAll((error) => Effect.logWarning(`could not send READY: ${error.message}`))),
      onDisconnected: (_, reason) =>
        Effect.zipRight(
          Effect.sync(() => {
            current = undefined
          }),
          Effect.logWarning(`disconnected from the broker: ${reason}`)
        ),
      onCommand: (_, command) => {
        if (command._tag !== "Request") return Effect.logDebug(`ignored ${command._tag} from the broker`)
        if (credits > 0) credits--
        if (running < concurrency) return Effect.clockWith((clock) => Effect.sync(() => start(command, clock.unsafeCurrentTimeMillis())))
        if (backlog.push(command)) return Effect.void
        return refuse(command)
      }
    })
    const sessionFiber = yield* Effect.forkScoped(session)

    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        draining = true
        // Let running jobs finish and report, then say goodbye.
        // Finalizers are uninterruptible: the wait must be made interruptible for its timeout to work.
        yield* Effect.repeat(Effect.sync(() => running), {
          until: (n) => n === 0,
          schedule: Schedule.spaced(Duration.millis(10))
        }).pipe(Effect.interruptible, Effect.timeout(options.drainTimeout ?? Duration.seconds(30)), Effect.ignore)
        const connection = current
        if (connection) yield* Effect.ignore(connection.send(Command.Kbye.make({ msgid: Command.unsafeMessageId() }, true)))
        yield* Fiber.interrupt(sessionFiber)
      })
    )

    return Worker.of({
      identity: Effect.sync(() => Option.fromNullable(current?.identity)),
      running: Effect.sync(() => running),
      completed: Effect.sync(() => completed)
    })
  }).pipe(Effect.annotateLogs({ "emqp.role": "worker" }), Effect.withScheduler(ioScheduler))

/**
 * @since 0.1.0
 * @category models
 */
export interface WorkerAddressOptions extends WorkerOptions, Socket.SocketOptions {
  /** The broker's backend. Default: `tcp://127.0.0.1:47290`. */
  readonly address?: string | undefined
}

/**
 * A worker connected over ZMTP to the broker's backend.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(
  handler: (job: Job) => Effect.Effect<unknown, E, R>,
  options: WorkerAddressOptions = {}
): Effect.Effect<WorkerService, never, Scope.Scope | R> =>
  makeWith(Socket.dealer(options.address ?? "tcp://127.0.0.1:47290", options), handler, options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(
  handler: (job: Job) => Effect.Effect<unknown, E, R>,
  options: WorkerAddressOptions = {}
): Layer.Layer<Worker, never, Exclude<R, Scope.Scope>> => Layer.scoped(Worker, make(handler, options))

const QueuesJson = Schema.parseJson(Schema.Array(Schema.Tuple(Schema.Int, Schema.String)))

/**
 * The worker's settings from configuration, under the reference job manager's names: `WORKER_ADDR`,
 * `CONCURRENT_JOBS`, `QUEUES` (JSON `[[weight, "name"], …]`, in priority order), `GLOBAL_TIMEOUT` (job timeout in
 * seconds), `HEARTBEAT_INTERVAL` and `HEARTBEAT_TIMEOUT` (seconds), `HEARTBEAT_LIVENESS`; and `PREFETCH`. Wrap it
 * (e.g. `Config.nested(Worker.config, "EVENTMQ")`) to read `EVENTMQ_WORKER_ADDR` and friends.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<WorkerAddressOptions> = Config.all({
  address: Config.withDefault(Config.string("WORKER_ADDR"), "tcp://127.0.0.1:47290"),
  concurrency: Config.withDefault(Config.integer("CONCURRENT_JOBS"), 4),
  prefetch: Config.withDefault(Config.integer("PREFETCH"), 0),
  queues: Config.withDefault(
    Config.mapOrFail(Config.string("QUEUES"), (json) =>
      Either.match(Schema.decodeUnknownEither(QueuesJson)(json), {
        onLeft: () => Either.left(ConfigError.InvalidData([], "QUEUES must be JSON [[weight, \"name\"], …]")),
        onRight: (pairs) => Either.right(pairs.map(([weight, name]): Command.Queue => ({ weight, name })))
      })),
    [{ weight: 10, name: "default" }]
  ),
  jobTimeout: Config.map(Config.withDefault(Config.number("GLOBAL_TIMEOUT"), 300), Duration.seconds),
  heartbeatInterval: Config.map(Config.withDefault(Config.number("HEARTBEAT_INTERVAL"), 3), Duration.seconds),
  heartbeatTimeout: Config.map(Config.withDefault(Config.number("HEARTBEAT_TIMEOUT"), 5), Duration.seconds),
  liveness: Config.withDefault(Config.integer("HEARTBEAT_LIVENESS"), 3)
})

/**
 * A worker for `handler` configured from `config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <E, R>(
  handler: (job: Job) => Effect.Effect<unknown, E, R>,
  settings: Config.Config<WorkerAddressOptions> = config
): Layer.Layer<Worker, ConfigError.ConfigError, Exclude<R, Scope.Scope>> =>
  Layer.scoped(Worker, Effect.flatMap(settings, (options) => make(handler, options)))
