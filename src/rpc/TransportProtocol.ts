/**
 * `@effect/rpc` protocols over any effect-wire `Transport`: TCP, Unix sockets, TLS, in-memory pairs, or anything
 * else that opens one.
 *
 * Messages are encoded by the `RpcSerialization` in context. Serializations that delimit their own messages
 * (`ndjson`, `msgPack`, `ndJsonRpc`) are written as they are; the others (`json`, `jsonRpc`) are sent in frames
 * with a 4-byte big-endian length prefix. A `framing` option chooses any `Framing.Codec` instead.
 *
 * The client keeps one connection: it reconnects on a `Schedule`, fails in-flight requests with an
 * `RpcClientError` (its `cause` an `RpcProtocolError`) when the connection is lost, fails `send` while it is
 * down, and sends a `Ping` every heartbeat interval, dropping the connection when nothing came back for a whole
 * interval. Stream responses are acknowledged (`supportsAck`), so a slow consumer slows the server.
 *
 * The server gives each connection a client id, forwards everything the client sends (`Ping`, `Ack`,
 * `Interrupt`, `Eof`) to the engine and reports the id to `disconnects` when the connection ends.
 *
 * @example
 * ```ts
 * import { RpcSerialization } from "@effect/rpc"
 * import { Layer } from "effect"
 * import { TransportProtocol } from "effect-wire/rpc"
 * import { Server } from "effect-wire/transport"
 *
 * const ServerProtocol = TransportProtocol.layerProtocolServer({ listen: Server.tcp({ port: 9000 }) }).pipe(
 *   Layer.provide(RpcSerialization.layerNdjson)
 * )
 * const ClientProtocol = TransportProtocol.layerProtocolTcp({ host: "127.0.0.1", port: 9000 }).pipe(
 *   Layer.provide(RpcSerialization.layerNdjson)
 * )
 * ```
 *
 * @since 0.1.0
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Address from "../transport/Address.js"
import type * as Framing from "../transport/Framing.js"
import * as Server from "../transport/Server.js"
import * as Tcp from "../transport/Tcp.js"
import * as Tls from "../transport/Tls.js"
import type * as Transport from "../transport/Transport.js"
import type { TransportError } from "../transport/TransportError.js"
import * as Unix from "../transport/Unix.js"
import * as internalClient from "./internal/client.js"
import * as codec from "./internal/codec.js"
import { fromTransport } from "./internal/connection.js"
import * as internalServer from "./internal/server.js"
import type { RpcProtocolError } from "./RpcProtocolError.js"

/**
 * How messages are delimited on the byte stream: `"serialization"` trusts the serialization to do it (it must
 * include framing), a `Framing.Codec` puts each encoded message in a frame. Default: the serialization's own
 * framing when it has one, else `Framing.lengthPrefixed()` (4-byte big-endian length).
 *
 * @since 0.1.0
 * @category models
 */
export type FramingOption = "serialization" | Framing.Codec

/**
 * @since 0.1.0
 * @category models
 */
export interface ClientOptions {
  readonly framing?: FramingOption | undefined
  /**
   * When to reconnect after the connection is lost or cannot be opened; it starts over after each successful
   * connection. When it ends the client gives up and `send` fails from then on. Default: `defaultRetrySchedule`.
   */
  readonly retrySchedule?: Schedule.Schedule<unknown, RpcProtocolError> | undefined
  /**
   * A `Ping` is sent every interval; when nothing at all arrived from the server for a whole interval the
   * connection is dropped and reopened. `false` disables it. Default: 10 seconds.
   */
  readonly heartbeat?: Duration.DurationInput | false | undefined
  /**
   * Until the first connection is made, failures to connect are retried while requests wait, instead of failing
   * them (a client may start before its server). Default: `false`.
   */
  readonly retryTransientErrors?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ConnectOptions extends ClientOptions {
  /** Opens one connection; called again for every reconnection. */
  readonly connect: Effect.Effect<Transport.Transport, TransportError, Scope.Scope>
  /** Names the peer in errors and logs. */
  readonly address?: string | undefined
}

/**
 * The default reconnection schedule, the same as `@effect/rpc`'s socket protocol: 500 ms, growing by half each
 * time, at most 5 seconds apart, forever.
 *
 * @since 0.1.0
 * @category schedules
 */
export const defaultRetrySchedule: Schedule.Schedule<unknown, unknown> = internalClient.defaultRetrySchedule

/**
 * A client protocol over the transports `connect` opens.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (
  options: ConnectOptions
): Effect.Effect<RpcClient.Protocol["Type"], never, Scope.Scope | RpcSerialization.RpcSerialization> =>
  Effect.flatMap(RpcSerialization.RpcSerialization, (serialization) => {
    const framing = codec.resolveFraming(serialization, options.framing)
    return internalClient.make({
      connect: Effect.map(options.connect, (transport) => fromTransport(transport, options.address)),
      codec: () => codec.make(serialization, framing),
      retrySchedule: options.retrySchedule ?? defaultRetrySchedule,
      heartbeat: internalClient.resolveHeartbeat(options.heartbeat),
      address: options.address,
      retryTransientErrors: options.retryTransientErrors ?? false
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolClient = (
  options: ConnectOptions
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  Layer.scoped(RpcClient.Protocol, makeClient(options))

/**
 * A client protocol over TCP.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolTcp = (
  options: Tcp.ConnectOptions & ClientOptions
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  layerProtocolClient({
    ...options,
    connect: Tcp.connect({ noDelay: true, ...options }),
    address: Address.format(Address.tcp(options.host, options.port))
  })

/**
 * A client protocol over a Unix socket.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolUnix = (
  options: Unix.ConnectOptions & ClientOptions
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  layerProtocolClient({ ...options, connect: Unix.connect(options), address: options.path })

/**
 * A client protocol over TLS.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolTls = (
  options: Tls.ConnectOptions & ClientOptions
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  layerProtocolClient({
    ...options,
    connect: Tls.connect({ noDelay: true, ...options }),
    address: Address.format(Address.tcp(options.host, options.port))
  })

/**
 * A server protocol that serves transports handed to it, wherever they come from.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerProtocol {
  readonly protocol: RpcServer.Protocol["Type"]
  /** Serves one connection until the client closes it; the caller closes the transport afterwards. */
  readonly handle: (transport: Transport.Transport) => Effect.Effect<void, never, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const makeServerProtocol = (options?: {
  readonly framing?: FramingOption | undefined
}): Effect.Effect<ServerProtocol, never, Scope.Scope | RpcSerialization.RpcSerialization> =>
  Effect.gen(function*() {
    const serialization = yield* RpcSerialization.RpcSerialization
    const framing = codec.resolveFraming(serialization, options?.framing)
    const { protocol, serve } = yield* internalServer.make
    return {
      protocol,
      handle: (transport) =>
        Effect.flatMap(transport.info, (info) =>
          serve(fromTransport(transport, Address.format(info.remote)), codec.make(serialization, framing)))
    }
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly listen: Server.ListenOptions
  readonly framing?: FramingOption | undefined
  readonly maxConnections?: number | undefined
  /** Close connections with no traffic for this long (clients' heartbeats count). Default: none. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

/**
 * The transport server behind a server protocol, for its address (port 0) and events.
 *
 * @since 0.1.0
 * @category tags
 */
export class RpcTransportServer extends Context.Tag("effect-wire/rpc/TransportProtocol/RpcTransportServer")<
  RpcTransportServer,
  Server.Server
>() {}

/**
 * A server protocol listening on TCP, a Unix socket or TLS.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeServer = (
  options: ServerOptions
): Effect.Effect<
  { readonly protocol: RpcServer.Protocol["Type"]; readonly server: Server.Server },
  TransportError,
  Scope.Scope | RpcSerialization.RpcSerialization
> =>
  Effect.gen(function*() {
    const { handle, protocol } = yield* makeServerProtocol(options)
    const server = yield* Server.make({
      listen: options.listen,
      handler: handle,
      maxConnections: options.maxConnections,
      idleTimeout: options.idleTimeout,
      shutdownTimeout: options.shutdownTimeout
    })
    return { protocol, server }
  })

/**
 * A server protocol listening on TCP, a Unix socket or TLS; the transport server is provided too.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolServer = (
  options: ServerOptions
): Layer.Layer<RpcServer.Protocol | RpcTransportServer, TransportError, RpcSerialization.RpcSerialization> =>
  Layer.scopedContext(
    Effect.map(makeServer(options), ({ protocol, server }) =>
      Context.make(RpcServer.Protocol, protocol).pipe(Context.add(RpcTransportServer, server)))
  )

/**
 * `layerProtocolTcp` with its options read from `Config` (for example `Config.all({ host: Config.string("RPC_HOST"),
 * port: Config.port("RPC_PORT") })`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolTcpConfig = (
  config: Config.Config<Tcp.ConnectOptions & ClientOptions>
): Layer.Layer<RpcClient.Protocol, ConfigError.ConfigError, RpcSerialization.RpcSerialization> =>
  Layer.unwrapEffect(Effect.map(config, layerProtocolTcp))

/**
 * `layerProtocolServer` with its options read from `Config`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolServerConfig = (
  config: Config.Config<ServerOptions>
): Layer.Layer<
  RpcServer.Protocol | RpcTransportServer,
  TransportError | ConfigError.ConfigError,
  RpcSerialization.RpcSerialization
> => Layer.unwrapEffect(Effect.map(config, layerProtocolServer))
