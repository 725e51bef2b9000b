/**
 * An AMQP 0-9-1 connection to RabbitMQ as a scoped resource.
 *
 * Acquiring it connects, runs the handshake (SASL, tune, open) and starts three fibers: a reader that
 * demultiplexes frames to channels, a writer that coalesces outbound frames into few writes (the frames of one
 * message are never interleaved with other frames of its channel), and a heartbeat that writes when the
 * connection has been idle for half the interval and fails the connection after two silent intervals. Releasing
 * it runs `connection.close` with a deadline and closes the socket; everything still pending fails with a typed
 * error.
 *
 * Option semantics, documented once:
 * - `heartbeat`: `"server"` (default) accepts the broker's value; a duration negotiates it (the smaller of two
 *   non-zero values); `"disabled"` sends 0 in `tune-ok`.
 * - `frameMax`: default 131072, never below 8192; `channelMax`: default the broker's.
 * - `connectionTimeout` (default 10 s) bounds connect + handshake; `closeTimeout` (default 5 s) bounds close
 *   handshakes.
 * - While the broker blocks the connection (`connection.blocked`), publishes wait up to `blockedTimeout`
 *   (default 30 s), at most `maxBlockedPublishes` (default 1024) at a time.
 *
 * @example
 * ```ts
 * import { Connection } from "effect-wire/amqp"
 * import * as Effect from "effect/Effect"
 *
 * const AmqpLive = Connection.layer({ url: "amqp://guest:guest@localhost:5672/%2f", connectionName: "billing" })
 *
 * const program = Effect.gen(function*() {
 *   const connection = yield* Connection.Connection
 *   const channel = yield* connection.channel()
 *   yield* channel.queueDeclare("jobs")
 * }).pipe(Effect.scoped, Effect.provide(AmqpLive))
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import * as Fs from "node:fs/promises"
import * as Tcp from "../transport/Tcp.js"
import * as Tls from "../transport/Tls.js"
import type { Transport } from "../transport/Transport.js"
import type { TransportError } from "../transport/TransportError.js"
import type { BlockedState } from "./Blocked.js"
import type { AmqpChannel, ChannelOptions } from "./Channel.js"
import { type ClientError, ConnectionFailed } from "./ClientError.js"
import * as ClientProperties from "./ClientProperties.js"
import * as Frame from "./Frame.js"
import * as ChannelImpl from "./internal/client/channel.js"
import { Engine } from "./internal/client/engine.js"
import { Gate } from "./internal/client/gate.js"
import * as Handshake from "./internal/client/handshake.js"
import * as Heartbeat from "./internal/client/heartbeat.js"
import * as Tune from "./internal/client/tune.js"
import { ioScheduler } from "../internal/ioScheduler.js"
import * as Writer from "./internal/client/writer.js"
import type * as Sasl from "./Sasl.js"
import type { FieldTable } from "./Table.js"
import * as Uri from "./Uri.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** `amqp[s]://user:password@host:port/vhost?heartbeat=…`; explicit options below override it. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  /** Default `localhost`. */
  readonly host?: string | undefined
  /** Default 5672, or 5671 with TLS. */
  readonly port?: number | undefined
  /**
   * Connect with TLS: `true` for the defaults (verify the broker's certificate), or TLS client options. An
   * `amqps://` URL turns it on, with RabbitMQ's query options (`cacertfile`, `certfile`, `keyfile`, `password`,
   * `verify`, `server_name_indication`); options given here override the URL's.
   */
  readonly tls?: boolean | Tls.ClientOptions | undefined
  /** Default `guest`. */
  readonly username?: string | undefined
  /** Default `guest`. */
  readonly password?: Redacted.Redacted<string> | undefined
  /** Default `/`. */
  readonly vhost?: string | undefined
  readonly heartbeat?: Tune.HeartbeatOption | undefined
  readonly frameMax?: number | undefined
  readonly channelMax?: number | undefined
  readonly connectionTimeout?: Duration.DurationInput | undefined
  readonly closeTimeout?: Duration.DurationInput | undefined
  /** SASL mechanisms in order of preference. Default `["PLAIN", "AMQPLAIN"]`. */
  readonly authMechanisms?: ReadonlyArray<Sasl.Mechanism> | undefined
  /** Shown in the management UI. */
  readonly connectionName?: string | undefined
  /** Extra client properties (strings). */
  readonly clientProperties?: Readonly<Record<string, string>> | undefined
  readonly locale?: string | undefined
  readonly blockedTimeout?: Duration.DurationInput | undefined
  readonly maxBlockedPublishes?: number | undefined
  /** Largest inbound message body accepted; a larger one closes the connection (501). Default 128 MiB. */
  readonly maxMessageSize?: number | undefined
  /** Outbound jobs (messages, methods) queued before publishers wait. Default 1024. */
  readonly writeQueueSize?: number | undefined
  /** `TCP_NODELAY`. Default `true`. */
  readonly noDelay?: boolean | undefined
  /** Use this transport instead of TCP/TLS (in-memory pairs in tests, custom tunnels). */
  readonly transport?: Effect.Effect<Transport, TransportError, Scope.Scope> | undefined
}

/**
 * What `tune-ok` settled.
 *
 * @since 0.1.0
 * @category models
 */
export interface Tuned {
  readonly channelMax: number
  /** 0 when neither side limits it. */
  readonly frameMax: number
  /** Seconds; 0 when disabled. */
  readonly heartbeat: number
}

/**
 * An open connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface AmqpConnection {
  /** The broker's `server-properties` (product, version, capabilities, …). */
  readonly serverProperties: FieldTable
  readonly tuned: Tuned
  /** `connection.blocked` / `unblocked` as a stream of states, starting with the current one. */
  readonly blocked: Stream.Stream<BlockedState>
  /** Waits until the connection ends, failing with the reason (a normal close is a `ConnectionClosed` 200). */
  readonly closed: Effect.Effect<void, ClientError>
  /** Opens a channel, closed when the scope closes. */
  readonly channel: (options?: ChannelOptions) => Effect.Effect<AmqpChannel, ClientError, Scope.Scope>
  /** Replaces the credential (an OAuth 2 token) on the live connection (`connection.update-secret`). */
  readonly updateSecret: (secret: Redacted.Redacted<string>, reason: string) => Effect.Effect<void, ClientError>
  /** Closes the connection now (also done when its scope closes). */
  readonly close: Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Connection extends Context.Tag("effect-wire/amqp/Connection")<Connection, AmqpConnection>() {}

const defaults = {
  connectionTimeout: Duration.seconds(10),
  closeTimeout: Duration.seconds(5),
  blockedTimeout: Duration.seconds(30),
  maxBlockedPublishes: 1024,
  maxMessageSize: 128 * 1024 * 1024,
  writeQueueSize: 1024
}

/** Inbound frames are capped even when `frame_max` is 0 ("no limit"). */
const unlimitedFrameCap = 16 * 1024 * 1024

interface Resolved extends Options {
  readonly host: string
  readonly port: number
  readonly username: string
  readonly password: Redacted.Redacted<string>
  readonly vhost: string
}

const readPem = (path: string, key: string): Effect.Effect<Uint8Array, Uri.UriError> =>
  Effect.tryPromise({
    try: (signal) => Fs.readFile(path, { signal }),
    catch: (cause) =>
      new Uri.UriError({
        reason: "File",
        detail: `${key}=${path} cannot be read: ${cause instanceof Error ? cause.message : String(cause)}`
      })
  })

/**
 * The TLS client options of an `amqps://` URI's query, RabbitMQ's names: `cacertfile`, `certfile`, `keyfile`
 * (and `password`, its passphrase) are read from disk; `verify=verify_none` turns verification off;
 * `server_name_indication` is the name sent and checked. `fail_if_no_peer_cert` and `depth` are server settings
 * and have no client meaning.
 */
const tlsFromQuery = (query: Uri.TlsQuery): Effect.Effect<Tls.ClientOptions, Uri.UriError> =>
  Effect.gen(function*() {
    const ca = query.caFile === undefined ? undefined : yield* readPem(query.caFile, "cacertfile")
    const cert = query.certFile === undefined ? undefined : yield* readPem(query.certFile, "certfile")
    const key = query.keyFile === undefined ? undefined : yield* readPem(query.keyFile, "keyfile")
    return {
      ...(ca !== undefined ? { ca } : {}),
      ...(cert !== undefined ? { cert } : {}),
      ...(key !== undefined ? { key: Redacted.make(key) } : {}),
      ...(query.passphrase !== undefined ? { passphrase: query.passphrase } : {}),
      ...(query.serverName !== undefined ? { servername: query.serverName } : {}),
      ...(query.verify !== undefined ? { rejectUnauthorized: query.verify } : {})
    }
  })

const resolve = (options: Options): Effect.Effect<Resolved, Uri.UriError> =>
  Effect.gen(function*() {
    const uri = options.url === undefined ? undefined : yield* Uri.parse(options.url)
    const wanted = options.tls ?? (uri?.tls === true ? true : undefined)
    // The URI's TLS settings apply when TLS is on; explicit `tls` options override them one by one.
    const fromUri = wanted !== undefined && wanted !== false && uri?.tlsOptions !== undefined
      ? yield* tlsFromQuery(uri.tlsOptions)
      : undefined
    const tls = fromUri === undefined ? wanted : wanted === true ? fromUri : { ...fromUri, ...wanted }
    return {
      ...options,
      host: options.host ?? uri?.host ?? "localhost",
      port: options.port ?? uri?.port ?? (tls !== undefined && tls !== false ? 5671 : 5672),
      tls,
      username: options.username ?? uri?.username ?? "guest",
      password: options.password ?? uri?.password ?? Redacted.make("guest"),
      vhost: options.vhost ?? uri?.vhost ?? "/",
      heartbeat: options.heartbeat ?? uri?.heartbeat,
      frameMax: options.frameMax ?? uri?.frameMax,
      channelMax: options.channelMax ?? uri?.channelMax,
      connectionTimeout: options.connectionTimeout ?? uri?.connectionTimeout,
      authMechanisms: options.authMechanisms ?? uri?.authMechanisms,
      connectionName: options.connectionName ?? uri?.connectionName,
      locale: options.locale ?? uri?.locale
    }
  })

/**
 * Connects and opens an AMQP connection, closed when the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<AmqpConnection, ClientError | Uri.UriError, Scope.Scope> =>
  Effect.gen(function*() {
    const o = yield* resolve(options)
    const connectionTimeout = Duration.decode(o.connectionTimeout ?? defaults.connectionTimeout)
    const closeTimeout = Duration.decode(o.closeTimeout ?? defaults.closeTimeout)
    const parser = new Frame.Parser({ maxFrameSize: Tune.frameMaxDefault })

    const opened = yield* Effect.gen(function*() {
      const transport = yield* (o.transport ?? openSocket(o, connectionTimeout)).pipe(
        Effect.mapError((cause) =>
          new ConnectionFailed({ reason: "Unreachable", detail: `cannot connect to ${o.host}:${o.port}: ${cause.message}`, cause })
        )
      )
      const result = yield* Handshake.run(transport, parser, {
        username: o.username,
        password: o.password,
        vhost: o.vhost,
        mechanisms: o.authMechanisms ?? ["PLAIN", "AMQPLAIN"],
        clientProperties: ClientProperties.make({ connectionName: o.connectionName, extra: o.clientProperties }),
        locale: o.locale ?? "en_US",
        wanted: {
          channelMax: o.channelMax ?? 0,
          frameMax: o.frameMax ?? Tune.frameMaxDefault,
          heartbeat: o.heartbeat ?? "server"
        }
      }).pipe(Effect.onError(() => transport.abort()))
      return { transport, ...result }
    }).pipe(
      Effect.timeoutFail({
        duration: connectionTimeout,
        onTimeout: () =>
          new ConnectionFailed({ reason: "Timeout", detail: `handshake with ${o.host}:${o.port} took longer than ${Duration.format(connectionTimeout)}` })
      })
    )

    const { transport, tuned } = opened
    parser.maxFrameSize = tuned.frameMax === 0 ? unlimitedFrameCap : tuned.frameMax
    const now = yield* Clock.currentTimeMillis
    const activity: Heartbeat.Activity = { lastRead: now, lastWrite: now }
    const gate = yield* Gate.make(o.blockedTimeout ?? defaults.blockedTimeout, o.maxBlockedPublishes ?? defaults.maxBlockedPublishes)
    const engine = new Engine(transport, {
      frameMax: tuned.frameMax,
      channelMax: tuned.channelMax,
      closeTimeout,
      maxMessageSize: o.maxMessageSize ?? defaults.maxMessageSize
    }, gate, activity, parser)
    engine.writer = yield* Writer.make({
      transport,
      capacity: o.writeQueueSize ?? defaults.writeQueueSize,
      frameMax: tuned.frameMax,
      activity,
      check: engine.check,
      onWriteError: (cause) =>
        engine.lost("Transport", cause instanceof Error ? cause.message : String(cause), cause),
      stopped: () => engine.error ?? engine.closingError()
    })
    const clock = yield* Effect.clock
    const millis = () => clock.unsafeCurrentTimeMillis()
    for (const frame of opened.leftover) {
      const action = engine.dispatch(frame)
      if (action !== undefined) yield* action
    }
    yield* Effect.forkScoped(Effect.withScheduler(engine.readLoop(millis), ioScheduler))
    // Finalizers run in reverse: the close handshake runs while the reader and writer are still there.
    yield* Effect.addFinalizer(() => engine.close(200, "closed by client"))
    if (tuned.heartbeat > 0) {
      engine.heartbeat = yield* Effect.forkScoped(Heartbeat.run({
        interval: Duration.seconds(tuned.heartbeat),
        activity,
        send: Effect.flatMap(engine.writer.pending, (n) =>
          n > 0 ? Effect.void : Effect.ignore(engine.writer.offer({ channel: 0, frame: Frame.heartbeat, force: true }))),
        onTimeout: (silent) =>
          engine.lost("HeartbeatTimeout", `no frame from the broker for ${silent} ms (heartbeat ${tuned.heartbeat} s)`)
      }))
    }

    const connection: AmqpConnection = {
      serverProperties: opened.serverProperties,
      tuned,
      blocked: gate.state.changes,
      closed: Deferred.await(engine.closed),
      channel: (channelOptions) =>
        Effect.acquireRelease(engine.openChannel, (ch) => engine.closeChannel(ch)).pipe(
          Effect.map((ch) => ChannelImpl.make(engine, ch)),
          Effect.tap((channel) => channelOptions?.confirm === true ? channel.confirmSelect : Effect.void),
          Effect.tap((channel) =>
            channelOptions?.prefetch !== undefined ? channel.qos(channelOptions.prefetch) : Effect.void
          )
        ),
      updateSecret: (secret, reason) => engine.updateSecret(new TextEncoder().encode(Redacted.value(secret)), reason),
      close: engine.close(200, "closed by client")
    }
    return connection
  }).pipe(Effect.withSpan("amqp.connect", { attributes: { "messaging.system": "rabbitmq" } }))

const openSocket = (o: Resolved, timeout: Duration.Duration) =>
  o.tls === undefined || o.tls === false
    ? Tcp.connect({ host: o.host, port: o.port, connectTimeout: timeout, noDelay: o.noDelay ?? true })
    : Tls.connect({
      host: o.host,
      port: o.port,
      connectTimeout: timeout,
      noDelay: o.noDelay ?? true,
      ...(o.tls === true ? {} : o.tls)
    })

/**
 * A layer holding one connection for the lifetime of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Connection, ClientError | Uri.UriError> =>
  Layer.scoped(Connection, make(options))

/**
 * A layer configured from `Config`: `AMQP_URL` (redacted; default `amqp://localhost`) and optional
 * `AMQP_CONNECTION_NAME`, plus any explicit options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options> = Config.all({
    url: Config.withDefault(Config.redacted("AMQP_URL"), Redacted.make("amqp://localhost")),
    connectionName: Config.option(Config.string("AMQP_CONNECTION_NAME")).pipe(
      Config.map((name) => name._tag === "Some" ? name.value : undefined)
    )
  })
): Layer.Layer<Connection, ClientError | Uri.UriError | import("effect/ConfigError").ConfigError> =>
  Layer.scoped(Connection, Effect.flatMap(config, make))
