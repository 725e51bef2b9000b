/**
 * `@effect/rpc` protocols over ZeroMQ (ZMTP 3.1): clients on DEALER sockets, the server on a ROUTER socket.
 *
 * ZMTP frames delimit messages, so one RPC message is one ZMTP message and no framing is added: use
 * `RpcSerialization.layerJson` or `layerMsgPack` (`ndjson` works too). Peers can authenticate and encrypt with
 * the PLAIN and CURVE mechanisms of `effect-wire/zmtp`.
 *
 * Endpoints the ZMTP sockets support by themselves (`memory://`, …) are used directly; any effect-wire transport
 * (TCP, TLS, Unix) can carry the connections instead (`connect` on the client, `listen` on the server).
 *
 * - Client: each connection is a fresh DEALER socket connected to the server. When it disconnects, in-flight
 *   requests fail and the client opens a new socket on its retry schedule, as the socket protocols do; the
 *   DEALER's own reconnection is off, so requests are never replayed into a server that forgot them.
 * - Server: a ROUTER socket; each routing id is a client. A client is gone when a send to it finds no peer
 *   (`routerMandatory`) or when nothing came from it for `clientTimeout` (clients ping every heartbeat
 *   interval, 10 s by default), whichever comes first; its requests are then interrupted.
 *
 * @since 0.1.0
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Address from "../transport/Address.js"
import * as Server from "../transport/Server.js"
import * as Transport from "../transport/Transport.js"
import type { TransportError } from "../transport/TransportError.js"
import type { Mechanism } from "../zmtp/Mechanism.js"
import * as Socket from "../zmtp/Socket.js"
import { ZmtpError } from "../zmtp/ZmtpError.js"
import * as internalClient from "./internal/client.js"
import * as codec from "./internal/codec.js"
import type { Connection } from "./internal/connection.js"
import * as keyed from "./internal/keyed.js"
import * as internalServer from "./internal/server.js"
import type { ClientOptions as TransportClientOptions } from "./TransportProtocol.js"

/**
 * Options of the ZMTP sockets the protocols open.
 *
 * @since 0.1.0
 * @category models
 */
export interface SocketOptions {
  /** Default: NULL. */
  readonly mechanism?: Mechanism | undefined
  /** ZMTP's own PING/PONG heartbeat on each connection. Default: none (the RPC heartbeat covers clients). */
  readonly zmtpHeartbeat?: Socket.HeartbeatOptions | undefined
  /** Default: 30 seconds. */
  readonly handshakeTimeout?: Duration.DurationInput | undefined
  /** Largest inbound message in bytes. Default: unlimited. */
  readonly maxMessageSize?: number | undefined
  /** Messages queued per peer before a send waits. Default: 1000. */
  readonly sendHighWaterMark?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions extends Omit<TransportClientOptions, "framing">, SocketOptions {
  /** The server's endpoint: `tcp://host:port`, `ipc://path` or `memory://name`. */
  readonly endpoint: string
  /**
   * Opens the connection with an effect-wire transport (TCP, TLS, Unix, …) instead of the socket's own endpoint
   * support; `endpoint` then only names the peer.
   */
  readonly connect?: Effect.Effect<Transport.Transport, TransportError, Scope.Scope> | undefined
}

const socketOptions = (options: SocketOptions) => ({
  mechanism: options.mechanism,
  heartbeat: options.zmtpHeartbeat,
  handshakeTimeout: options.handshakeTimeout,
  maxMessageSize: options.maxMessageSize,
  sendHighWaterMark: options.sendHighWaterMark
})

const closed = (endpoint: string) => new ZmtpError({ reason: "Closed", endpoint, detail: "disconnected" })

/** One connection: a DEALER socket that lives until it is disconnected, without reconnecting by itself. */
const openDealer = (options: ClientOptions): Effect.Effect<Connection<ZmtpError>, ZmtpError, Scope.Scope> =>
  Effect.gen(function*() {
    const socket = yield* Socket.make({ ...socketOptions(options), type: "DEALER", reconnect: Schedule.stop })
    const connected = yield* Deferred.make<void, ZmtpError>()
    const ended = yield* Deferred.make<never, ZmtpError>()
    const events = yield* socket.events
    yield* events.pipe(
      Stream.runForEach((event) => {
        switch (event._tag) {
          case "Connected":
            return Deferred.succeed(connected, undefined)
          case "ConnectFailed":
          case "HandshakeFailed":
          case "Disconnected":
            return Effect.zipRight(Deferred.fail(connected, event.error), Deferred.fail(ended, event.error))
          case "Listening":
            return Effect.void
        }
      }),
      Effect.forkScoped
    )
    if (options.connect === undefined) yield* socket.connect(options.endpoint)
    else {
      const transport = yield* Effect.mapError(
        options.connect,
        (cause) => new ZmtpError({ reason: "Transport", endpoint: options.endpoint, code: cause.code, detail: cause.message, cause })
      )
      yield* socket.attach(transport, options.endpoint)
    }
    yield* Deferred.await(connected)
    const read: Effect.Effect<ReadonlyArray<Uint8Array> | Transport.Eof, ZmtpError> = Effect.raceFirst(
      socket.receive,
      Deferred.await(ended)
    ).pipe(Effect.catchIf((error) => error.reason === "Closed", () => Effect.succeed(Transport.Eof)))
    return {
      read,
      write: (chunks: ReadonlyArray<Uint8Array>) => socket.send([chunks.length === 1 ? chunks[0]! : Transport.concat(chunks)]),
      // The socket closes with the connection's scope.
      close: Effect.void,
      abort: Effect.void,
      address: options.endpoint,
      stream: false
    }
  }).pipe(Effect.catchIf((error) => error.reason === "Closed", () => Effect.fail(closed(options.endpoint))))

/**
 * A client protocol on DEALER sockets.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (
  options: ClientOptions
): Effect.Effect<RpcClient.Protocol["Type"], never, Scope.Scope | RpcSerialization.RpcSerialization> =>
  Effect.flatMap(RpcSerialization.RpcSerialization, (serialization) =>
    internalClient.make({
      connect: openDealer(options),
      codec: () => codec.make(serialization, undefined),
      retrySchedule: options.retrySchedule ?? internalClient.defaultRetrySchedule,
      heartbeat: internalClient.resolveHeartbeat(options.heartbeat),
      address: options.endpoint,
      retryTransientErrors: options.retryTransientErrors ?? false
    }))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolClient = (
  options: ClientOptions
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  Layer.scoped(RpcClient.Protocol, makeClient(options))

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions extends SocketOptions {
  /** Where the ROUTER socket listens by itself: `tcp://host:port` (port 0 picks one), `ipc://path`, `memory://name`. */
  readonly endpoints?: ReadonlyArray<string> | undefined
  /** Where to listen with an effect-wire transport server (TCP, TLS, Unix); its connections join the ROUTER. */
  readonly listen?: Server.ListenOptions | undefined
  /**
   * A client that sent nothing for this long is considered gone and its requests are interrupted; keep it above
   * the clients' heartbeat interval. `false` keeps silent clients forever. Default: 30 seconds.
   */
  readonly clientTimeout?: Duration.DurationInput | false | undefined
}

/**
 * The ROUTER socket behind a server protocol and the endpoints it is bound to (with real ports).
 *
 * @since 0.1.0
 * @category models
 */
export interface ZmtpServer {
  readonly socket: Socket.Socket
  readonly endpoints: ReadonlyArray<string>
  /** The transport server, when `listen` was given. */
  readonly server: Server.Server | undefined
}

/**
 * @since 0.1.0
 * @category tags
 */
export class RpcZmtpServer extends Context.Tag("effect-wire/rpc/ZmtpProtocol/RpcZmtpServer")<
  RpcZmtpServer,
  ZmtpServer
>() {}

// Routing ids are at most 255 bytes: a Latin-1 string of them is a cheap, exact map key.
const keyOf = (routingId: Uint8Array): string => String.fromCharCode(...routingId)

/**
 * A server protocol on a ROUTER socket opened elsewhere (it must have `routerMandatory` set, so that a reply to a
 * client that left fails instead of vanishing).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeServerProtocol = (
  socket: Socket.Socket,
  options?: { readonly clientTimeout?: Duration.DurationInput | false | undefined }
): Effect.Effect<RpcServer.Protocol["Type"], never, Scope.Scope | RpcSerialization.RpcSerialization> =>
  Effect.gen(function*() {
    const serialization = yield* RpcSerialization.RpcSerialization
    const core = yield* internalServer.make
    const receive = yield* keyed.make<Uint8Array>({
      core,
      codec: () => codec.make(serialization, undefined),
      send: (routingId, chunks) =>
        socket.send([routingId, chunks.length === 1 ? chunks[0]! : Transport.concat(chunks)]),
      clientTimeout: options?.clientTimeout ?? keyed.defaultClientTimeout
    })
    yield* Effect.gen(function*() {
      while (true) {
        const message = yield* socket.receive
        if (message.length >= 2) yield* receive(keyOf(message[0]!), message[0]!, message.slice(1))
      }
    }).pipe(
      Effect.catchAllCause((cause) => Effect.logDebug("rpc: ROUTER socket closed", cause)),
      Effect.annotateLogs("module", "effect-wire/rpc"),
      Effect.forkScoped
    )
    return core.protocol
  })

/**
 * A ROUTER socket bound to `endpoints` and a server protocol on it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeServer = (
  options: ServerOptions
): Effect.Effect<
  { readonly protocol: RpcServer.Protocol["Type"]; readonly server: ZmtpServer },
  ZmtpError,
  Scope.Scope | RpcSerialization.RpcSerialization
> =>
  Effect.gen(function*() {
    const socket = yield* Socket.make({ ...socketOptions(options), type: "ROUTER", routerMandatory: true })
    const endpoints = yield* Effect.forEach(options.endpoints ?? [], socket.bind)
    const protocol = yield* makeServerProtocol(socket, options)
    const server = options.listen === undefined ? undefined : yield* Server.make({
      listen: options.listen,
      // The connection is the ROUTER's from here on; it ends when the ROUTER drops it or the peer leaves.
      handler: (transport) =>
        Effect.zipRight(
          Effect.flatMap(transport.info, (info) => socket.attach(transport, Address.format(info.remote))),
          Effect.ignore(transport.closed)
        )
    }).pipe(Effect.mapError((cause) =>
      new ZmtpError({ reason: "Transport", code: cause.code, detail: cause.message, cause })
    ))
    return { protocol, server: { socket, endpoints, server } }
  })

/**
 * A server protocol on a ROUTER socket; the socket and its bound endpoints are provided too.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolServer = (
  options: ServerOptions
): Layer.Layer<RpcServer.Protocol | RpcZmtpServer, ZmtpError, RpcSerialization.RpcSerialization> =>
  Layer.scopedContext(
    Effect.map(makeServer(options), ({ protocol, server }) =>
      Context.make(RpcServer.Protocol, protocol).pipe(Context.add(RpcZmtpServer, server)))
  )
