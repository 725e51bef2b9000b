/**
 * The message sockets eMQP runs on: ZMTP ROUTER and DEALER reduced to what the broker, workers, clients and
 * schedulers need (`send`, `trySend` and `receive` of multipart messages), so each runs over any endpoint the ZMTP
 * module serves (`tcp://`, `ipc://`, `memory://`) with any mechanism (NULL, PLAIN, CURVE).
 *
 * A ROUTER receives `[routingId, ...frames]` and sends the same shape. Sending to a peer that is not connected
 * fails with code `EHOSTUNREACH`; `send` to a peer whose queue is full waits, `trySend` fails with `EAGAIN`, so no
 * message is dropped without the caller knowing. A DEALER sends
 * and receives the frames as they are, with an explicit ASCII identity (a Python EventMQ router cannot decode
 * libzmq's binary automatic ids).
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
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
  /** Sends, waiting while the peer's queue is full. */
  readonly send: (message: Message) => Effect.Effect<void, EmqpError>
  /**
   * Sends without waiting (the reference's `NOBLOCK`): a full peer queue fails at once with code `EAGAIN`, an
   * unknown ROUTER peer with `EHOSTUNREACH`. What the broker uses, so that one slow peer never holds the others.
   */
  readonly trySend: (message: Message) => Effect.Effect<void, EmqpError>
  /**
   * `trySend`, synchronously: the error, or `undefined` once queued. Optional: the broker uses it where a socket
   * has it, to forward messages without an Effect for each.
   */
  readonly trySendNow?: ((message: Message) => EmqpError | undefined) | undefined
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
    code: error.reason === "HostUnreachable"
      ? "EHOSTUNREACH"
      : error.reason === "WouldBlock"
      ? "EAGAIN"
      : error.code ?? error.reason,
    detail: error.message,
    cause: error
  })

/** How a DEALER or SUB dials again after its connection drops: 100 ms doubling to 1 s, as libzmq's connect does. */
const reconnect: Schedule.Schedule<unknown, ZmtpError> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(1)))
)

const bindTo = (socket: Zmtp.Socket, endpoint: string): Effect.Effect<void, EmqpError> =>
  Effect.mapError(Effect.asVoid(socket.bind(endpoint)), fromZmtp)

const connectTo = (socket: Zmtp.Socket, endpoint: string): Effect.Effect<void, EmqpError> =>
  Effect.mapError(socket.connect(endpoint), fromZmtp)

const messageSocket = (socket: Zmtp.Socket): MessageSocket => ({
  // Queued at once when there is room; only a full pipe waits, through the socket's own `send`.
  send: (message) =>
    Effect.suspend(() => {
      const error = socket.unsafeTrySend(message)
      return error === undefined
        ? Effect.void
        : error.reason === "WouldBlock"
        ? Effect.mapError(socket.send(message), fromZmtp)
        : Effect.fail(fromZmtp(error))
    }),
  trySend: (message) => Effect.mapError(socket.trySend(message), fromZmtp),
  trySendNow: (message) => {
    const error = socket.unsafeTrySend(message)
    return error === undefined ? undefined : fromZmtp(error)
  },
  receive: Effect.mapError(socket.receive, fromZmtp)
})

const common = (options: SocketOptions) => ({
  mechanism: options.mechanism,
  sendHighWaterMark: options.highWaterMark ?? 1000,
  receiveHighWaterMark: options.highWaterMark ?? 1000,
  maxMessageSize: options.maxMessageSize ?? 16 * 1024 * 1024,
  reconnect
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
    return messageSocket(socket)
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
    return messageSocket(socket)
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
    return { ...messageSocket(socket), receive: Effect.never }
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
    const notSupported = () => Effect.fail(new EmqpError({ reason: "Socket", code: "ENOTSUP", detail: "a SUB socket does not send" }))
    return { send: notSupported, trySend: notSupported, receive: Effect.mapError(socket.receive, fromZmtp) }
  })
