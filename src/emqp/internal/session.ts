/**
 * The conversation a worker or scheduler holds with the broker: connect with a fresh identity, INFORM, wait for
 * the ACK, heartbeat both ways, and start again with a new identity when the broker goes silent, says KBYE or
 * does not answer — what the reference job manager and scheduler do, with the timings configurable.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Command from "../Command.js"
import { EmqpError } from "../EmqpError.js"
import type * as Socket from "../Socket.js"
import { loop } from "../../internal/loop.js"

export interface SessionOptions {
  readonly connect: Socket.Connect
  readonly peerType: "worker" | "scheduler"
  readonly queues: ReadonlyArray<Command.Queue>
  readonly heartbeatInterval: Duration.Duration
  readonly heartbeatTimeout: Duration.Duration
  readonly liveness: number
  readonly ackTimeout: Duration.Duration
  readonly reconnectDelay: Duration.Duration
  readonly profile: Command.Profile
}

export interface Connection {
  readonly identity: string
  readonly send: (command: Command.Command) => Effect.Effect<void, EmqpError>
}

export interface SessionHandlers<R> {
  /** The broker ACKed the INFORM. */
  readonly onConnected: (connection: Connection) => Effect.Effect<void, never, R>
  /** The connection ended (before a reconnect). */
  readonly onDisconnected: (connection: Connection, reason: string) => Effect.Effect<void, never, R>
  /** A command from the broker other than ACK, HEARTBEAT and KBYE. */
  readonly onCommand: (connection: Connection, command: Command.Command) => Effect.Effect<void, never, R>
}

class Ended {
  constructor(readonly reason: string) {}
}

/** Holds one conversation; fails with `Ended` when it is over. */
const converse = <R>(options: SessionOptions, handlers: SessionHandlers<R>) =>
  Effect.gen(function*() {
    const identity = Command.unsafeMessageId()
    const socket = yield* options.connect(identity)
    const connection: Connection = {
      identity,
      send: (command) => socket.send(Command.encode(command, options.profile))
    }
    const informId = Command.unsafeMessageId()
    yield* connection.send(Command.Inform.make({ msgid: informId, queues: options.queues, peerType: options.peerType }, true))
    // Until the ACK, everything else is dropped, as the reference does.
    yield* socket.receive.pipe(
      Effect.map((message) => Command.decode(message)),
      Effect.repeat({
        until: (decoded) => Either.isRight(decoded) && decoded.right._tag === "Ack" && decoded.right.acked === informId
      }),
      Effect.timeoutFail({
        duration: options.ackTimeout,
        onTimeout: () => new EmqpError({ reason: "Timeout", command: "INFORM", msgid: informId, detail: "no ACK" })
      })
    )
    // Written per message by the reader, read by the watchdog: a plain variable, not a Ref.
    let lastReceived = yield* Clock.currentTimeMillis
    yield* handlers.onConnected(connection)
    yield* Effect.logInfo(`connected as ${identity}`)

    const reader = socket.receive.pipe(
      Effect.flatMap((message) =>
        Effect.clockWith((clock) => {
          lastReceived = clock.unsafeCurrentTimeMillis()
          const decoded = Command.decode(message)
          return Either.isLeft(decoded)
            ? Effect.logWarning(`ignored a message from the broker: ${decoded.left.message}`)
            : decoded.right._tag === "Kbye"
            ? Effect.fail(new Ended("the broker said KBYE"))
            : decoded.right._tag === "Heartbeat" || decoded.right._tag === "Ack"
            ? Effect.void
            : handlers.onCommand(connection, decoded.right)
        })
      ),
      loop
    )
    const heartbeats = Effect.forever(
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        connection.send(
          Command.Heartbeat.make({ msgid: Command.unsafeMessageId(), timestamp: (now / 1000).toFixed(3) }, true)
        )).pipe(Effect.zipRight(Effect.sleep(options.heartbeatInterval)))
    )
    const deadAfter = Duration.toMillis(options.heartbeatTimeout) * options.liveness
    const watchdog = Effect.forever(
      Effect.zipRight(
        Effect.sleep(options.heartbeatTimeout),
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          now - lastReceived >= deadAfter
            ? Effect.fail(new Ended(`the broker was silent for ${now - lastReceived} ms`))
            : Effect.void)
      )
    )
    const ended = yield* Effect.raceAll([
      Effect.flip(reader),
      Effect.flip(heartbeats),
      Effect.flip(watchdog)
    ])
    const reason = ended instanceof Ended ? ended.reason : ended.message
    yield* handlers.onDisconnected(connection, reason)
    return yield* Effect.fail(new Ended(reason))
  }).pipe(Effect.scoped)

/** Holds conversations one after another, forever. */
export const run = <R>(options: SessionOptions, handlers: SessionHandlers<R>): Effect.Effect<never, never, R> =>
  converse(options, handlers).pipe(
    Effect.catchAll((error) =>
      Effect.logInfo(`reconnecting: ${error instanceof Ended ? error.reason : error.message}`)
    ),
    Effect.zipRight(Effect.sleep(options.reconnectDelay)),
    Effect.forever
  )
