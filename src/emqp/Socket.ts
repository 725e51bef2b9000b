/**
 * The message sockets eMQP runs on: ZMTP ROUTER and DEALER reduced to what the broker, workers, clients and
 * schedulers need (`send` and `receive` of multipart messages), so each of them runs over any endpoint the ZMTP
 * module serves (`tcp://`, `ipc://`, `memory://`) with any mechanism (NULL, PLAIN, CURVE).
 *
 * A ROUTER receives `[routingId, ...frames]` and sends the same shape. Sending to a peer that is not connected
 * fails with code `EHOSTUNREACH`; sending to a peer whose queue is full waits (the broker bounds that wait), so
 * no message is dropped without the caller knowing. A DEALER sends
 * and receives the frames as they are, with an explicit ASCII identity (a Python EventMQ router cannot decode
 * libzmq's binary automatic ids).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Server from "../transport/Server.js"
import * as Tcp from "../transport/Tcp.js"
import type { Mechanism } from "../zmtp/Mechanism.js"
import * as Zmtp from "../zmtp/Socket.js"
import type { ZmtpError } from "../zmtp/ZmtpError.js"
import { EmqpError } from "./EmqpError.js"

/**
 * A multipart message: its frames.
 *
 * @since 0.1.0
 * @category models
 */
export type Message = ReadonlyArray<Uint8Array>

/**
 * A connected message socket (ROUTER or DEALER).
 *
 * @since 0.1.0
 * @category models
 */
export interface MessageSocket {
  readonly send: (message: Message) => Effect.Effect<void, EmqpError>
  readonly receive: Effect.Effect<Message, EmqpError>
}

/**
 * Opens a DEALER with the given identity, connected to the broker; closing the scope closes it. Workers and
 * schedulers open a new one, with a new identity, each time they reconnect.
 *
 * @since 0.1.0
 * @category models
 */
export type Connect = (identity: string) => Effect.Effect<MessageSocket, EmqpError, Scope.Scope>

/**
 * Binds a ROUTER; closing the scope unbinds it.
 *
 * @since 0.1.0
 * @category models
 */
export type Bind = Effect.Effect<MessageSocket, EmqpError, Scope.Scope>

/**
 * @since 0.1.0
 * @category models
 */
export interface SocketOptions {
  /** Default: NULL (what EventMQ 0.3.13 uses). */
  readonly mechanism?: Mechanism | undefined
  /** Messages queued per peer (and for receiving). Default: 1000, libzmq's. */
  readonly highWaterMark?: number | undefined
  /** Largest inbound message in bytes. Default: 16 MiB. */
  readonly maxMessageSize?: number | undefined
}

const fromZmtp = (error: ZmtpError): EmqpError =>
  new EmqpError({
    reason: error.reason === "Closed" ? "Closed" : "Socket",
    code: error.reason === "HostUnreachable" ? "EHOSTUNREACH" : error.code ?? error.reason,
    detail: error.message,
    cause: error
  })

const tcpEndpoint = /^tcp:\/\/(\[[^\]]+\]|[^:]+):([0-9]{1,5})$/

/** `tcp://host:port` as host and port; TCP connections are opened here and handed to the ZMTP socket. */
const tcpAddress = (endpoint: string) => {
  const match = tcpEndpoint.exec(endpoint)
  if (match === null) return undefined
  const host = match[1]!.startsWith("[") ? match[1]!.slice(1, -1) : match[1]!
  return { host: host === "*" ? "0.0.0.0" : host, port: Number(match[2]) }
}

const transportError = (endpoint: string) => (error: { readonly message: string; readonly code?: string | undefined }) =>
  new EmqpError({ reason: "Socket", code: error.code ?? "ECONNREFUSED", detail: `${endpoint}: ${error.message}`, cause: error })

const connectRetry = Schedule.exponential(Duration.millis(100)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(1))))

/** Binds a ZMTP socket; `tcp://` through the transport module's server. */
const bindTo = (socket: Zmtp.Socket, endpoint: string): Effect.Effect<void, EmqpError, Scope.Scope> => {
  const tcp = tcpAddress(endpoint)
  if (!tcp) return Effect.mapError(Effect.asVoid(socket.bind(endpoint)), fromZmtp)
  return Server.make({
    listen: Server.tcp(tcp),
    // The ZMTP socket owns the connection from here; the server only keeps it until it closes.
    handler: (transport) => Effect.zipRight(socket.attach(transport, endpoint), Effect.ignore(transport.closed))
  }).pipe(Effect.asVoid, Effect.mapError(transportError(endpoint)))
}

/**
 * Connects a ZMTP socket. Over `tcp://` a fiber keeps one connection up, dialling again (100 ms doubling to 1 s)
 * whenever it drops, as libzmq's connect does; meanwhile sends wait, as on a DEALER with no peer.
 */
const connectTo = (socket: Zmtp.Socket, endpoint: string): Effect.Effect<void, EmqpError, Scope.Scope> => {
  const tcp = tcpAddress(endpoint)
  if (!tcp) return Effect.mapError(socket.connect(endpoint), fromZmtp)
  const connection = Effect.scoped(Effect.gen(function*() {
    const transport = yield* Effect.retry(Tcp.connect(tcp), { schedule: connectRetry })
    yield* socket.attach(transport, endpoint)
    yield* Effect.ignore(transport.closed)
  }))
  return Effect.asVoid(Effect.forkScoped(Effect.forever(connection)))
}

const common = (options: SocketOptions) => ({
  mechanism: options.mechanism,
  sendHighWaterMark: options.highWaterMark ?? 1000,
  receiveHighWaterMark: options.highWaterMark ?? 1000,
  maxMessageSize: options.maxMessageSize ?? 16 * 1024 * 1024
})

/**
 * A ROUTER bound to `endpoint` (e.g. `tcp://127.0.0.1:47291`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const router = (endpoint: string, options: SocketOptions = {}): Bind =>
  Effect.gen(function*() {
    const socket = yield* Effect.mapError(
      Zmtp.make({ type: "ROUTER", routerMandatory: true, routerHandover: true, ...common(options) }),
      fromZmtp
    )
    yield* bindTo(socket, endpoint)
    const result: MessageSocket = {
      send: (message) => Effect.mapError(socket.send(message), fromZmtp),
      receive: Effect.mapError(socket.receive, fromZmtp)
    }
    return result
  })

/**
 * A function opening DEALERs connected to `endpoint`, one per identity.
 *
 * @since 0.1.0
 * @category constructors
 */
export const dealer = (endpoint: string, options: SocketOptions = {}): Connect => (identity) =>
  Effect.gen(function*() {
    const socket = yield* Effect.mapError(Zmtp.make({ type: "DEALER", identity, ...common(options) }), fromZmtp)
    yield* connectTo(socket, endpoint)
    const result: MessageSocket = {
      send: (message) => Effect.mapError(socket.send(message), fromZmtp),
      receive: Effect.mapError(socket.receive, fromZmtp)
    }
    return result
  })

/**
 * A PUB socket bound to `endpoint`: `send` publishes `[topic, ...frames]` to every matching subscriber.
 *
 * @since 0.1.0
 * @category constructors
 */
export const publisher = (endpoint: string, options: SocketOptions = {}): Bind =>
  Effect.gen(function*() {
    const socket = yield* Effect.mapError(Zmtp.make({ type: "PUB", ...common(options) }), fromZmtp)
    yield* bindTo(socket, endpoint)
    const result: MessageSocket = {
      send: (message) => Effect.mapError(socket.send(message), fromZmtp),
      receive: Effect.never
    }
    return result
  })

/**
 * A SUB socket connected to `endpoint` and subscribed to the topic prefixes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const subscriber = (
  endpoint: string,
  topics: ReadonlyArray<string>,
  options: SocketOptions = {}
): Bind =>
  Effect.gen(function*() {
    const socket = yield* Effect.mapError(Zmtp.make({ type: "SUB", ...common(options) }), fromZmtp)
    for (const topic of topics) yield* Effect.mapError(socket.subscribe(topic), fromZmtp)
    yield* connectTo(socket, endpoint)
    const result: MessageSocket = {
      send: () => Effect.fail(new EmqpError({ reason: "Socket", code: "ENOTSUP", detail: "a SUB socket does not send" })),
      receive: Effect.mapError(socket.receive, fromZmtp)
    }
    return result
  })
