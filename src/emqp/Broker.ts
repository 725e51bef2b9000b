/**
 * The eMQP broker (the reference's "router"): clients and schedulers on the frontend ROUTER, workers (job
 * managers) on the backend ROUTER, `emq-cli` on the admin ROUTER.
 *
 * It speaks to EventMQ 0.3.13 peers exactly as the reference router does, and closes its gaps: a full queue
 * refuses with `NACK` instead of dropping, buffered requests are acknowledged when dispatched, results reach
 * clients that ask for them, `guarantee` / `retry-count` / `timeout` are implemented, DISCONNECT is obeyed on the
 * admin socket only, and no send failure is silent (each is logged and counted).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { ioScheduler } from "../internal/ioScheduler.js"
import * as Command from "./Command.js"
import type { EmqpError } from "./EmqpError.js"
import { BrokerCore, defaultOptions, type Output, type SocketName } from "./internal/brokerCore.js"
import { fromKey, toKey } from "./internal/bytes.js"
import { loop } from "../internal/loop.js"
import * as Socket from "./Socket.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface BrokerOptions {
  /** Queues of a worker whose INFORM lists none. Default: `[{ weight: 10, name: "default" }]`. */
  readonly defaultQueues?: ReadonlyArray<Command.Queue> | undefined
  /** Where requests for a queue no worker announced go. Default: `"default"`. */
  readonly defaultQueueName?: string | undefined
  /** Waiting requests per queue before new ones are refused with `NACK queue-full`. Default: 10000. */
  readonly queueCapacity?: number | undefined
  /** Between HEARTBEATs to workers and schedulers. Default: 3 seconds (the reference's). */
  readonly heartbeatInterval?: Duration.DurationInput | undefined
  /** Silence after which a worker or scheduler is dead. Default: 10 seconds (the reference: 5–15 s). */
  readonly peerTimeout?: Duration.DurationInput | undefined
  /** Added to a job's `timeout:N` before the broker stops waiting for its result. Default: 5 seconds. */
  readonly resultGrace?: Duration.DurationInput | undefined
  /** Obey DISCONNECT from any frontend peer, as the reference does. Default: false. */
  readonly frontendDisconnect?: boolean | undefined
  /**
   * The layout of the commands the broker sends (`Command.Profile`); it forwards SCHEDULE, UNSCHEDULE and
   * REQUEST re-encoded in it. Default: `"reference"` (EventMQ 0.3.13).
   */
  readonly profile?: Command.Profile | undefined
  /** How often heartbeats, reaping and deadlines are checked. Default: 500 millis. */
  readonly tickInterval?: Duration.DurationInput | undefined
}

/**
 * The ROUTER sockets a broker serves.
 *
 * @since 0.1.0
 * @category models
 */
export interface BrokerSockets {
  readonly frontend: Socket.Bind
  readonly backend: Socket.Bind
  readonly admin?: Socket.Bind | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface BrokerService {
  /** The admin `STATUS` answer: in-flight, waiting and processed messages by queue, latencies. */
  readonly status: Effect.Effect<Record<string, unknown>>
  /** The admin `ROUTER_SHOW_WORKERS` answer. */
  readonly workers: Effect.Effect<Record<string, unknown>>
  /** The admin `ROUTER_SHOW_SCHEDULERS` answer. */
  readonly schedulers: Effect.Effect<Record<string, unknown>>
  /** Shuts down as on an admin DISCONNECT: KBYE to everyone, waiting requests refused. */
  readonly shutdown: Effect.Effect<void>
  /** Completes when the broker has shut down (admin DISCONNECT or `shutdown`). */
  readonly awaitShutdown: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Broker extends Context.Tag("effect-wire/emqp/Broker")<Broker, BrokerService>() {}

const messagesIn = Metric.counter("emqp_broker_messages_received", { description: "eMQP messages received" })
const messagesOut = Metric.counter("emqp_broker_messages_sent", { description: "eMQP messages sent" })
const malformedIn = Metric.counter("emqp_broker_messages_malformed", { description: "messages that did not decode" })
const sendFailures = Metric.counter("emqp_broker_send_failures", {
  description: "sends that failed (peer gone or not reading)"
})
const refusals = Metric.counter("emqp_broker_refusals", { description: "requests refused with NACK" })

type Send = Extract<Output, { readonly _tag: "Send" }>

const millis = (input: Duration.DurationInput | undefined, fallback: number) =>
  input === undefined ? fallback : Duration.toMillis(Duration.decode(input))

/**
 * Runs a broker on the given sockets until the scope closes (which shuts it down gracefully) or an admin
 * DISCONNECT arrives.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeWith = (
  sockets: BrokerSockets,
  options: BrokerOptions = {}
): Effect.Effect<BrokerService, EmqpError, Scope.Scope> =>
  Effect.gen(function*() {
    const core = new BrokerCore({
      defaultQueues: options.defaultQueues ?? defaultOptions.defaultQueues,
      defaultQueueName: options.defaultQueueName ?? defaultOptions.defaultQueueName,
      queueCapacity: options.queueCapacity ?? defaultOptions.queueCapacity,
      heartbeatInterval: millis(options.heartbeatInterval, defaultOptions.heartbeatInterval),
      peerTimeout: millis(options.peerTimeout, defaultOptions.peerTimeout),
      resultGrace: millis(options.resultGrace, defaultOptions.resultGrace),
      frontendDisconnect: options.frontendDisconnect ?? false
    })
    const frontend = yield* sockets.frontend
    const backend = yield* sockets.backend
    const admin = sockets.admin ? yield* sockets.admin : undefined
    const stopped = yield* Deferred.make<void>()
    const profile = options.profile ?? "reference"
    const socketOf: Record<SocketName, Socket.MessageSocket | undefined> = { frontend, backend, admin }

    // Counted here and added to the metrics once per tick: a message costs an addition, not a metric update.
    const counts = { received: 0, sent: 0, malformed: 0, failed: 0, refused: 0 }
    const flushCounts = Effect.suspend(() => {
      const { failed, malformed, received, refused, sent } = counts
      counts.received = counts.sent = counts.malformed = counts.failed = counts.refused = 0
      return Effect.all([
        Metric.incrementBy(messagesIn, received),
        Metric.incrementBy(messagesOut, sent),
        Metric.incrementBy(malformedIn, malformed),
        Metric.incrementBy(sendFailures, failed),
        Metric.incrementBy(refusals, refused)
      ], { discard: true })
    })

    // Sends never wait (the reference sends with NOBLOCK): a peer that does not read fills its own queue and its
    // messages fail with EAGAIN — logged and counted, never silent — while everyone else is served. Queued at once
    // where the socket can (`trySendNow`); the Effect returned is only what is left to do: a failure to handle.
    const deliver = (output: Send, now: number): Effect.Effect<void> | undefined => {
      const socket = socketOf[output.socket]
      if (!socket) return undefined
      const message = [fromKey(output.peer), ...Command.encode(output.command, profile)]
      // Counted as sent up front and taken back on failure: no continuation per successful send.
      counts.sent++
      if (output.command._tag === "Nack") counts.refused++
      if (socket.trySendNow !== undefined) {
        const error = socket.trySendNow(message)
        return error === undefined ? undefined : notSent(output, error, now)
      }
      return Effect.catchAll(socket.trySend(message), (error) => notSent(output, error, now))
    }

    const notSent = (output: Send, error: EmqpError, now: number): Effect.Effect<void> => {
      counts.sent--
      if (output.command._tag === "Nack") counts.refused--
      counts.failed++
      const warning = Effect.logWarning(`could not send ${output.command._tag} on ${output.socket}: ${error.message}`)
      return error.code === "EHOSTUNREACH" ? Effect.zipRight(warning, run(core.unreachable(output, now), now)) : warning
    }

    const perform = (output: Exclude<Output, Send>): Effect.Effect<void> => {
      switch (output._tag) {
        case "Log":
          return output.level === "Debug"
            ? Effect.logDebug(output.message)
            : output.level === "Info"
            ? Effect.logInfo(output.message)
            : Effect.logWarning(output.message)
        case "Shutdown":
          return Deferred.succeed(stopped, undefined)
      }
    }

    /** Sends go out as they come; the rest (logs, failures, the shutdown signal) runs afterwards, in order. */
    const run = (outputs: Array<Output>, now: number): Effect.Effect<void> => {
      let rest: Array<Effect.Effect<void>> | undefined
      for (const output of outputs) {
        const effect = output._tag === "Send" ? deliver(output, now) : perform(output)
        if (effect !== undefined) (rest ??= []).push(effect)
      }
      return rest === undefined ? Effect.void : rest.length === 1 ? rest[0]! : Effect.all(rest, { discard: true })
    }

    const serve = (name: SocketName, socket: Socket.MessageSocket) =>
      socket.receive.pipe(
        Effect.flatMap((message) => {
          if (message.length === 0) return Effect.void
          const peer = toKey(message[0]!)
          const decoded = Command.decode(message, 1)
          return Effect.clockWith((clock) => {
            const now = clock.unsafeCurrentTimeMillis()
            if (Either.isRight(decoded)) {
              counts.received++
              return run(core.handle(name, peer, decoded.right, now), now)
            }
            counts.malformed++
            return run(core.malformed(name, peer, decoded.left, now), now)
          })
        }),
        loop,
        Effect.catchAll((error) => Effect.logError(`the ${name} socket failed: ${error.message}`)),
        Effect.annotateLogs({ "emqp.socket": name })
      )

    yield* Effect.forkScoped(serve("frontend", frontend))
    yield* Effect.forkScoped(serve("backend", backend))
    if (admin) yield* Effect.forkScoped(serve("admin", admin))
    yield* Effect.forkScoped(
      Effect.repeat(
        Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.zipRight(run(core.tick(now), now), flushCounts)),
        Schedule.spaced(options.tickInterval ?? Duration.millis(500))
      )
    )
    // Closing the scope says goodbye to everyone; the sockets' linger then flushes what is queued.
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.zipRight(run(core.shutdown(), now), flushCounts))
    )

    return Broker.of({
      status: Effect.map(Clock.currentTimeMillis, (now) => core.status(now)),
      workers: Effect.sync(() => core.showWorkers()),
      schedulers: Effect.sync(() => core.showSchedulers()),
      shutdown: Effect.flatMap(Clock.currentTimeMillis, (now) => run(core.shutdown(), now)),
      awaitShutdown: Deferred.await(stopped)
    })
  }).pipe(Effect.annotateLogs({ "emqp.role": "broker" }), Effect.withScheduler(ioScheduler))

/**
 * The reference's addresses: frontend (clients, schedulers), backend (workers) and admin.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultAddresses = {
  frontend: "tcp://127.0.0.1:47291",
  backend: "tcp://127.0.0.1:47290",
  admin: "tcp://127.0.0.1:47293"
} as const

/**
 * @since 0.1.0
 * @category models
 */
export interface BrokerAddressOptions extends BrokerOptions, Socket.SocketOptions {
  /** Default: `tcp://127.0.0.1:47291`. */
  readonly frontend?: string | undefined
  /** Default: `tcp://127.0.0.1:47290`. */
  readonly backend?: string | undefined
  /** Default: `tcp://127.0.0.1:47293`; `false` for no admin socket. */
  readonly admin?: string | false | undefined
}

/**
 * A broker on ZMTP ROUTERs bound to its addresses (the reference's defaults unless given).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: BrokerAddressOptions = {}): Effect.Effect<BrokerService, EmqpError, Scope.Scope> =>
  makeWith({
    frontend: Socket.router(options.frontend ?? defaultAddresses.frontend, options),
    backend: Socket.router(options.backend ?? defaultAddresses.backend, options),
    admin: options.admin === false ? undefined : Socket.router(options.admin ?? defaultAddresses.admin, options)
  }, options)

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: BrokerAddressOptions = {}): Layer.Layer<Broker, EmqpError> =>
  Layer.scoped(Broker, make(options))

/**
 * The broker's settings from configuration, under the reference's names: `FRONTEND_ADDR`, `BACKEND_ADDR`,
 * `ADMINISTRATIVE_ADDR`, `HWM` (queue capacity), `HEARTBEAT_INTERVAL` and `PEER_TIMEOUT` (seconds).
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<BrokerAddressOptions> = Config.all({
  frontend: Config.withDefault(Config.string("FRONTEND_ADDR"), defaultAddresses.frontend),
  backend: Config.withDefault(Config.string("BACKEND_ADDR"), defaultAddresses.backend),
  admin: Config.withDefault(Config.string("ADMINISTRATIVE_ADDR"), defaultAddresses.admin),
  queueCapacity: Config.withDefault(Config.integer("HWM"), 10_000),
  heartbeatInterval: Config.map(Config.withDefault(Config.number("HEARTBEAT_INTERVAL"), 3), Duration.seconds),
  peerTimeout: Config.map(Config.withDefault(Config.number("PEER_TIMEOUT"), 10), Duration.seconds)
})

/**
 * A broker configured from `config` (wrap it, e.g. `Config.nested(Broker.config, "EVENTMQ")`, to read
 * `EVENTMQ_FRONTEND_ADDR` and friends).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (settings: Config.Config<BrokerAddressOptions> = config): Layer.Layer<Broker, EmqpError | ConfigError.ConfigError> =>
  Layer.scoped(Broker, Effect.flatMap(settings, make))
