/**
 * A scoped stream server over TCP, Unix sockets or TLS: each connection runs a handler in its own fiber with a
 * `Transport`, with a connection limit, an idle timeout, lifecycle events and a graceful shutdown.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Net from "node:net"
import * as Tls from "node:tls"
import * as Address from "./Address.js"
import { destroy } from "./internal/open.js"
import * as Metrics from "./internal/metrics.js"
import { SocketTransport } from "./internal/socket.js"
import { parentSocket, type Pem, secureContextOptions } from "./internal/tlsOptions.js"
import type * as Transport from "./Transport.js"
import { fromNodeError, TransportError } from "./TransportError.js"

/**
 * @since 0.1.0
 * @category type ids
 */
export const TypeId: unique symbol = Symbol.for("effect-wire/transport/Server")

/**
 * @since 0.1.0
 * @category type ids
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category models
 */
export interface TcpListen {
  readonly _tag: "Tcp"
  /** Default: `127.0.0.1`. */
  readonly host?: string | undefined
  /** `0` picks a free port; `Server.address` has the real one. */
  readonly port: number
  readonly backlog?: number | undefined
  /** Disable Nagle's algorithm on accepted sockets. Default: `true`. */
  readonly noDelay?: boolean | undefined
  readonly keepAlive?: boolean | undefined
  /** Bytes received and not yet read before a connection is paused. Default: 256 KiB. */
  readonly readHighWaterMark?: number | undefined
  readonly highWaterMark?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface UnixListen {
  readonly _tag: "Unix"
  readonly path: string
  readonly backlog?: number | undefined
  readonly readHighWaterMark?: number | undefined
  readonly highWaterMark?: number | undefined
}

/**
 * A certificate and its key, for SNI.
 *
 * @since 0.1.0
 * @category models
 */
export interface Identity {
  readonly cert: Pem | ReadonlyArray<Pem>
  readonly key: Redacted.Redacted<Pem>
  readonly passphrase?: Redacted.Redacted<string> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TlsListen extends Omit<TcpListen, "_tag"> {
  readonly _tag: "Tls"
  /** The default certificate chain (PEM). */
  readonly cert: Pem | ReadonlyArray<Pem>
  readonly key: Redacted.Redacted<Pem>
  readonly passphrase?: Redacted.Redacted<string> | undefined
  /** CAs that client certificates must chain to. */
  readonly ca?: Pem | ReadonlyArray<Pem> | undefined
  /** Ask clients for a certificate. Default: `false`. */
  readonly requestCert?: boolean | undefined
  /** With `requestCert`, refuse clients whose certificate does not verify. Default: `true`. */
  readonly rejectUnauthorized?: boolean | undefined
  /** Protocols offered by ALPN, in order of preference. */
  readonly alpnProtocols?: ReadonlyArray<string> | undefined
  /** Certificates chosen by the server name the client sends (SNI); others get the default one. */
  readonly sni?: Readonly<Record<string, Identity>> | undefined
  /** Full control over SNI, as Node's `SNICallback`; takes precedence over `sni`. */
  readonly SNICallback?: ((servername: string, cb: (err: Error | null, ctx?: Tls.SecureContext) => void) => void) | undefined
  /** Time a client has to finish the handshake. Default: 10 seconds. */
  readonly handshakeTimeout?: Duration.DurationInput | undefined
  readonly minVersion?: Tls.SecureVersion | undefined
}

/**
 * Where and how a server listens: `Server.tcp`, `Server.unix` or `Server.tls`.
 *
 * @since 0.1.0
 * @category models
 */
export type ListenOptions = TcpListen | UnixListen | TlsListen

/**
 * @since 0.1.0
 * @category constructors
 */
export const tcp = (options: Omit<TcpListen, "_tag">): TcpListen => ({ _tag: "Tcp", ...options })

/**
 * @since 0.1.0
 * @category constructors
 */
export const unix = (path: string, options?: Omit<UnixListen, "_tag" | "path">): UnixListen => ({
  _tag: "Unix",
  path,
  ...options
})

/**
 * @since 0.1.0
 * @category constructors
 */
export const tls = (options: Omit<TlsListen, "_tag">): TlsListen => ({ _tag: "Tls", ...options })

/**
 * Why a connection ended.
 *
 * - `Completed`: the handler returned; the connection was closed gracefully.
 * - `Failed`: the handler failed or died (see `cause`); the connection was aborted.
 * - `IdleTimeout`: nothing was read or written for `idleTimeout`; the handler was interrupted.
 * - `Interrupted`: the server shut down (past its deadline) or its scope closed.
 *
 * @since 0.1.0
 * @category models
 */
export type CloseReason = "Completed" | "Failed" | "IdleTimeout" | "Interrupted"

/**
 * What happens on a server, as a stream of events (`Server.events`).
 *
 * @since 0.1.0
 * @category models
 */
export type ServerEvent = Data.TaggedEnum<{
  Listening: { readonly address: Address.Address }
  ConnectionOpened: { readonly id: number; readonly remote: Address.Address }
  ConnectionClosed: {
    readonly id: number
    readonly remote: Address.Address
    readonly reason: CloseReason
    readonly cause: Cause.Cause<unknown> | undefined
  }
  /** A connection turned away: past `maxConnections`, during shutdown, or a failed TLS handshake. */
  Refused: {
    readonly remote: Address.Address
    readonly reason: "MaxConnections" | "ShuttingDown" | "Tls"
    readonly error: TransportError | undefined
  }
  /** An error of the listening socket itself. */
  Error: { readonly error: TransportError }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ServerEvent = Data.taggedEnum<ServerEvent>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Server {
  readonly [TypeId]: TypeId
  /** The bound address (with the real port when port 0 was asked for). */
  readonly address: Address.Address
  /** Events from the moment the stream is run. Slow consumers lose the oldest events, never block the server. */
  readonly events: Stream.Stream<ServerEvent>
  /** Subscribes now, so that no event after this call is missed. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<ServerEvent>, never, Scope.Scope>
  /** Connections currently open (handlers running). */
  readonly connectionCount: Effect.Effect<number>
  /**
   * Stops accepting, lets running connections finish within the deadline (default: `shutdownTimeout`), then
   * interrupts their handlers and aborts their connections. Completes when everything is released.
   */
  readonly shutdown: (deadline?: Duration.DurationInput) => Effect.Effect<void>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<E, R> {
  readonly listen: ListenOptions
  /** Serves one connection. Runs in its own fiber; it gets its own `Scope`, closed when it returns. */
  readonly handler: (transport: Transport.Transport) => Effect.Effect<void, E, R>
  /** Connections beyond this many are closed at once with a `Refused` event. Default: unlimited. */
  readonly maxConnections?: number | undefined
  /** Close connections with no reads or writes for this long. Default: none. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** Deadline of the graceful shutdown when the server's scope closes, and of each connection's close. Default: 5 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput | undefined
  /** Events kept for slow subscribers. Default: 1024. */
  readonly eventBufferSize?: number | undefined
}

const defaultShutdownTimeout = Duration.seconds(5)
const defaultHandshakeTimeout = Duration.seconds(10)

const remoteOf = (listen: ListenOptions, socket: Net.Socket): Address.Address =>
  listen._tag === "Unix" ? Address.unix("") : Address.tcp(socket.remoteAddress ?? "", socket.remotePort ?? 0)

const boundAddress = (listen: ListenOptions, server: Net.Server): Address.Address => {
  const address = server.address()
  if (listen._tag === "Unix") return Address.unix(listen.path)
  return typeof address === "object" && address !== null
    ? Address.tcp(address.address, address.port)
    : Address.tcp(listen.host ?? "127.0.0.1", listen.port)
}

const createServer = (listen: ListenOptions): Net.Server => {
  const common = {
    allowHalfOpen: true,
    ...(listen._tag !== "Unix" ? { noDelay: listen.noDelay ?? true, keepAlive: listen.keepAlive ?? false } : {}),
    ...(listen.highWaterMark !== undefined ? { highWaterMark: listen.highWaterMark } : {})
  }
  if (listen._tag !== "Tls") return Net.createServer(common)
  const contexts = new Map<string, Tls.SecureContext>()
  for (const [name, identity] of Object.entries(listen.sni ?? {})) {
    contexts.set(name.toLowerCase(), Tls.createSecureContext(secureContextOptions({ ...identity, ca: listen.ca })))
  }
  const requestCert = listen.requestCert ?? false
  return Tls.createServer({
    ...common,
    // Half-open only once secure (see `accept`): a client that leaves mid-handshake must not linger half-open.
    allowHalfOpen: false,
    ...secureContextOptions(listen),
    requestCert,
    rejectUnauthorized: requestCert && (listen.rejectUnauthorized ?? true),
    handshakeTimeout: Duration.toMillis(listen.handshakeTimeout ?? defaultHandshakeTimeout),
    ...(listen.minVersion !== undefined ? { minVersion: listen.minVersion } : {}),
    ...(listen.alpnProtocols !== undefined ? { ALPNProtocols: [...listen.alpnProtocols] } : {}),
    ...(listen.SNICallback !== undefined
      ? { SNICallback: listen.SNICallback }
      : contexts.size > 0
      ? { SNICallback: (name: string, cb: (err: Error | null, ctx?: Tls.SecureContext) => void) => cb(null, contexts.get(name.toLowerCase())) }
      : {})
  })
}

const listenOn = (server: Net.Server, listen: ListenOptions): Effect.Effect<void, TransportError> => {
  const address = listen._tag === "Unix" ? listen.path : Address.format(Address.tcp(listen.host ?? "127.0.0.1", listen.port))
  return Effect.async<void, TransportError>((resume) => {
    const onListening = () => {
      server.off("error", onError)
      resume(Effect.void)
    }
    const onError = (error: Error) => {
      server.off("listening", onListening)
      resume(Effect.fail(fromNodeError("Listen", error, address)))
    }
    server.once("listening", onListening)
    server.once("error", onError)
    server.listen(
      listen._tag === "Unix"
        ? { path: listen.path, ...(listen.backlog !== undefined ? { backlog: listen.backlog } : {}) }
        : {
          host: listen.host ?? "127.0.0.1",
          port: listen.port,
          ...(listen.backlog !== undefined ? { backlog: listen.backlog } : {})
        }
    )
    // Interrupted while binding: close the server as soon as it listens.
    return Effect.sync(() => {
      server.off("listening", onListening)
      server.off("error", onError)
      if (server.listening) {
        server.close()
      } else {
        server.once("listening", () => server.close())
        server.once("error", () => {})
      }
    })
  })
}

/**
 * Starts a server. It listens before this Effect completes (so `address` is valid and port 0 is resolved) and
 * runs until its scope closes, which shuts it down gracefully within `shutdownTimeout`.
 *
 * Every connection runs `handler` in a fiber of the server's scope. A handler that fails or dies is reported
 * as a `ConnectionClosed` event with reason `Failed`, and its connection is aborted; the server goes on. When
 * the handler returns, its connection is closed gracefully. Past `maxConnections`, new connections are closed
 * at once (not queued) and reported as `Refused`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Server, Transport } from "effect-wire/transport"
 *
 * // An echo server on a free port.
 * const echo = Server.make({
 *   listen: Server.tcp({ port: 0 }),
 *   handler: (transport) =>
 *     Effect.gen(function*() {
 *       while (true) {
 *         const chunks = yield* transport.read
 *         if (Transport.isEof(chunks)) return
 *         yield* transport.writeAll(chunks)
 *       }
 *     })
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <E, R>(
  options: Options<E, R>
): Effect.Effect<Server, TransportError, Scope.Scope | Exclude<R, Scope.Scope>> =>
  Effect.gen(function*() {
    const listen = options.listen
    const shutdownTimeout = options.shutdownTimeout ?? defaultShutdownTimeout
    const events = yield* Effect.acquireRelease(
      PubSub.sliding<ServerEvent>(options.eventBufferSize ?? 1024),
      PubSub.shutdown
    )
    const publish = (event: ServerEvent) => events.unsafeOffer(event)
    const kind: Metrics.Kind = listen._tag === "Tcp" ? "tcp" : listen._tag === "Unix" ? "unix" : "tls"
    /** A connection turned away: an event, and an error for the metrics (the TLS error, else `Refused`). */
    const refused = (
      remote: Address.Address,
      reason: "MaxConnections" | "ShuttingDown" | "Tls",
      error: TransportError | undefined
    ) => {
      const address = Address.format(remote)
      Metrics.failed(kind, error ?? new TransportError({ reason: "Refused", address, detail: reason }))
      publish(ServerEvent.Refused({ remote, reason, error }))
    }
    const fibers = yield* FiberSet.make<void, never>()
    const run = yield* FiberSet.runtime(fibers)<Exclude<R, Scope.Scope>>()
    let shuttingDown = false
    let open = 0
    let nextId = 1

    const server = createServer(listen)
    const onServerError = (error: Error) => {
      const failure = fromNodeError("Listen", error)
      Metrics.failed(kind, failure)
      publish(ServerEvent.Error({ error: failure }))
    }
    const onDrop = (data?: Net.DropArgument) =>
      refused(Address.tcp(data?.remoteAddress ?? "", data?.remotePort ?? 0), "MaxConnections", undefined)
    const onTlsClientError = (error: Error, socket: Tls.TLSSocket) => {
      refused(remoteOf(listen, socket), "Tls", fromNodeError("Tls", error))
      // With a `tlsClientError` listener Node leaves the failed socket to us.
      socket.destroy()
      parentSocket(socket)?.destroy()
    }

    const serve = (socket: Net.Socket, raw: Net.Socket, id: number) => {
      const idle = Deferred.unsafeMake<void>(FiberId.none)
      const remote = remoteOf(listen, raw)
      // Made at once, in the accept callback: its listeners take the socket's errors from the first moment.
      const transport = new SocketTransport(socket, {
        raw,
        resettable: listen._tag !== "Unix",
        readHighWaterMark: listen.readHighWaterMark,
        idleTimeout: options.idleTimeout,
        onIdle: () => Deferred.unsafeDone(idle, Exit.void),
        local: listen._tag === "Unix" ? Address.unix(listen.path) : Address.tcp(raw.localAddress ?? "", raw.localPort ?? 0),
        remote
      }).transport
      const connection = Effect.gen(function*() {
        publish(ServerEvent.ConnectionOpened({ id, remote }))
        const exit = yield* options.handler(transport).pipe(
          Effect.scoped,
          Effect.raceFirst(Effect.zipRight(Deferred.await(idle), Effect.interrupt)),
          Effect.exit
        )
        const idled = yield* Deferred.isDone(idle)
        if (Exit.isSuccess(exit)) yield* transport.close({ timeout: shutdownTimeout })
        else yield* transport.abort()
        publish(ServerEvent.ConnectionClosed({
          id,
          remote,
          reason: idled ? "IdleTimeout" : Exit.isSuccess(exit) ? "Completed" : Exit.isInterrupted(exit) ? "Interrupted" : "Failed",
          cause: Exit.isFailure(exit) && !idled ? exit.cause : undefined
        }))
      }).pipe(
        // Shut down past the deadline (or the scope closed): the peer sees a reset.
        Effect.onInterrupt(() =>
          Effect.zipRight(
            transport.abort(),
            Effect.sync(() => publish(ServerEvent.ConnectionClosed({ id, remote, reason: "Interrupted", cause: undefined })))
          )
        ),
        Effect.ensuring(Effect.zipRight(destroy(socket), destroy(raw))),
        Effect.ensuring(Effect.sync(() => open--))
      )
      // Logs of the handler say which connection they belong to.
      return Effect.annotateLogs(connection, { "connection.id": id, "connection.remote": Address.format(remote) })
    }

    const accept = (socket: Net.Socket) => {
      const raw = socket instanceof Tls.TLSSocket ? parentSocket(socket) ?? socket : socket
      if (shuttingDown) {
        refused(remoteOf(listen, raw), "ShuttingDown", undefined)
        socket.destroy()
        return
      }
      socket.allowHalfOpen = true
      open++
      run(serve(socket, raw, nextId++))
    }

    // Completes once Node released the listening socket and every connection it counted.
    const serverClosed = yield* Deferred.make<void>()
    const shutdown = (deadline?: Duration.DurationInput): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (!shuttingDown) {
          shuttingDown = true
          server.close(() => Deferred.unsafeDone(serverClosed, Exit.void))
        }
        // Interruptible even when run as a finalizer, or the deadline could not cut the wait short.
        return Effect.interruptible(FiberSet.awaitEmpty(fibers)).pipe(
          Effect.timeoutTo({
            duration: deadline ?? shutdownTimeout,
            onSuccess: () => Effect.void,
            onTimeout: () => Effect.zipRight(FiberSet.clear(fibers), FiberSet.awaitEmpty(fibers))
          }),
          Effect.flatten,
          Effect.zipRight(Deferred.await(serverClosed))
        )
      })
    // Registered before listening: a make interrupted or failing after `listen` still closes the server.
    yield* Effect.addFinalizer(() => shutdown())

    // Listeners stay on: `accept` turns late connections away, and a closed server emits nothing else.
    server.on(listen._tag === "Tls" ? "secureConnection" : "connection", accept)
    server.on("drop", onDrop)
    if (listen._tag === "Tls") server.on("tlsClientError", onTlsClientError)
    if (options.maxConnections !== undefined) server.maxConnections = options.maxConnections
    yield* listenOn(server, listen).pipe(Effect.tapError((error) => Effect.sync(() => Metrics.failed(kind, error))))
    server.on("error", onServerError)
    const address = boundAddress(listen, server)
    publish(ServerEvent.Listening({ address }))

    return {
      [TypeId]: TypeId,
      address,
      events: Stream.fromPubSub(events),
      subscribe: PubSub.subscribe(events),
      connectionCount: Effect.sync(() => open),
      shutdown
    } satisfies Server
  })

/**
 * Runs a server until interrupted (then shuts it down gracefully).
 *
 * @since 0.1.0
 * @category constructors
 */
export const serve = <E, R>(options: Options<E, R>): Effect.Effect<never, TransportError, Exclude<R, Scope.Scope>> =>
  Effect.scoped(Effect.zipRight(make(options), Effect.never))

/**
 * A server that runs for the lifetime of the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(options: Options<E, R>): Layer.Layer<never, TransportError, Exclude<R, Scope.Scope>> =>
  Layer.scopedDiscard(make(options))
