/**
 * `@effect/rpc` protocols over muxado v2 streams: each RPC client is one stream of a muxado session.
 *
 * Why a stream per client rather than a session per client, or a stream per request:
 *
 * - Many clients share one TCP connection (one session), each with its own flow-controlled stream, so a client
 *   whose consumer is slow holds back only its own stream, never its neighbours.
 * - A stream per request would add a SYN and a FIN to every call and lose what `@effect/rpc` already multiplexes
 *   well within one connection (request ids, acked chunks, interrupts); a stream per client keeps the protocol
 *   identical to the socket one, so a server serves muxado streams and TCP connections alike.
 * - The server gives each accepted stream a client id: the engine's per-client state (its requests, its
 *   disconnect) follows the stream's life, and resetting a stream ends exactly one client.
 *
 * Messages inside a stream are framed as on a socket (`TransportProtocol`): the serialization's own framing, or
 * 4-byte big-endian length prefixes for `json` / `jsonRpc`.
 *
 * A client either opens its streams on a session in context (`MuxSession`, shared with other clients; when that
 * session ends, the client stays down) or owns its connection (`layerProtocolTcp`: TCP, session and stream are
 * opened again on every reconnection).
 *
 * @since 0.1.0
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import type { MuxError } from "../mux/MuxError.js"
import * as Session from "../mux/Session.js"
import * as MuxStream from "../mux/Stream.js"
import * as Address from "../transport/Address.js"
import type * as Server from "../transport/Server.js"
import type * as Tcp from "../transport/Tcp.js"
import * as Transport from "../transport/Transport.js"
import type { TransportError } from "../transport/TransportError.js"
import * as internalClient from "./internal/client.js"
import * as codec from "./internal/codec.js"
import type { Connection } from "./internal/connection.js"
import * as internalServer from "./internal/server.js"
import { type ClientOptions, type FramingOption, RpcTransportServer } from "./TransportProtocol.js"

const fromStream = (stream: MuxStream.MuxStream, address: string | undefined): Connection<MuxError> => ({
  read: Effect.map(stream.read, (chunks) => MuxStream.isEof(chunks) ? Transport.Eof : chunks),
  // A message cut short by an interrupted write would desynchronise the stream: reset it instead.
  write: (chunks) =>
    Effect.onInterrupt(
      stream.write(chunks.length === 1 ? chunks[0]! : Transport.concat(chunks)),
      () => stream.reset()
    ),
  close: stream.close,
  abort: stream.reset(),
  address: address === undefined ? `stream ${stream.id}` : `${address} stream ${stream.id}`,
  stream: true
})

const client = <E>(
  options: ClientOptions,
  open: Effect.Effect<MuxStream.MuxStream, E, Scope.Scope>,
  address: string | undefined
) =>
  Effect.flatMap(RpcSerialization.RpcSerialization, (serialization) => {
    const framing = codec.resolveFraming(serialization, options.framing)
    return internalClient.make<E | MuxError>({
      connect: Effect.map(open, (stream): Connection<E | MuxError> => fromStream(stream, address)),
      codec: () => codec.make(serialization, framing),
      retrySchedule: options.retrySchedule ?? internalClient.defaultRetrySchedule,
      heartbeat: internalClient.resolveHeartbeat(options.heartbeat),
      address,
      retryTransientErrors: options.retryTransientErrors ?? false
    })
  })

/**
 * A client protocol on a stream of `session`; a new stream is opened on every reconnection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeClient = (
  session: Session.Session,
  options?: ClientOptions
): Effect.Effect<RpcClient.Protocol["Type"], never, Scope.Scope | RpcSerialization.RpcSerialization> =>
  client(options ?? {}, session.open({ eager: true }), undefined)

/**
 * A client protocol on a stream of the `MuxSession` in context, which other clients may share.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolClient = (
  options?: ClientOptions
): Layer.Layer<RpcClient.Protocol, never, Session.MuxSession | RpcSerialization.RpcSerialization> =>
  Layer.scoped(RpcClient.Protocol, Effect.flatMap(Session.MuxSession, (session) => makeClient(session, options)))

/**
 * A client protocol that owns its connection: TCP, a muxado client session and one stream, all opened again on
 * every reconnection.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProtocolTcp = (
  options: Tcp.ConnectOptions & ClientOptions & { readonly session?: Omit<Session.Options, "role"> | undefined }
): Layer.Layer<RpcClient.Protocol, never, RpcSerialization.RpcSerialization> =>
  Layer.scoped(
    RpcClient.Protocol,
    client(
      options,
      Effect.flatMap(Session.connect(options), (session) => session.open({ eager: true })) as Effect.Effect<
        MuxStream.MuxStream,
        TransportError | MuxError,
        Scope.Scope
      >,
      Address.format(Address.tcp(options.host, options.port))
    )
  )

/**
 * A server protocol that serves muxado sessions and streams handed to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerProtocol {
  readonly protocol: RpcServer.Protocol["Type"]
  /** Serves one stream as one client until it ends. */
  readonly handleStream: (stream: MuxStream.MuxStream) => Effect.Effect<void, never, Scope.Scope>
  /** Accepts streams of `session`, each a client, until the session ends. */
  readonly handleSession: (session: Session.Session) => Effect.Effect<void>
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
    const handleStream = (stream: MuxStream.MuxStream) =>
      serve(fromStream(stream, undefined), codec.make(serialization, framing))
    const handleSession = (session: Session.Session) =>
      Effect.gen(function*() {
        const parent = yield* Effect.scope
        const streams = yield* FiberSet.make<void>()
        while (true) {
          // Each stream has its own scope, closed when its client is done, or with the session at the latest.
          const scope = yield* Scope.fork(parent, ExecutionStrategy.sequential)
          const accepted = yield* Effect.either(Scope.extend(session.accept, scope))
          if (Either.isLeft(accepted)) return yield* Scope.close(scope, Exit.void)
          yield* FiberSet.run(
            streams,
            handleStream(accepted.right).pipe(
              Scope.extend(scope),
              Effect.onExit((exit) => Scope.close(scope, exit))
            )
          )
        }
      }).pipe(Effect.scoped)
    return { protocol, handleStream, handleSession }
  })

/**
 * @since 0.1.0
 * @category models
 */
export interface ServerOptions {
  readonly listen: Server.ListenOptions
  readonly framing?: FramingOption | undefined
  readonly session?: Omit<Session.Options, "role"> | undefined
  readonly maxConnections?: number | undefined
  readonly idleTimeout?: Duration.DurationInput | undefined
  readonly shutdownTimeout?: Duration.DurationInput | undefined
}

/**
 * A server protocol listening on TCP, a Unix socket or TLS: a muxado server session per connection, a client
 * per stream.
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
    const { handleSession, protocol } = yield* makeServerProtocol(options)
    const server = yield* Session.serve({
      listen: options.listen,
      session: options.session,
      maxConnections: options.maxConnections,
      idleTimeout: options.idleTimeout,
      shutdownTimeout: options.shutdownTimeout,
      handler: handleSession
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
