/**
 * An eMQP client on the broker's frontend: `request` a job and get its typed result, `send` jobs
 * fire-and-forget, read results as a `Stream`, and schedule / unschedule recurring jobs.
 *
 * Results travel only through an effect-wire broker (the 0.3.13 router drops them): `request` then fails with
 * `Timeout`. Refusals (`NACK`) fail with `Refused` and the broker's code, failed jobs with `JobFailed`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Predicate from "effect/Predicate"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { ioScheduler } from "../internal/ioScheduler.js"
import * as Command from "./Command.js"
import { EmqpError } from "./EmqpError.js"
import * as Headers from "./Headers.js"
import { loop } from "../internal/loop.js"
import { withSpan } from "./internal/spans.js"
import { Waiters } from "./internal/waiters.js"
import * as Socket from "./Socket.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SendOptions {
  /** Default: `"default"`. */
  readonly queue?: string | undefined
  /** Headers besides `reply-requested` (which `request` always sets). */
  readonly headers?: Partial<Headers.Headers> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RequestOptions<A, I> extends SendOptions {
  /** Decodes the job's `value`. Default: no decoding (`unknown`). */
  readonly schema?: Schema.Schema<A, I> | undefined
  /** How long to wait for the result. Default: the client's `requestTimeout`. */
  readonly timeout?: Duration.DurationInput | undefined
}

/**
 * A recurring job: every `interval` or on a 5-field `cron` expression (exactly one of them).
 *
 * @since 0.1.0
 * @category models
 */
export interface ScheduleOptions extends SendOptions {
  readonly payload: unknown
  readonly interval?: Duration.DurationInput | undefined
  readonly cron?: string | undefined
}

/**
 * What arrives for jobs sent with `send(…, { headers: { replyRequested: true } })`.
 *
 * @since 0.1.0
 * @category models
 */
export type Outcome = Command.Result | Command.Nack

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientService {
  /** The client's identity on the broker. */
  readonly identity: string
  /** Sends a job with `reply-requested` and waits for its result's `value`. */
  readonly request: <A = unknown, I = unknown>(
    payload: unknown,
    options?: RequestOptions<A, I>
  ) => Effect.Effect<A, EmqpError>
  /** Sends a job and returns its id once written. */
  readonly send: (payload: unknown, options?: SendOptions) => Effect.Effect<string, EmqpError>
  /** Results and refusals of jobs sent with `send`. */
  readonly outcomes: Stream.Stream<Outcome>
  /** Schedules a recurring job; returns the SCHEDULE's msgid (a `NACK no-scheduler` arrives on `outcomes`). */
  readonly schedule: (options: ScheduleOptions) => Effect.Effect<string, EmqpError>
  /** Removes the scheduled job with this payload from every scheduler. */
  readonly unschedule: (payload: unknown, options?: SendOptions) => Effect.Effect<void, EmqpError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Client extends Context.Tag("effect-wire/emqp/Client")<Client, ClientService>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  /** Default timeout of `request`. Default: 30 seconds. */
  readonly requestTimeout?: Duration.DurationInput | undefined
  /** Outcomes buffered for `outcomes` before new ones are dropped (and logged). Default: 1024. */
  readonly outcomeCapacity?: number | undefined
  /** The layout of the commands this side sends (`Command.Profile`). Default: `"reference"` (EventMQ 0.3.13). */
  readonly profile?: Command.Profile | undefined
}

/**
 * The reference's job payload: `["run", {callable, path, args, kwargs, class_args, class_kwargs}]`, what a
 * Python job manager runs as `path.callable(*args, **kwargs)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const runPayload = (options: {
  readonly path: string
  readonly callable: string
  readonly args?: ReadonlyArray<unknown> | undefined
  readonly kwargs?: Readonly<Record<string, unknown>> | undefined
  readonly classArgs?: ReadonlyArray<unknown> | undefined
  readonly classKwargs?: Readonly<Record<string, unknown>> | undefined
}): unknown => [
  "run",
  {
    callable: options.callable,
    path: options.path,
    args: options.args ?? [],
    kwargs: options.kwargs ?? {},
    class_args: options.classArgs ?? [],
    class_kwargs: options.classKwargs ?? {}
  }
]

const outcomesDropped = Metric.counter("emqp_client_outcomes_dropped", {
  description: "results nobody read from Client.outcomes before the buffer filled"
})

const toJson = (payload: unknown, command: string): Either.Either<string, EmqpError> => {
  const text = Either.try(() => JSON.stringify(payload) as string | undefined)
  return Either.isRight(text) && typeof text.right === "string"
    ? Either.right(text.right)
    : Either.left(new EmqpError({ reason: "Malformed", command, detail: "the payload is not JSON-serialisable" }))
}

/**
 * A result frame's object: `{"value": …}`, or `{"error": …}` for a failed job. Read on every job's return, so with
 * `JSON.parse` and a shape check rather than a Schema transformation; `undefined` when it is not a JSON object.
 */
const parseResult = (text: string): { readonly value: unknown; readonly error: unknown } | undefined => {
  const parsed = Either.try(() => JSON.parse(text) as unknown)
  if (Either.isLeft(parsed) || !Predicate.isRecord(parsed.right)) return undefined
  return { value: parsed.right.value, error: parsed.right.error }
}

const REPLY = [0x52, 0x45, 0x50, 0x4c, 0x59]

const isDispatchAck = (message: ReadonlyArray<Uint8Array>): boolean => {
  if (message.length !== 5) return false
  const name = message[2]!
  return name.length === 5 && REPLY.every((byte, i) => name[i] === byte)
}

/** A job's `value`, decoded with `schema` if given; refusals and failed jobs as errors. */
const outcomeValue = <A, I>(
  msgid: string,
  outcome: Outcome,
  schema: Schema.Schema<A, I> | undefined
): Effect.Effect<A, EmqpError> => {
  if (outcome._tag === "Nack") {
    return Effect.fail(
      new EmqpError({ reason: "Refused", command: "REQUEST", msgid, code: outcome.code, detail: outcome.detail })
    )
  }
  const parsed = parseResult(outcome.result)
  if (parsed === undefined) {
    return Effect.fail(
      new EmqpError({ reason: "Malformed", command: "REPLY", msgid, detail: "the result is not {\"value\": …}" })
    )
  }
  if (parsed.error !== undefined) {
    const error = parsed.error
    const message = Predicate.hasProperty(error, "message") ? String(error.message) : JSON.stringify(error)
    return Effect.fail(new EmqpError({ reason: "JobFailed", command: "REQUEST", msgid, detail: message, cause: error }))
  }
  if (!schema) return Effect.succeed(parsed.value as A)
  return Schema.decodeUnknown(schema)(parsed.value).pipe(
    Effect.mapError((error) => new EmqpError({ reason: "Malformed", command: "REPLY", msgid, detail: error.message }))
  )
}

/**
 * A client on an open DEALER connected to the broker's frontend.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  connect: Socket.Connect,
  options: ClientOptions = {}
): Effect.Effect<ClientService, EmqpError, Scope.Scope> =>
  Effect.gen(function*() {
    const identity = Command.unsafeMessageId()
    const socket = yield* connect(identity)
    const waiters = new Waiters<Outcome, EmqpError>()
    yield* Effect.forkScoped(waiters.deadlines.run)
    const outcomes = yield* Queue.dropping<Outcome>(options.outcomeCapacity ?? 1024)
    yield* Effect.addFinalizer(() => Queue.shutdown(outcomes))
    const requestTimeout = Duration.toMillis(Duration.decode(options.requestTimeout ?? Duration.seconds(30)))

    const deliver = (outcome: Outcome, requestId: string) => {
      if (waiters.settle(requestId, Effect.succeed(outcome))) return Effect.void
      return Effect.flatMap(Queue.offer(outcomes, outcome), (accepted) =>
        accepted ? Effect.void : Effect.zipRight(
          Metric.increment(outcomesDropped),
          Effect.logWarning(`dropped the outcome of ${requestId}: Client.outcomes is not read`)
        ))
    }

    yield* socket.receive.pipe(
      Effect.flatMap((message) => {
        // The broker acks every dispatched request with a 5-frame REPLY nothing waits for: skipped undecoded.
        if (isDispatchAck(message)) return Effect.void
        const decoded = Command.decode(message)
        if (Either.isLeft(decoded)) return Effect.logWarning(`ignored a message: ${decoded.left.message}`)
        const command = decoded.right
        switch (command._tag) {
          case "Result":
            return deliver(command, command.requestId)
          case "Nack":
            return deliver(command, command.requestId)
          default:
            // Dispatch acks (5-frame REPLY) and anything else: nothing waits for them.
            return Effect.void
        }
      }),
      loop,
      Effect.catchAll((error) => Effect.logError(`the client socket failed: ${error.message}`)),
      Effect.annotateLogs({ "emqp.role": "client" }),
      Effect.forkScoped
    )

    const write = (command: Command.Command) => socket.send(Command.encode(command, options.profile))

    const sendRequest = (msgid: string, payload: unknown, send: SendOptions, replyRequested: boolean) =>
      Effect.flatMap(toJson(payload, "REQUEST"), (json) =>
        write({
          _tag: "Request",
          msgid,
          queue: send.queue ?? "default",
          headers: Headers.make({ ...send.headers, ...(replyRequested ? { replyRequested: true } : {}) }),
          payload: json
        }))

    const request = <A = unknown, I = unknown>(
      payload: unknown,
      opts: RequestOptions<A, I> = {}
    ): Effect.Effect<A, EmqpError> =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => {
        const msgid = Command.unsafeMessageId()
        const timeout = opts.timeout === undefined ? requestTimeout : Duration.toMillis(Duration.decode(opts.timeout))
        // Registered before the send, so that a result arriving at once finds its caller.
        waiters.register(
          msgid,
          now + timeout,
          () => new EmqpError({ reason: "Timeout", command: "REQUEST", msgid, detail: "no result" })
        )
        return sendRequest(msgid, payload, opts, true).pipe(
          Effect.onError(() => Effect.sync(() => waiters.remove(msgid))),
          Effect.zipRight(waiters.wait(msgid)),
          Effect.flatMap((outcome) => outcomeValue(msgid, outcome, opts.schema))
        )
      }).pipe(
        withSpan("emqp.client.request", {
          attributes: { "messaging.destination.name": opts.queue ?? "default" },
          captureStackTrace: false
        })
      )

    const scheduleCommand = (tag: "Schedule" | "Unschedule", opts: ScheduleOptions) =>
      Effect.gen(function*() {
        const json = yield* toJson(opts.payload, tag.toUpperCase())
        const hasInterval = opts.interval !== undefined
        const hasCron = opts.cron !== undefined && opts.cron !== ""
        if (tag === "Schedule" && hasInterval === hasCron) {
          return yield* new EmqpError({ reason: "Malformed", command: "SCHEDULE", detail: "give exactly one of interval and cron" })
        }
        const msgid = Command.unsafeMessageId()
        const fields = {
          msgid,
          queue: opts.queue ?? "default",
          headers: Headers.make({ ...opts.headers }),
          interval: hasInterval ? Math.max(0, Math.round(Duration.toSeconds(Duration.decode(opts.interval!)))) : -1,
          payload: json,
          cron: hasCron && !hasInterval ? opts.cron! : ""
        }
        yield* write(tag === "Schedule" ? Command.Schedule.make(fields, true) : Command.Unschedule.make(fields, true))
        return msgid
      })

    return Client.of({
      identity,
      request,
      send: (payload, opts = {}) =>
        Effect.suspend(() => {
          const msgid = Command.unsafeMessageId()
          return Effect.as(sendRequest(msgid, payload, opts, false), msgid)
        }),
      outcomes: Stream.fromQueue(outcomes),
      schedule: (opts) => scheduleCommand("Schedule", opts),
      unschedule: (payload, opts = {}) => Effect.asVoid(scheduleCommand("Unschedule", { ...opts, payload }))
    })
  }).pipe(Effect.withScheduler(ioScheduler))

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientAddressOptions extends ClientOptions, Socket.SocketOptions {
  /** The broker's frontend. Default: `tcp://127.0.0.1:47291`. */
  readonly address?: string | undefined
}

/**
 * A client connected over ZMTP to the broker's frontend.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: ClientAddressOptions = {}): Effect.Effect<ClientService, EmqpError, Scope.Scope> =>
  makeWith(Socket.dealer(options.address ?? "tcp://127.0.0.1:47291", options), options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: ClientAddressOptions = {}): Layer.Layer<Client, EmqpError> =>
  Layer.scoped(Client, make(options))

/**
 * The client's settings from configuration: `EMQ_BROKER_ADDR`, the reference client's variable (default
 * `tcp://127.0.0.1:47291`).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<ClientAddressOptions> = Config.all({
  address: Config.withDefault(Config.string("EMQ_BROKER_ADDR"), "tcp://127.0.0.1:47291")
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  settings: Config.Config<ClientAddressOptions> = config
): Layer.Layer<Client, EmqpError | ConfigError.ConfigError> => Layer.scoped(Client, Effect.flatMap(settings, make))
