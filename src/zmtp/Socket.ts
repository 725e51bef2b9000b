/**
 * ZeroMQ sockets with libzmq's semantics over ZMTP 3.1: DEALER, ROUTER, REQ, REP, PUB, SUB, XPUB, XSUB, PUSH,
 * PULL and PAIR.
 *
 * A socket is a scoped resource. It binds and connects to any number of endpoints at once (`tcp://host:port`,
 * `ipc://path`, and `memory://name` for in-process use); connect endpoints reconnect with a `Schedule`. Messages
 * are arrays of frames; `send` waits or drops at the high-water mark as the socket type prescribes (`trySend`
 * fails with `WouldBlock` instead of waiting), `receive` pulls one message, `messages` streams them.
 *
 * High-water marks are per peer, as in libzmq: each peer has an outbound pipe and an inbound queue of its own, and
 * `receive` takes from the peers' queues in turn, so that one busy peer cannot starve the others.
 *
 * | type | when a peer's outbound pipe is full | when a peer's inbound queue is full |
 * |---|---|---|
 * | DEALER, PUSH, PAIR, REQ | `send` waits for any peer with room | that connection is not read until there is room |
 * | ROUTER | dropped (`routerMandatory`: waits, or `HostUnreachable` for an unknown id) | not read until there is room |
 * | PUB, XPUB | dropped for that subscriber only | — (XPUB: subscriptions wait for room) |
 * | SUB, XSUB | — | dropped (after one turn for the application), the connection is still read |
 * | REP, PULL | — (REP: the reply is dropped) | not read until there is room |
 *
 * Drops are counted in `stats` and in the process-wide `metrics`. Socket events tell which peer came and went
 * (`routingId`, `peerAddress`, `userId`).
 *
 * @example
 * ```ts
 * import * as Effect from "effect/Effect"
 * import { Socket } from "effect-wire/zmtp"
 *
 * const program = Effect.gen(function*() {
 *   const router = yield* Socket.make({ type: "ROUTER" })
 *   yield* router.bind("memory://jobs")
 *   const dealer = yield* Socket.make({ type: "DEALER", identity: "worker-1" })
 *   yield* dealer.connect("memory://jobs")
 *   yield* dealer.send([Socket.frame("hello")])
 *   const [id, body] = yield* router.receive // id = "worker-1"
 *   yield* router.send([id!, Socket.frame("world")])
 * }).pipe(Effect.scoped)
 * ```
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { Transport } from "../transport/Transport.js"
import type { Message } from "./Frame.js"
import * as Behaviour from "./internal/behaviour.js"
import * as Connection from "./internal/connection.js"
import * as Endpoint from "./internal/endpoint.js"
import { Peer } from "./internal/peer.js"
import * as Counters from "./internal/counters.js"
import { FairQueue, Lane, Pipe, Signal } from "./internal/pipe.js"
import type { Mechanism } from "./Mechanism.js"
import * as Null from "./Null.js"
import { ZmtpError } from "./ZmtpError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type SocketType = "PAIR" | "PUB" | "SUB" | "REQ" | "REP" | "DEALER" | "ROUTER" | "PULL" | "PUSH" | "XPUB" | "XSUB"

/**
 * Heartbeats (ZMTP 3.1 PING/PONG): a PING every `interval`; the connection is dropped after `timeout` without any
 * traffic; `ttl` asks the peer to drop it after that long without traffic from us.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeartbeatOptions {
  readonly interval: Duration.DurationInput
  /** Default: `interval`. */
  readonly timeout?: Duration.DurationInput | undefined
  /** Default: none (0). Sent in deciseconds, at most 6553.5 s. */
  readonly ttl?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly type: SocketType
  /** The `Identity` sent to ROUTER peers (1..255 bytes, not starting with a zero byte). */
  readonly identity?: Uint8Array | string | undefined
  /** Default: NULL. */
  readonly mechanism?: Mechanism | undefined
  /** Messages queued per peer before `send` waits or drops (per the socket type). Default: 1000. */
  readonly sendHighWaterMark?: number | undefined
  /**
   * Messages queued for `receive` per peer (each peer has its own queue, taken from in turn). When a peer's
   * queue is full its connection stops being read; SUB and XSUB drop its messages instead. Default: 1000.
   */
  readonly receiveHighWaterMark?: number | undefined
  /** Largest inbound message in bytes; a peer that sends more is disconnected. Default: unlimited. */
  readonly maxMessageSize?: number | undefined
  /** Deadline for greeting and handshake. Default: 30 seconds. */
  readonly handshakeTimeout?: Duration.DurationInput | undefined
  /**
   * Delays between reconnection attempts of `connect` endpoints; reset after each successful handshake; when it
   * ends, the endpoint gives up. Default: 100 ms doubling up to 10 s.
   */
  readonly reconnect?: Schedule.Schedule<unknown, ZmtpError> | undefined
  readonly heartbeat?: HeartbeatOptions | undefined
  /** ROUTER: fail sends to unknown peers with `HostUnreachable` and wait at a full pipe instead of dropping. */
  readonly routerMandatory?: boolean | undefined
  /** ROUTER: a new connection with an identity in use takes it over and the old one is closed. */
  readonly routerHandover?: boolean | undefined
  /** How long closing the socket waits for queued messages to be written. Default: 1 second. */
  readonly linger?: Duration.DurationInput | undefined
}

/**
 * What happens to a socket's connections.
 *
 * @since 0.1.0
 * @category models
 */
export type SocketEvent =
  | { readonly _tag: "Listening"; readonly endpoint: string }
  | {
    readonly _tag: "Connected"
    readonly endpoint: string
    readonly peerAddress: string
    readonly peerSocketType: string
    /** The routing id a ROUTER gave the peer. */
    readonly routingId: Uint8Array | undefined
    readonly userId: string | undefined
  }
  | {
    readonly _tag: "Disconnected"
    readonly endpoint: string
    readonly peerAddress: string
    readonly peerSocketType: string
    /** The routing id the peer had (ROUTER), so that the application can forget it. */
    readonly routingId: Uint8Array | undefined
    readonly userId: string | undefined
    readonly error: ZmtpError
  }
  | {
    readonly _tag: "HandshakeFailed"
    readonly endpoint: string
    /** Who tried: `host:port`, a path or `memory:name`. */
    readonly peerAddress: string
    readonly error: ZmtpError
  }
  | { readonly _tag: "ConnectFailed"; readonly endpoint: string; readonly error: ZmtpError }

/**
 * @since 0.1.0
 * @category models
 */
export interface Socket {
  readonly type: SocketType
  /** Listens on an endpoint; returns it with the port chosen by the system for `tcp://host:0`. */
  readonly bind: (endpoint: string) => Effect.Effect<string, ZmtpError>
  /** Connects to an endpoint, now and again after every disconnection (see `reconnect`). Returns at once. */
  readonly connect: (endpoint: string) => Effect.Effect<void, ZmtpError>
  /** Serves a transport opened elsewhere as one connection of this socket, without reconnection. */
  readonly attach: (transport: Transport, endpoint?: string) => Effect.Effect<void>
  /** Sends one message; waits or drops at the high-water mark as the socket type prescribes. */
  readonly send: (message: Message) => Effect.Effect<void, ZmtpError>
  /**
   * Sends one message without waiting (libzmq's `ZMQ_DONTWAIT`): where `send` would wait for room, fails with
   * `WouldBlock` instead and the message is not queued. Where `send` drops (PUB, ROUTER), so does this.
   */
  readonly trySend: (message: Message) => Effect.Effect<void, ZmtpError>
  /**
   * `trySend`, synchronously: the error, or `undefined` once the message is queued (or dropped where the type
   * drops). For a hot path that sends many messages from one fiber and would rather not build an Effect for each.
   */
  readonly unsafeTrySend: (message: Message) => ZmtpError | undefined
  /** The next message. */
  readonly receive: Effect.Effect<Message, ZmtpError>
  /** Messages as they arrive; ends when the socket closes. */
  readonly messages: Stream.Stream<Message, ZmtpError>
  /** Subscribes now; events from this point on are in the stream. */
  readonly events: Effect.Effect<Stream.Stream<SocketEvent>, never, Scope.Scope>
  /** SUB / XSUB: adds a prefix subscription (counted: subscribe twice, unsubscribe twice). */
  readonly subscribe: (topic: Uint8Array | string) => Effect.Effect<void, ZmtpError>
  readonly unsubscribe: (topic: Uint8Array | string) => Effect.Effect<void, ZmtpError>
  /** Peers with a finished handshake. */
  readonly connectedPeers: Effect.Effect<number>
  /** This socket's counters since it opened (the process-wide totals are in `metrics`). */
  readonly stats: Effect.Effect<Stats>
}

/**
 * A socket's counters. Bytes are those after the handshake, ZMTP framing (and CURVE boxes) included; messages count
 * whole multipart messages, received ones whether the socket then delivers or drops them.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly messagesIn: number
  readonly messagesOut: number
  readonly bytesIn: number
  readonly bytesOut: number
  /** Dropped at a high-water mark (PUB/XPUB per subscriber, SUB/XSUB inbound, ROUTER) or for want of a route. */
  readonly dropped: number
  readonly handshakeFailures: number
}

/**
 * Process-wide counters over every ZMTP socket (`effect/Metric`), updated once per read, per written batch and per
 * dropping send rather than per message: `zmtp_messages_in`, `zmtp_messages_out`, `zmtp_bytes_in`,
 * `zmtp_bytes_out`, `zmtp_messages_dropped`, `zmtp_handshake_failures`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = Counters.metrics

const encoder = new TextEncoder()

/**
 * Runs a release step for at most `limit`: past it, the step goes on in the background and we move on. Release
 * steps are uninterruptible, so a plain timeout would wait for them anyway.
 */
const bounded = (effect: Effect.Effect<void>, limit: Duration.Duration): Effect.Effect<void> =>
  Effect.interruptible(Effect.disconnect(effect)).pipe(Effect.timeout(limit), Effect.ignore)

/**
 * A frame from text (UTF-8) or bytes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const frame = (value: string | Uint8Array): Uint8Array => typeof value === "string" ? encoder.encode(value) : value

/**
 * The default reconnection schedule: 100 ms, doubling, at most 10 s apart.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaultReconnect: Schedule.Schedule<unknown, ZmtpError> = Schedule.exponential(Duration.millis(100)).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(10)))
)

/**
 * Opens a socket; closing the scope waits up to `linger` for queued messages, then closes every connection and
 * listener.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<Socket, ZmtpError, Scope.Scope> =>
  Effect.gen(function*() {
    const type = options.type
    const identity = options.identity === undefined ? undefined : frame(options.identity)
    if (identity !== undefined && (identity.length === 0 || identity.length > 255 || identity[0] === 0)) {
      return yield* new ZmtpError({ reason: "InvalidState", detail: "identity must be 1..255 bytes, not starting with 0" })
    }
    const sendHwm = Math.max(1, options.sendHighWaterMark ?? 1000)
    const config: Connection.ConnectionConfig = {
      socketType: type,
      identity,
      mechanism: options.mechanism ?? Null.mechanism,
      maxMessageSize: options.maxMessageSize ?? Number.POSITIVE_INFINITY,
      handshakeTimeout: Duration.decode(options.handshakeTimeout ?? Duration.seconds(30)),
      heartbeat: options.heartbeat === undefined ? undefined : {
        interval: Duration.decode(options.heartbeat.interval),
        timeout: Duration.decode(options.heartbeat.timeout ?? options.heartbeat.interval),
        ttl: Duration.decode(options.heartbeat.ttl ?? Duration.zero)
      },
      compatible: Behaviour.compatible[type] ?? [],
      endpoint: ""
    }
    const events = yield* PubSub.sliding<SocketEvent>(1024)
    const emit = (event: SocketEvent) => PubSub.publish(events, event)
    const signal = new Signal()
    const counters = new Counters.Counters()
    const receiveHwm = Math.max(1, options.receiveHighWaterMark ?? 1000)
    const peers = new Set<Peer>()
    let closing = false
    const closedError = () => new ZmtpError({ reason: "Closed", detail: "socket is closed" })
    const core: Behaviour.Core = {
      type,
      inbox: new FairQueue(),
      signal,
      peers,
      routerMandatory: options.routerMandatory === true,
      routerHandover: options.routerHandover === true,
      closed: closedError,
      counters
    }
    const behaviour = Behaviour.make(core)
    let peerIds = 0
    const newPeer = (endpoint: string, persistent: boolean) =>
      new Peer(peerIds++, endpoint, new Pipe(sendHwm, () => signal.notify()), new Lane(receiveHwm), persistent)

    const fibers = yield* FiberSet.make()
    // Listeners close after the linger finalizer below (scopes close in reverse order).
    const listenerScope = yield* Scope.make()
    yield* Effect.addFinalizer(() => bounded(Scope.close(listenerScope, Exit.void), Duration.seconds(1)))
    const runFork = yield* FiberSet.runtime(fibers)()

    /** Handshake, attach, run until the connection ends, detach. Fails with why it ended. */
    const serve = (
      transport: Transport,
      peer: Peer,
      endpoint: string,
      onConnected: () => void
    ): Effect.Effect<void, ZmtpError> =>
      Effect.gen(function*() {
        const connectionConfig = { ...config, endpoint }
        const peerAddress = Connection.addressOf((yield* transport.info).remote)
        const connection = yield* Connection.handshake(transport, connectionConfig).pipe(
          Effect.tapError((error) => {
            counters.handshakeFailures++
            counters.flush()
            return emit({ _tag: "HandshakeFailed", endpoint, peerAddress, error })
          }),
          Effect.withSpan("zmtp.handshake", {
            attributes: { "messaging.system": "zeromq", "zmtp.socket_type": type, "zmtp.endpoint": endpoint }
          })
        )
        peer.connection = connection
        const kicked = yield* Deferred.make<never, ZmtpError>()
        peer.kick = () => Deferred.unsafeDone(kicked, Exit.fail(new ZmtpError({ reason: "Closed", endpoint, detail: "handed over to a new connection" })))
        if (!behaviour.attach(peer)) {
          peer.connection = undefined
          const error = new ZmtpError({ reason: "InvalidState", endpoint, detail: `${type} accepts no more peers` })
          yield* emit({ _tag: "HandshakeFailed", endpoint, peerAddress, error })
          return yield* error
        }
        peers.add(peer)
        onConnected()
        yield* emit({
          _tag: "Connected",
          endpoint,
          peerAddress: connection.peerAddress,
          peerSocketType: connection.peerSocketType,
          routingId: peer.routingId,
          userId: connection.userId
        })
        const exit = yield* Effect.exit(Effect.raceFirst(
          Connection.run(connection, connectionConfig, {
            pipe: peer.pipe,
            deliver: (message) => behaviour.deliver(peer, message),
            awaitRoom: behaviour.awaitRoom(peer),
            onSubscription: (subscribe, topic) => behaviour.onSubscription(peer, subscribe, topic),
            counters
          }),
          Deferred.await(kicked)
        )).pipe(Effect.onInterrupt(() => Effect.sync(() => {
          peers.delete(peer)
          peer.connection = undefined
          behaviour.detach(peer)
        })))
        const routingId = peer.routingId
        peers.delete(peer)
        peer.connection = undefined
        peer.kick = undefined
        behaviour.detach(peer)
        const error = Exit.isFailure(exit) ? Option.getOrElse(Cause.failureOption(exit.cause), closedError) : closedError()
        yield* emit({
          _tag: "Disconnected",
          endpoint,
          peerAddress: connection.peerAddress,
          peerSocketType: connection.peerSocketType,
          routingId,
          userId: connection.userId,
          error
        })
        // The peer closed: finish gracefully so our last writes still reach it. Anything else: abort.
        if (error.reason === "Closed") yield* transport.close({ timeout: Duration.seconds(1) })
        return yield* error
      }).pipe(
        // Bounded: a transport whose abort never settles must not hold the socket's close.
        Effect.ensuring(bounded(transport.abort(), Duration.seconds(1)))
      )

    /** Serves one accepted connection to its end. */
    const serveAccepted = (endpoint: string) => (transport: Transport): Effect.Effect<void> =>
      closing ? transport.abort() : Effect.ignore(serve(transport, newPeer(endpoint, false), endpoint, () => {}))

    const bind = (endpoint: string): Effect.Effect<string, ZmtpError> =>
      Effect.gen(function*() {
        const parsed = yield* Endpoint.parse(endpoint)
        const bound = yield* Scope.extend(Endpoint.listen(parsed, serveAccepted, (effect) => runFork(effect)), listenerScope)
        yield* emit({ _tag: "Listening", endpoint: bound })
        return bound
      })

    /** Closes a connection's scope, giving up after a second: a transport that never settles cannot hold us. */
    const closeBounded = (connectionScope: Scope.CloseableScope) =>
      bounded(Scope.close(connectionScope, Exit.void), Duration.seconds(1))

    const reconnect = options.reconnect ?? defaultReconnect
    const connect = (endpoint: string): Effect.Effect<void, ZmtpError> =>
      Effect.gen(function*() {
        const parsed = yield* Endpoint.parse(endpoint)
        const name = Endpoint.format(parsed)
        const peer = newPeer(name, true)
        behaviour.register(peer)
        const loop = Effect.gen(function*() {
          const driver = yield* Schedule.driver(reconnect)
          while (!closing) {
            let connected = false
            const connectionScope = yield* Scope.make()
            const exit = yield* Effect.exit(
              Effect.flatMap(
                Effect.tapError(
                  Scope.extend(Endpoint.open(parsed), connectionScope),
                  (error) => emit({ _tag: "ConnectFailed", endpoint: name, error })
                ),
                (transport) => serve(transport, peer, name, () => {
                  connected = true
                })
              )
            ).pipe(Effect.ensuring(closeBounded(connectionScope)))
            if (closing) return
            if (connected) yield* driver.reset
            const error = Exit.isFailure(exit)
              ? Option.getOrElse(Cause.failureOption(exit.cause), closedError)
              : closedError()
            const next = yield* Effect.option(driver.next(error))
            if (Option.isNone(next)) return
          }
        })
        runFork(loop)
      })

    const attach = (transport: Transport, endpoint = "attached") =>
      Effect.sync(() => {
        runFork(serveAccepted(endpoint)(transport))
      })

    const toTopic = (topic: Uint8Array | string) => frame(topic)

    // Finalizers are uninterruptible, and a timeout there would wait out its own timer: the linger runs
    // interruptible so that a drained socket closes at once.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        closing = true
        const linger = Duration.decode(options.linger ?? Duration.seconds(1))
        const live = Array.from(peers).filter((peer) => peer.connection !== undefined)
        if (Duration.toMillis(linger) > 0) {
          // Let writers flush what is queued, then close gracefully so the bytes reach the peers. The wait runs in
          // a fiber of its own: a socket closed by interrupting its owner still lingers (its writers hold messages
          // until the end of the event-loop turn), and the timeout can interrupt the wait.
          yield* Effect.forEach(live, (peer) => peer.pipe.awaitIdle, { concurrency: "unbounded", discard: true }).pipe(
            Effect.timeout(linger),
            Effect.ignore,
            Effect.interruptible,
            Effect.forkDaemon,
            Effect.flatMap(Fiber.await)
          )
        }
        yield* Effect.forEach(
          live,
          (peer) => {
            const transport = peer.connection?.transport
            if (transport === undefined) return Effect.void
            // Bounded whatever the transport does: the close, then at most a short grace for its abort.
            const close = Duration.toMillis(linger) > 0 ? transport.close({ timeout: linger }) : transport.abort()
            return bounded(close, Duration.sum(linger, Duration.millis(250)))
          },
          { concurrency: "unbounded", discard: true }
        )
        core.inbox.close()
      })
    )

    const receive = behaviour.receive
    const send = (dontWait: boolean) => (message: Message) =>
      closing
        ? Effect.fail(closedError())
        : message.length === 0
        ? Effect.fail(new ZmtpError({ reason: "InvalidState", detail: "a message has at least one frame" }))
        : behaviour.send(message, dontWait)
    const trySend = send(true)
    const offer = behaviour.offer
    const unsafeTrySend = (message: Message): ZmtpError | undefined => {
      if (offer === undefined || closing || message.length === 0) {
        // Never waits (dontWait), so it completes synchronously.
        const exit = Effect.runSyncExit(trySend(message))
        return Exit.isSuccess(exit) ? undefined : Option.getOrElse(Cause.failureOption(exit.cause), closedError)
      }
      return offer(message)
    }
    const socket: Socket = {
      type,
      bind,
      connect,
      attach,
      send: send(false),
      trySend,
      unsafeTrySend,
      receive,
      messages: Stream.repeatEffectOption(Effect.mapError(receive, Option.some)).pipe(
        Stream.catchAll((error) => error.reason === "Closed" ? Stream.empty : Stream.fail(error))
      ),
      events: Effect.map(PubSub.subscribe(events), (queue) => Stream.fromQueue(queue)),
      subscribe: (topic) => behaviour.subscribe(toTopic(topic), true),
      unsubscribe: (topic) => behaviour.subscribe(toTopic(topic), false),
      connectedPeers: Effect.sync(() => peers.size),
      stats: Effect.sync(() => ({
        messagesIn: counters.messagesIn,
        messagesOut: counters.messagesOut,
        bytesIn: counters.bytesIn,
        bytesOut: counters.bytesOut,
        dropped: counters.dropped,
        handshakeFailures: counters.handshakeFailures
      }))
    }
    return socket
  })

/**
 * Socket options plus the endpoints to bind and connect when the socket opens.
 *
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends Options {
  readonly bind?: ReadonlyArray<string> | string | undefined
  readonly connect?: ReadonlyArray<string> | string | undefined
}

const endpoints = (value: ReadonlyArray<string> | string | undefined): ReadonlyArray<string> =>
  value === undefined ? [] : typeof value === "string" ? [value] : value

/**
 * A socket as a service under the application's own tag, one tag per socket role; it binds and connects as the
 * options say and closes with the layer.
 *
 * @example
 * ```ts
 * import * as Context from "effect/Context"
 * import * as Effect from "effect/Effect"
 * import { Socket } from "effect-wire/zmtp"
 *
 * class Jobs extends Context.Tag("app/Jobs")<Jobs, Socket.Socket>() {}
 *
 * const JobsLive = Socket.layer(Jobs, { type: "ROUTER", bind: "tcp://127.0.0.1:5555" })
 *
 * const serve = Effect.gen(function*() {
 *   const jobs = yield* Jobs
 *   const [id, ...request] = yield* jobs.receive
 *   yield* jobs.send([id!, ...request])
 * }).pipe(Effect.forever, Effect.provide(JobsLive))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Id>(tag: Context.Tag<Id, Socket>, options: LayerOptions): Layer.Layer<Id, ZmtpError> =>
  Layer.scoped(
    tag,
    Effect.gen(function*() {
      const socket = yield* make(options)
      for (const endpoint of endpoints(options.bind)) yield* socket.bind(endpoint)
      for (const endpoint of endpoints(options.connect)) yield* socket.connect(endpoint)
      return socket
    })
  )

/**
 * `layer` with its options read from `Config`, e.g.
 * `Config.all({ type: Config.literal("DEALER")("ZMQ_TYPE"), connect: Config.string("ZMQ_CONNECT") })`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <Id>(
  tag: Context.Tag<Id, Socket>,
  config: Config.Config.Wrap<LayerOptions>
): Layer.Layer<Id, ZmtpError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(Effect.map(Config.unwrap(config), (options) => layer(tag, options)))
