/**
 * A connection that survives broker restarts, forced closes and network failures.
 *
 * `Recovery.make` connects to one of several brokers (rotating on failure, retrying on a `Schedule` with
 * jittered exponential backoff) and, whenever the connection is lost, connects again and restores what the
 * program had built on it:
 *
 * - channels, with their confirm mode and prefetch;
 * - the topology declared through them — exchanges, queues and bindings, recorded as they are declared and
 *   forgotten when deleted; a server-named queue gets a new name and its bindings and consumers follow it;
 * - consumers: a `consume` stream goes on across reconnects. Deliveries of the old connection can no longer be
 *   acked (their `ack` fails with the old connection's error) and the broker redelivers them flagged
 *   `redelivered`;
 * - publishes: a publish interrupted by the loss (on a confirm channel: sent but not yet confirmed) is sent again
 *   on the new connection (`publishRecovery: "retry"`, the default: at least once) or fails with
 *   `RecoveryError` `PublishInterrupted` (`"fail"`). It is never dropped silently.
 *
 * `states` reports every step (`ConnectionState`), and `beforeRecovery` / `afterRecovery` hooks let programs
 * run their own Effects around a recovery. Errors that reconnecting cannot fix (refused credentials or virtual
 * host, the program's own close) end the connection instead.
 *
 * Option semantics, documented once:
 * - `hosts`: `"host"`, `"host:port"` or `{ host, port }`, tried in order from the one that last worked; the
 *   other options (credentials, vhost, TLS, heartbeat, …) apply to every host. Default: the host of `url`/`host`.
 * - `schedule`: the delay between failed attempts, fed with each attempt's error. Default `defaultSchedule`
 *   (50 ms doubling up to 1 s, jittered, forever). When it ends, the connection ends (`GaveUp`).
 * - `connectionTimeout` bounds each attempt (connect and handshake).
 *
 * @example
 * ```ts
 * import { Recovery } from "effect-wire/amqp"
 * import * as Effect from "effect/Effect"
 * import * as Stream from "effect/Stream"
 *
 * const program = Effect.gen(function*() {
 *   const amqp = yield* Recovery.make({ url: "amqp://guest:guest@rabbit-1", hosts: ["rabbit-1", "rabbit-2"] })
 *   const channel = yield* amqp.channel({ confirm: true, prefetch: 100 })
 *   const { queue } = yield* channel.queueDeclare("jobs", { durable: true })
 *   yield* channel.consume(queue).pipe(Stream.runForEach((delivery) => delivery.ack()), Effect.fork)
 *   yield* channel.publish("", queue, new TextEncoder().encode("hello"))
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Equal from "effect/Equal"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SubscriptionRef from "effect/SubscriptionRef"
import type { AmqpChannel, ChannelOptions, ExchangeDeclareOptions, QueueDeclareOptions, QueueDeclared } from "./Channel.js"
import { type ClientError, isRecoverable } from "./ClientError.js"
import * as Connection from "./Connection.js"
import { ConnectionState } from "./ConnectionState.js"
import type { ConsumeOptions, Delivery } from "./Consumer.js"
import * as RecoveringChannelImpl from "./internal/recovery/channel.js"
import { type Generation, isConnectionError, Link, Slot } from "./internal/recovery/link.js"
import { Topology } from "./internal/recovery/topology.js"
import type { PublishOptions } from "./Publisher.js"
import type { FieldTable } from "./Table.js"
import * as Uri from "./Uri.js"

/**
 * Why a recovering connection or one of its operations gave up.
 *
 * - `PublishInterrupted`: the connection was lost while the publish was unconfirmed, with
 *   `publishRecovery: "fail"`. The message may or may not have reached the broker.
 * - `GaveUp`: the schedule ran out of attempts; `cause` is the last attempt's error.
 * - `Fatal`: an error reconnecting cannot fix (credentials, virtual host, protocol); `cause` says which.
 * - `Closed`: the recovering connection or channel was closed by the program.
 *
 * @since 0.1.0
 * @category errors
 */
export class RecoveryError extends Data.TaggedError("RecoveryError")<{
  readonly reason: "PublishInterrupted" | "GaveUp" | "Fatal" | "Closed"
  readonly detail: string
  readonly cause?: ClientError | Uri.UriError | undefined
}> {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/**
 * A broker to connect to.
 *
 * @since 0.1.0
 * @category models
 */
export type Host = string | { readonly host: string; readonly port?: number | undefined }

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Connection.Options {
  readonly hosts?: ReadonlyArray<Host> | undefined
  readonly schedule?: Schedule.Schedule<unknown, ClientError | Uri.UriError> | undefined
  /** What happens to a publish the connection loss interrupted. Default `"retry"`. */
  readonly publishRecovery?: "retry" | "fail" | undefined
  /** Runs once the connection is lost, before reconnecting. */
  readonly beforeRecovery?: ((error: ClientError) => Effect.Effect<void>) | undefined
  /** Runs after a reconnect, once channels and topology are restored (consumers restart meanwhile). */
  readonly afterRecovery?: ((connection: Connection.AmqpConnection) => Effect.Effect<void>) | undefined
}

/**
 * The retry schedule used unless `schedule` is given: 50 ms doubling up to 1 s, jittered, forever. After a broker
 * comes back, the next attempt is at most about 1.2 s away.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultSchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential("50 millis", 2).pipe(
  Schedule.union(Schedule.spaced("1 second")),
  Schedule.jittered
)

/**
 * A channel that outlives connections. Same operations as `AmqpChannel`, minus transactions (a transaction
 * cannot survive a reconnect; use confirms).
 *
 * @since 0.1.0
 * @category models
 */
export interface RecoveringChannel {
  readonly exchangeDeclare: (
    exchange: string,
    type: "direct" | "fanout" | "topic" | "headers" | (string & {}),
    options?: ExchangeDeclareOptions
  ) => Effect.Effect<void, ClientError | RecoveryError>
  readonly exchangeDelete: (
    exchange: string,
    options?: { readonly ifUnused?: boolean | undefined }
  ) => Effect.Effect<void, ClientError | RecoveryError>
  readonly exchangeBind: (
    destination: string,
    source: string,
    routingKey?: string,
    args?: FieldTable
  ) => Effect.Effect<void, ClientError | RecoveryError>
  readonly exchangeUnbind: (
    destination: string,
    source: string,
    routingKey?: string,
    args?: FieldTable
  ) => Effect.Effect<void, ClientError | RecoveryError>
  /** Declares a queue and records it; a server-named queue (empty name) is renamed by each recovery. */
  readonly queueDeclare: (queue?: string, options?: QueueDeclareOptions) => Effect.Effect<QueueDeclared, ClientError | RecoveryError>
  readonly queueBind: (
    queue: string,
    exchange: string,
    routingKey?: string,
    args?: FieldTable
  ) => Effect.Effect<void, ClientError | RecoveryError>
  readonly queueUnbind: (
    queue: string,
    exchange: string,
    routingKey?: string,
    args?: FieldTable
  ) => Effect.Effect<void, ClientError | RecoveryError>
  readonly queuePurge: (queue: string) => Effect.Effect<number, ClientError | RecoveryError>
  readonly queueDelete: (
    queue: string,
    options?: { readonly ifUnused?: boolean | undefined; readonly ifEmpty?: boolean | undefined }
  ) => Effect.Effect<number, ClientError | RecoveryError>
  /** Sets the prefetch now and on every recovered channel. */
  readonly qos: (prefetchCount: number, options?: { readonly global?: boolean | undefined }) => Effect.Effect<void, ClientError | RecoveryError>
  /** Switches to confirms now and on every recovered channel. */
  readonly confirmSelect: Effect.Effect<void, ClientError | RecoveryError>
  /**
   * Consumes a queue; the stream goes on across reconnects and fails only with errors recovery cannot fix
   * (`ConsumerCancelled`, a broker refusal, `RecoveryError`).
   */
  readonly consume: (queue: string, options?: ConsumeOptions) => Stream.Stream<Delivery, ClientError | RecoveryError>
  readonly get: (queue: string, options?: { readonly noAck?: boolean | undefined }) => Effect.Effect<Option.Option<Delivery>, ClientError | RecoveryError>
  /**
   * Publishes; on a confirm channel, completes when the broker confirms. A publish the connection loss
   * interrupted is retried on the next connection or fails with `PublishInterrupted` (`publishRecovery`).
   * While disconnected, publishes wait for the next connection.
   */
  readonly publish: (
    exchange: string,
    routingKey: string,
    body: Uint8Array,
    options?: PublishOptions
  ) => Effect.Effect<void, ClientError | RecoveryError>
  /** The channel of the current connection (waits while reconnecting). */
  readonly current: Effect.Effect<AmqpChannel, ClientError | RecoveryError>
  /** Closes the channel (also done when its scope closes). */
  readonly close: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface RecoveringConnection {
  /** Every state change, starting with the current state. */
  readonly states: Stream.Stream<ConnectionState>
  readonly state: Effect.Effect<ConnectionState>
  /** The current connection (waits while reconnecting). */
  readonly connection: Effect.Effect<Connection.AmqpConnection, RecoveryError>
  /** Opens a recovering channel, closed when the scope closes. */
  readonly channel: (options?: ChannelOptions) => Effect.Effect<RecoveringChannel, ClientError | RecoveryError, Scope.Scope>
  /** Waits until the connection ends for good: succeeds after `close`, fails when recovery gave up. */
  readonly closed: Effect.Effect<void, RecoveryError>
  /** Closes the connection and stops recovering (also done when its scope closes). */
  readonly close: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Recovering extends Context.Tag("effect-wire/amqp/Recovery/Recovering")<Recovering, RecoveringConnection>() {}

/**
 * A layer configured from `Config`: `AMQP_URL` (redacted; default `amqp://localhost`), optional
 * `AMQP_CONNECTION_NAME` and `AMQP_HOSTS` (comma-separated `host[:port]` list), plus any explicit options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options> = Config.all({
    url: Config.withDefault(Config.redacted("AMQP_URL"), Redacted.make("amqp://localhost")),
    connectionName: Config.option(Config.string("AMQP_CONNECTION_NAME")).pipe(Config.map(Option.getOrUndefined)),
    hosts: Config.option(Config.array(Config.string(), "AMQP_HOSTS")).pipe(Config.map(Option.getOrUndefined))
  })
): Layer.Layer<Recovering, RecoveryError | ConfigError.ConfigError> => Layer.scoped(Recovering, Effect.flatMap(config, make))

const retireGrace = "1 second"

interface Target {
  readonly label: string
  readonly options: Connection.Options
}

const targets = (options: Options): ReadonlyArray<Target> => {
  if (options.hosts === undefined || options.hosts.length === 0 || options.transport !== undefined) {
    const url = options.url === undefined ? undefined : Uri.parseEither(Redacted.isRedacted(options.url) ? Redacted.value(options.url) : options.url)
    const uri = url?._tag === "Right" ? url.right : undefined
    const label = options.transport !== undefined
      ? "transport"
      : `${options.host ?? uri?.host ?? "localhost"}:${options.port ?? uri?.port ?? 5672}`
    return [{ label, options }]
  }
  return options.hosts.map((h) => {
    const { host, port } = typeof h === "string" ? splitHost(h) : h
    return {
      label: port === undefined ? host : `${host}:${port}`,
      options: { ...options, host, ...(port === undefined ? {} : { port }) }
    }
  })
}

const splitHost = (s: string): { readonly host: string; readonly port: number | undefined } => {
  const m = /^\[(.+)\](?::(\d+))?$/.exec(s) ?? /^([^:]+)(?::(\d+))?$/.exec(s)
  return m === null ? { host: s, port: undefined } : { host: m[1]!, port: m[2] === undefined ? undefined : Number(m[2]) }
}

/**
 * Connects (following the hosts and the schedule) and keeps the connection up until the scope closes. Fails
 * when the first connection cannot be made (`Fatal` at once, `GaveUp` when the schedule ends).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<RecoveringConnection, RecoveryError, Scope.Scope> =>
  Effect.gen(function*() {
    const hosts = targets(options)
    const schedule = options.schedule ?? defaultSchedule
    const retryPublishes = options.publishRecovery !== "fail"
    const state = yield* SubscriptionRef.make<ConnectionState>(ConnectionState.Connecting({ attempt: 1, host: hosts[0]!.label }))
    let last: ConnectionState = yield* SubscriptionRef.get(state)
    const setState = (next: ConnectionState) =>
      Effect.suspend(() => {
        if (Equal.equals(last, next)) return Effect.void
        last = next
        return SubscriptionRef.set(state, next)
      })
    const link = new Link()
    const topology = new Topology()
    const slots = new Set<Slot>()
    // Held while a generation is being restored, and while a channel is opened or reopened.
    const lock = yield* Effect.makeSemaphore(1)
    const ended = yield* Deferred.make<void, RecoveryError>()
    let cursor = 0
    let generations = 0
    let closing = false

    const restore = (generation: Generation, recovering: boolean) =>
      Effect.gen(function*() {
        yield* topology.replay(generation.connection, (what, error) =>
          Effect.logWarning(`recovery: the broker refused to redeclare ${what}`).pipe(
            Effect.annotateLogs({ replyCode: error._tag === "ChannelClosed" ? error.replyCode : undefined, error: error.message })
          ))
        for (const slot of slots) {
          yield* slot.open(generation).pipe(
            Effect.catchIf((error) => !isConnectionError(error), (error) =>
              Effect.sync(() => {
                // Refused by the broker (a prefetch it rejects, …): the next use tries again and reports it.
                slot.broken = true
              }).pipe(Effect.zipRight(Effect.logWarning(`amqp recovery: a channel could not be reopened: ${error.message}`))))
          )
        }
        link.set({ _tag: "Up", generation })
        yield* setState(ConnectionState.Connected({ host: generation.host, generation: generation.id }))
      }).pipe(
        lock.withPermits(1),
        Effect.zipRight(recovering && options.afterRecovery !== undefined ? options.afterRecovery(generation.connection) : Effect.void)
      )

    // The scope of a lost connection (or of a failed attempt) is closed a moment later, off the recovery path:
    // its teardown (the reader's finish, the close deadline) never holds up the next connection.
    const makeScope = yield* Effect.scope
    const retire = (scope: Scope.CloseableScope) =>
      Effect.sleep(retireGrace).pipe(
        Effect.ensuring(Scope.close(scope, Exit.void)),
        Effect.forkIn(makeScope),
        Effect.asVoid
      )

    /** One connection with everything restored, or the reason to stop trying. */
    const establish = (recovering: boolean): Effect.Effect<Generation, RecoveryError> =>
      Effect.gen(function*() {
        const driver = yield* Schedule.driver(schedule)
        let attempt = 0
        while (true) {
          attempt++
          const target = hosts[cursor]!
          yield* setState(
            recovering
              ? ConnectionState.Reconnecting({ attempt, host: target.label })
              : ConnectionState.Connecting({ attempt, host: target.label })
          )
          const scope = yield* Scope.make()
          const exit = yield* Effect.exit(Effect.gen(function*() {
            const connection = yield* Scope.extend(Connection.make(target.options), scope)
            const generation: Generation = { id: ++generations, host: target.label, connection, scope }
            yield* restore(generation, recovering)
            return generation
          })).pipe(Effect.onInterrupt(() => Scope.close(scope, Exit.void)))
          if (Exit.isSuccess(exit)) return exit.value
          yield* retire(scope)
          const failure = Chunk.head(Cause.failures(exit.cause)).pipe(Option.getOrUndefined)
          if (failure === undefined) return yield* Effect.die(Cause.squash(exit.cause))
          if (failure._tag === "UriError" || !(isRecoverable(failure) || failure._tag === "Timeout")) {
            return yield* new RecoveryError({ reason: "Fatal", detail: `${target.label}: ${failure.message}`, cause: failure })
          }
          cursor = (cursor + 1) % hosts.length
          yield* Effect.logDebug(`amqp recovery: attempt ${attempt} on ${target.label} failed: ${failure.message}`)
          const next = yield* Effect.either(driver.next(failure))
          if (next._tag === "Left") {
            return yield* new RecoveryError({ reason: "GaveUp", detail: `no broker after ${attempt} attempts`, cause: failure })
          }
        }
      })

    const end = (error: RecoveryError | undefined, cause: ClientError | undefined) =>
      Effect.gen(function*() {
        link.set({ _tag: "Ended", error: cause })
        yield* setState(ConnectionState.Closed({ error: cause }))
        yield* Deferred.done(ended, error === undefined ? Exit.void : Exit.fail(error))
      })

    const watchBlocked = (generation: Generation) =>
      generation.connection.blocked.pipe(
        Stream.runForEach((blocked) =>
          link.status._tag === "Up" && link.status.generation === generation
            ? setState(
              blocked._tag === "Blocked"
                ? ConnectionState.Blocked({ host: generation.host, reason: blocked.reason })
                : ConnectionState.Connected({ host: generation.host, generation: generation.id })
            )
            : Effect.void
        ),
        Effect.forkIn(generation.scope)
      )

    const supervise = (first: Generation): Effect.Effect<void> =>
      Effect.gen(function*() {
        let generation = first
        while (true) {
          yield* watchBlocked(generation)
          const outcome = yield* Effect.either(generation.connection.closed)
          yield* lock.withPermits(1)(Effect.sync(() => link.set({ _tag: "Down" })))
          yield* retire(generation.scope)
          const error = outcome._tag === "Left" ? outcome.left : undefined
          if (closing || error === undefined || !isRecoverable(error)) {
            return yield* end(
              closing || error === undefined ? undefined : new RecoveryError({ reason: "Fatal", detail: error.message, cause: error }),
              closing ? undefined : error
            )
          }
          yield* setState(ConnectionState.Disconnected({ error }))
          yield* Effect.logWarning(`amqp recovery: connection to ${generation.host} lost: ${error.message}`)
          if (options.beforeRecovery !== undefined) yield* options.beforeRecovery(error)
          const next = yield* Effect.either(establish(true))
          if (next._tag === "Left") return yield* end(next.left, next.left.cause?._tag === "UriError" ? undefined : next.left.cause)
          generation = next.right
        }
      })

    const first = yield* establish(false).pipe(
      Effect.tapError((error) => end(error, error.cause?._tag === "UriError" ? undefined : error.cause))
    )
    const close = Effect.suspend(() => {
      if (closing) return Deferred.await(ended).pipe(Effect.ignore)
      closing = true
      const status = link.status
      return Effect.gen(function*() {
        yield* Effect.interruptible(Fiber.interrupt(supervisor))
        if (status._tag === "Up") yield* Scope.close(status.generation.scope, Exit.void)
        yield* end(undefined, undefined)
      })
    })
    const supervisor = yield* Effect.forkDaemon(supervise(first))
    yield* Effect.addFinalizer(() => close)

    const closedError = new RecoveryError({ reason: "Closed", detail: "the recovering connection is closed" })
    const awaitGeneration = (after: number) =>
      Effect.flatMap(link.await(after), (generation) =>
        generation !== undefined
          ? Effect.succeed(generation)
          : Effect.flatMap(Deferred.await(ended), () => Effect.fail(closedError)))

    const connection: RecoveringConnection = {
      states: state.changes,
      state: SubscriptionRef.get(state),
      connection: Effect.map(awaitGeneration(0), (g) => g.connection),
      channel: (channelOptions) => RecoveringChannelImpl.make({ slots, lock, link, topology, awaitGeneration, retryPublishes }, channelOptions),
      closed: Deferred.await(ended),
      close
    }
    return connection
  }).pipe(Effect.withSpan("amqp.recovery.connect", { attributes: { "messaging.system": "rabbitmq" } }))

/**
 * A layer holding a recovering connection for the lifetime of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Recovering, RecoveryError> => Layer.scoped(Recovering, make(options))
