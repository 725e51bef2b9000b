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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Command from "./Command.js"
import type * as Headers from "./Headers.js"
import * as Session from "./internal/session.js"
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
  /** Jobs run at once = READYs offered. Default: 4 (the reference's `CONCURRENT_JOBS`). */
  readonly concurrency?: number | undefined
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

/** The reply body for a finished job. */
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
    const jobTimeout = Duration.decode(options.jobTimeout ?? Duration.seconds(300))
    const jobs = yield* FiberSet.make<void, never>()
    const semaphore = yield* Effect.makeSemaphore(concurrency)
    let current: Session.Connection | undefined
    let running = 0
    let completed = 0
    let draining = false

    const sendReady = (connection: Session.Connection, n: number) =>
      Effect.forEach(
        Array.from({ length: n }),
        () => connection.send(Command.Ready.make({ msgid: Command.unsafeMessageId() }, true)),
        { discard: true }
      )

    const finished = (request: Command.Request, result: string) =>
      Effect.suspend(() => {
        running--
        completed++
        const connection = current
        if (!connection) return Effect.void
        const reply = request.headers.replyRequested
          ? connection.send(
            Command.Result.make({ msgid: Command.unsafeMessageId(), result, requestId: request.msgid }, true)
          )
          : Effect.void
        return Effect.zipRight(reply, draining ? Effect.void : sendReady(connection, 1))
      }).pipe(Effect.catchAll((error) => Effect.logWarning(`could not report job ${request.msgid}: ${error.message}`)))

    const runJob = (request: Command.Request) =>
      Effect.gen(function*() {
        const parsed = Either.try(() => JSON.parse(request.payload) as unknown)
        const timeout = request.headers.timeout > 0 ? Duration.seconds(request.headers.timeout) : jobTimeout
        const exit = Either.isLeft(parsed)
          ? Exit.fail({ _tag: "Malformed", message: "the payload is not JSON" })
          : yield* handler({ id: request.msgid, queue: request.queue, headers: request.headers, payload: parsed.right })
            .pipe(
              Effect.timeoutFail({ duration: timeout, onTimeout: () => ({ _tag: "TimeoutError", message: "TimeoutError" }) }),
              Effect.exit
            )
        yield* finished(request, resultJson(exit))
      }).pipe(
        semaphore.withPermits(1),
        Effect.withSpan("emqp.worker.job", { attributes: { "messaging.message.id": request.msgid }, captureStackTrace: false })
      )

    const session = Session.run({
      connect,
      peerType: "worker",
      queues: options.queues ?? [{ weight: 10, name: "default" }],
      heartbeatInterval: Duration.decode(options.heartbeatInterval ?? Duration.seconds(3)),
      heartbeatTimeout: Duration.decode(options.heartbeatTimeout ?? Duration.seconds(5)),
      liveness: options.liveness ?? 3,
      ackTimeout: Duration.decode(options.ackTimeout ?? Duration.seconds(5)),
      reconnectDelay: Duration.decode(options.reconnectDelay ?? Duration.seconds(1))
    }, {
      onConnected: (connection) =>
        Effect.suspend(() => {
          // Set the connection and count free slots in one step, so each slot is offered exactly once.
          current = connection
          return draining ? Effect.void : sendReady(connection, Math.max(0, concurrency - running))
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
        running++
        return Effect.asVoid(FiberSet.run(jobs, runJob(command)))
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
  }).pipe(Effect.annotateLogs({ "emqp.role": "worker" }))

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
