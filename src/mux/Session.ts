/**
 * A muxado v2 session: many streams over one transport, wire-compatible with Go's
 * `github.com/inconshreveable/muxado` and `golang.ngrok.com/muxado/v2`.
 *
 * A session is a scoped resource. It owns four fibers: a reader that decodes frames and hands bytes to
 * per-stream buffers (bounded by the window, so it never waits on a slow consumer), a writer that drains a
 * bounded queue into few transport writes, a watchdog for the connection write timeout, and a closer. Closing
 * the scope sends `GOAWAY(0, "no error")`, flushes it within `closeTimeout` and closes the transport, as Go's
 * `Close()` does. A GOAWAY is always the last frame: Go peers mis-read anything after it. After the peer's GOAWAY,
 * no stream can be opened; the streams it still serves may finish within `drainTimeout`, then the session closes.
 *
 * @example
 * ```ts
 * import * as Effect from "effect/Effect"
 * import * as Stream from "effect/Stream"
 * import { Session } from "effect-wire/mux"
 * import { Server } from "effect-wire/transport"
 *
 * // An echo server: one session per TCP connection, every stream copied back.
 * const echo = Session.serve({
 *   listen: Server.tcp({ host: "127.0.0.1", port: 4000 }),
 *   handler: (session) =>
 *     Effect.forever(
 *       Effect.flatMap(session.accept, (stream) =>
 *         Effect.forkScoped(Stream.run(stream.readable, stream.writable)))
 *     ).pipe(Effect.scoped, Effect.ignore)
 * })
 *
 * // A client: open a stream, send, half-close, read the answer.
 * const call = Effect.gen(function*() {
 *   const session = yield* Session.connect({ host: "127.0.0.1", port: 4000 })
 *   const stream = yield* session.open()
 *   yield* stream.write(new TextEncoder().encode("hello muxado"))
 *   yield* stream.closeWrite
 *   return yield* Stream.runCollect(stream.readable)
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import type * as Scope from "effect/Scope"
import * as Server from "../transport/Server.js"
import * as Tcp from "../transport/Tcp.js"
import * as Transport from "../transport/Transport.js"
import type { TransportError } from "../transport/TransportError.js"
import type * as Frame from "./Frame.js"
import * as internalMetrics from "./internal/metrics.js"
import * as internal from "./internal/session.js"
import type { StreamCore } from "./internal/stream.js"
import { ErrorCode, MuxError } from "./MuxError.js"
import * as MuxStream from "./Stream.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/mux/Session")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * Which end of the connection this is: a client opens odd streams (3, 5, …), a server even ones (2, 4, …).
 *
 * @since 0.1.0
 * @category models
 */
export type Role = "client" | "server"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly role: Role
  /**
   * The per-stream window, both what we grant and what we assume the peer grants: muxado does not negotiate
   * it, so it must equal the peer's `MaxWindowSize`. Default: 256 KiB (Go's default).
   */
  readonly windowSize?: number | undefined
  /**
   * How many bytes of a stream we buffer unread. Beyond `windowSize`, the extra credit goes to the peer in one
   * WNDINC when its first frame on the stream arrives (muxado has no negotiation, but any WNDINC is legal and Go
   * does not bound the send window). With only 256 KiB in flight, one stream's throughput is bound by the
   * round trip of every window update; a larger window keeps the pipe full. Default: `windowSize` (Go's exact
   * frame traces); 1 MiB or more for bulk transfers on one stream.
   */
  readonly receiveWindow?: number | undefined
  /**
   * How far a stream's receive window grows while its reader keeps up: a reader that consumes a whole window
   * within 20 ms gets it doubled (one extra WNDINC), up to this size. All of a session's streams together grow
   * by at most 4 × (this − `receiveWindow`); a stream's growth returns to that budget when it ends. Exchanges
   * smaller than a window, or read slower, keep Go's exact frame traces. Growth costs memory only when a fast
   * reader later stops reading. Default: 1 MiB; `receiveWindow` or less turns growth off.
   */
  readonly maxReceiveWindow?: number | undefined
  /** Remote streams waiting in `accept`; beyond it new streams are refused with RST 9. Default: 128. */
  readonly acceptBacklog?: number | undefined
  /** The largest DATA payload we send in one frame, so streams share the connection fairly. Default: 64 KiB. */
  readonly maxFramePayload?: number | undefined
  /**
   * When to return credit: `"read"` sends a WNDINC after every read, exactly as Go does (byte-exact traces);
   * `"half"` waits until half the window is consumed (fewer frames). Default: `"read"`.
   */
  readonly windowUpdates?: "read" | "half" | undefined
  /**
   * A deadline for each stream `write`, covering the wait for the peer's window (which Go's writes lack): a
   * write that misses it fails with `Timeout` and the unsent rest is dropped. Default: none (wait, as Go does).
   */
  readonly streamWriteTimeout?: Duration.DurationInput | undefined
  /** A transport write that takes longer kills the session with WriteTimeout (13). Default: 10 seconds. */
  readonly writeTimeout?: Duration.DurationInput | undefined
  /** How long closing waits to flush the GOAWAY, and then for the peer to close. Default: 1 second. */
  readonly closeTimeout?: Duration.DurationInput | undefined
  /**
   * After the peer's GOAWAY, our streams at or below its `last` may finish; this long after it the session
   * closes (GOAWAY 0 "drain timeout", then the transport) and what is still open fails with RemoteGoneAway.
   * `Duration.infinity` waits for ever (Go's behaviour). Default: 10 seconds.
   */
  readonly drainTimeout?: Duration.DurationInput | undefined
  /** Bytes of DATA frames queued for the writer before stream writers wait. Default: 1 MiB. */
  readonly maxQueuedBytes?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface OpenOptions {
  /** Send an empty SYN at once instead of with the first write (muxado opens lazily). Default: false. */
  readonly eager?: boolean | undefined
}

/**
 * How a session ended: the local error (`SessionClosed` for a normal close) and the peer's GOAWAY, if any.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionEnd {
  readonly local: MuxError
  readonly remote: Frame.GoAway | undefined
}

/**
 * Counters for tests and monitoring.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  /** Streams in the table (open in at least one direction). */
  readonly streams: number
  /** Remote streams waiting for `accept`. */
  readonly pendingAccepts: number
  /** Bytes received and not yet read, over all streams. */
  readonly bufferedBytes: number
  /** Bytes of DATA frames waiting for the writer. */
  readonly queuedBytes: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Session {
  readonly [TypeId]: TypeId
  readonly role: Role
  /** Opens a stream (lazily: the peer sees it with the first write); it is closed when the scope closes. */
  readonly open: (options?: OpenOptions) => Effect.Effect<MuxStream.MuxStream, MuxError, Scope.Scope>
  /** Waits for the next stream the peer opened; it is closed when the scope closes. */
  readonly accept: Effect.Effect<MuxStream.MuxStream, MuxError, Scope.Scope>
  /**
   * Ends the session with `GOAWAY(code, debug)`: muxado's GOAWAY is terminal (Go peers mis-read frames after
   * it), so nothing is sent after it and the transport closes. Completes when the session has ended.
   */
  readonly goAway: (code?: number, debug?: string) => Effect.Effect<void>
  /** `goAway(0, "no error")`, as Go's `Close()`. */
  readonly close: Effect.Effect<void>
  /** Completes when the session has ended, with how. */
  readonly await: Effect.Effect<SessionEnd>
  /** The GOAWAY the peer sent, if any. */
  readonly remoteGoAway: Effect.Effect<Option.Option<Frame.GoAway>>
  readonly stats: Effect.Effect<Stats>
}

/**
 * Process-wide counters of all sessions: `mux_bytes_received`, `mux_bytes_sent`, `mux_frames_received`,
 * `mux_streams_opened`, `mux_streams_accepted`, `mux_resets_sent`, and `mux_sessions_ended` (tagged `reason`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = internalMetrics.metrics

/**
 * @since 0.1.0
 * @category tags
 */
export class MuxSession extends Context.Tag("effect-wire/mux/Session")<MuxSession, Session>() {}

/**
 * @since 0.1.0
 * @category guards
 */
export const isSession = (u: unknown): u is Session => Predicate.hasProperty(u, TypeId)

const resolve = (options: Options): internal.ResolvedOptions => {
  const windowSize = options.windowSize ?? 256 * 1024
  const receiveWindow = Math.min(Math.max(options.receiveWindow ?? windowSize, windowSize), 0x7fffffff)
  const maxReceiveWindow = Math.min(Math.max(options.maxReceiveWindow ?? 1024 * 1024, receiveWindow), 0x7fffffff)
  return {
    role: options.role,
    windowSize,
    receiveWindow,
    maxReceiveWindow,
    receiveBudget: Math.max(0, 4 * (maxReceiveWindow - receiveWindow)),
    acceptBacklog: options.acceptBacklog ?? 128,
    frameCap: Math.max(1, Math.min(options.maxFramePayload ?? 64 * 1024, 0xffffff)),
    thresholdUpdates: options.windowUpdates === "half",
    streamWriteTimeout: options.streamWriteTimeout === undefined ? undefined : Duration.decode(options.streamWriteTimeout),
    writeTimeout: Duration.decode(options.writeTimeout ?? Duration.seconds(10)),
    closeTimeout: Duration.decode(options.closeTimeout ?? Duration.seconds(1)),
    drainTimeout: Duration.decode(options.drainTimeout ?? Duration.seconds(10)),
    maxQueuedBytes: options.maxQueuedBytes ?? 1024 * 1024,
    maxControlFrames: 16 * 1024
  }
}

/**
 * Runs a session over `transport` until the scope closes (or the session ends on its own).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  transport: Transport.Transport,
  options: Options
): Effect.Effect<Session, never, Scope.Scope> =>
  Effect.gen(function*() {
    const core = new internal.SessionCore(transport, resolve(options), yield* Effect.clock)
    yield* internal.run(core)
    // Waiting to accept must stay interruptible, so this is not `acquireRelease` (whose acquire is not).
    const scopedStream = (acquire: Effect.Effect<StreamCore, MuxError>) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.flatMap(
          restore(acquire),
          (stream) =>
            Effect.as(
              // A scope that ends in failure or interruption resets the stream (6, StreamCancelled), so the peer
              // cannot mistake a cut-off stream for a complete one.
              Effect.addFinalizer((exit) =>
                Exit.isSuccess(exit) ? stream.close : stream.reset(ErrorCode.StreamCancelled)
              ),
              MuxStream.fromCore(stream)
            )
        )
      )
    const goAway = (code: number = ErrorCode.NoError, debug = code === ErrorCode.NoError ? "no error" : "") =>
      Effect.suspend(() => {
        core.terminate(
          new MuxError({ reason: "SessionClosed", code: ErrorCode.SessionClosed, detail: `GOAWAY ${code} sent` }),
          code,
          debug
        )
        return Effect.asVoid(Deferred.await(core.ended))
      })
    const session: Session = {
      [TypeId]: TypeId,
      role: options.role,
      open: (openOptions) =>
        Effect.tap(
          scopedStream(core.open()),
          (stream) => (openOptions?.eager === true ? stream.openEagerly : Effect.void)
        ),
      accept: scopedStream(core.accept),
      goAway,
      close: goAway(),
      await: Deferred.await(core.ended),
      remoteGoAway: Effect.sync(() => Option.fromNullable(core.remoteGoAway)),
      stats: Effect.sync(() => ({
        streams: core.streams.size,
        pendingAccepts: core.pendingAccepts,
        bufferedBytes: core.bufferedBytes,
        queuedBytes: core.outbox.queuedBytes
      }))
    }
    return session
  }).pipe(Effect.withSpan("mux.session", { attributes: { "mux.role": options.role } }))

/**
 * A session over the current transport.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<MuxSession, never, Transport.CurrentTransport> =>
  Layer.scoped(MuxSession, Effect.flatMap(Transport.CurrentTransport, (transport) => make(transport, options)))

/**
 * A session over the current transport, its options read from `Config` (`role`, `windowSize`, `acceptBacklog`,
 * `writeTimeout`, `closeTimeout`, `drainTimeout`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config<Options>
): Layer.Layer<MuxSession, ConfigError.ConfigError, Transport.CurrentTransport> =>
  Layer.scoped(
    MuxSession,
    Effect.flatMap(Effect.all([config, Transport.CurrentTransport]), ([options, transport]) => make(transport, options))
  )

/**
 * A `Config` for `Options`, under the given keys: `role` (client | server), `windowSize`, `acceptBacklog`,
 * `writeTimeout`, `closeTimeout`, `drainTimeout`.
 *
 * @since 0.1.0
 * @category config
 */
export const config: Config.Config<Options> = Config.all({
  role: Config.literal("client", "server")("role"),
  windowSize: Config.option(Config.integer("windowSize")),
  acceptBacklog: Config.option(Config.integer("acceptBacklog")),
  writeTimeout: Config.option(Config.duration("writeTimeout")),
  closeTimeout: Config.option(Config.duration("closeTimeout")),
  drainTimeout: Config.option(Config.duration("drainTimeout"))
}).pipe(
  Config.map(({ acceptBacklog, closeTimeout, drainTimeout, role, windowSize, writeTimeout }) => ({
    role,
    windowSize: Option.getOrUndefined(windowSize),
    acceptBacklog: Option.getOrUndefined(acceptBacklog),
    writeTimeout: Option.getOrUndefined(writeTimeout),
    closeTimeout: Option.getOrUndefined(closeTimeout),
    drainTimeout: Option.getOrUndefined(drainTimeout)
  }))
)

/**
 * Connects over TCP and runs a client session on the connection; both close with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const connect = (
  options: Tcp.ConnectOptions & { readonly session?: Omit<Options, "role"> | undefined }
): Effect.Effect<Session, TransportError, Scope.Scope> =>
  Effect.flatMap(Tcp.connect({ noDelay: true, ...options }), (transport) =>
    make(transport, { ...options.session, role: "client" }))

/**
 * @since 0.1.0
 * @category models
 */
export interface ServeOptions<E, R> {
  readonly listen: Server.ListenOptions
  /** Serves one session; the session ends (GOAWAY, close) when it returns. */
  readonly handler: (session: Session) => Effect.Effect<void, E, R>
  readonly session?: Omit<Options, "role"> | undefined
  readonly maxConnections?: number | undefined
  readonly idleTimeout?: Duration.DurationInput | undefined
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

/**
 * A transport server that runs one server session per connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = <E, R>(
  options: ServeOptions<E, R>
): Effect.Effect<Server.Server, TransportError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Server.make({
    listen: options.listen,
    maxConnections: options.maxConnections,
    idleTimeout: options.idleTimeout,
    shutdownTimeout: options.shutdownTimeout,
    handler: (transport) =>
      Effect.scoped(
        Effect.flatMap(make(transport, { ...options.session, role: "server" }), options.handler)
      )
  })
