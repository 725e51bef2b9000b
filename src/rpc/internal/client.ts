/**
 * The client side shared by every connection-oriented RPC protocol: one connection at a time, reconnected on a
 * schedule; in-flight requests fail with one `ClientProtocolError` when it is lost; `send` fails while it is
 * down; a Ping/Pong heartbeat finds silent peers.
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import { RpcClientError } from "@effect/rpc/RpcClientError"
import type * as RpcMessage from "@effect/rpc/RpcMessage"
import { constPing } from "@effect/rpc/RpcMessage"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Transport from "../../transport/Transport.js"
import { RpcProtocolError } from "../RpcProtocolError.js"
import type { WireCodec } from "./codec.js"
import type { Connection } from "./connection.js"
import * as Writer from "./writer.js"

export interface ClientConfig<E> {
  /** Opens one connection; it lives until its scope closes. */
  readonly connect: Effect.Effect<Connection<E>, E, Scope.Scope>
  /** A fresh codec for each connection (parsers buffer partial input). */
  readonly codec: () => WireCodec
  readonly retrySchedule: Schedule.Schedule<unknown, RpcProtocolError>
  /** `undefined` disables the heartbeat. */
  readonly heartbeat: Duration.Duration | undefined
  readonly address: string | undefined
  /** Failures to connect before the first connection leave requests waiting instead of failing them. */
  readonly retryTransientErrors: boolean
}

type State =
  | { readonly _tag: "Connecting"; readonly ready: Deferred.Deferred<void, RpcClientError> }
  | { readonly _tag: "Up"; readonly codec: WireCodec; readonly writer: Writer.Writer }
  | { readonly _tag: "Down"; readonly error: RpcClientError }

const toClientError = (error: RpcProtocolError) =>
  new RpcClientError({ reason: "Protocol", message: error.message, cause: error })

export const make = <E>(
  config: ClientConfig<E>
): Effect.Effect<RpcClient.Protocol["Type"], never, Scope.Scope> =>
  RpcClient.Protocol.make((writeResponse) =>
    Effect.gen(function*() {
      let state: State = { _tag: "Connecting", ready: yield* Deferred.make<void, RpcClientError>() }

      const lost = (reason: RpcProtocolError["reason"], cause?: unknown) =>
        new RpcProtocolError({ reason, address: config.address, cause })

      const writeEncoded = (up: Extract<State, { _tag: "Up" }>, message: unknown) => {
        const encoded = up.codec.encode(message)
        if (Either.isLeft(encoded)) return Effect.fail(toClientError(encoded.left))
        // A write error ends the connection (the writer's `run`), which fails every in-flight request at once.
        return encoded.right.length === 0 ? Effect.void : up.writer.offer(encoded.right)
      }

      const send = (message: RpcMessage.FromClientEncoded): Effect.Effect<void, RpcClientError> =>
        Effect.suspend(() => {
          switch (state._tag) {
            case "Up":
              return writeEncoded(state, message)
            case "Down":
              return Effect.fail(state.error)
            case "Connecting":
              // Requests made before the first connection wait for it, and fail with it if it cannot be made.
              return Effect.zipRight(Deferred.await(state.ready), send(message))
          }
        })

      const connection = (onConnected: () => void) =>
        Effect.scoped(Effect.gen(function*() {
          const conn = yield* Effect.mapError(config.connect, (cause) => lost("Connect", cause)).pipe(
            Effect.withSpan("rpc.connect", { attributes: { "server.address": config.address ?? "" } })
          )
          const codec = config.codec()
          const { run: writing, writer } = yield* Writer.make(conn)
          const up = { _tag: "Up", codec, writer } as const
          const previous = state
          state = up
          onConnected()
          if (previous._tag === "Connecting") yield* Deferred.succeed(previous.ready, undefined)
          // Shutting down is a graceful close (the server sees EOF); a lost connection is already gone.
          yield* Effect.addFinalizer((exit) => Exit.isInterrupted(exit) ? conn.close : conn.abort)

          // A Chunk waits until its stream's buffer has room, and must not hold up other requests' responses behind
          // it. Acks keep one chunk per stream in flight, so forking them keeps each stream in order.
          const pending = yield* FiberSet.make<void>()
          let heard = true
          const reader = Effect.gen(function*() {
            while (true) {
              const chunks = yield* Effect.mapError(conn.read, (cause) => lost("ConnectionLost", cause))
              if (Transport.isEof(chunks)) return yield* lost("ConnectionClosed")
              heard = true
              const decoded = codec.decode(chunks)
              if (Either.isLeft(decoded)) {
                return yield* new RpcProtocolError({ ...decoded.left, address: config.address })
              }
              const messages = decoded.right as ReadonlyArray<RpcMessage.FromServerEncoded>
              for (let i = 0; i < messages.length; i++) {
                const message = messages[i]!
                if (message._tag === "Chunk") yield* FiberSet.run(pending, writeResponse(message))
                else yield* writeResponse(message)
              }
            }
          })
          // Any inbound byte proves the peer alive, so a Pong queued behind a large response is no false alarm.
          const heartbeat = config.heartbeat === undefined ? Effect.never : Effect.forever(
            Effect.zipRight(
              Effect.sleep(config.heartbeat),
              Effect.suspend(() => {
                if (!heard) return Effect.fail(lost("HeartbeatTimeout"))
                heard = false
                return Effect.ignore(writeEncoded(up, constPing))
              })
            )
          )
          // Whichever ends first — the reader, the heartbeat or the writer, each only by failing — ends the connection.
          return yield* Effect.raceFirst(
            reader,
            Effect.raceFirst(heartbeat, Effect.mapError(writing, (cause) => lost("ConnectionLost", cause)))
          )
        }))

      const loop = Effect.gen(function*() {
        const driver = yield* Schedule.driver(config.retrySchedule)
        while (true) {
          let connected = false
          const exit = yield* Effect.exit(connection(() => {
            connected = true
          }))
          const error = Exit.isFailure(exit)
            ? Option.getOrElse(Cause.failureOption(exit.cause), () => lost("ConnectionLost", Cause.squash(exit.cause)))
            : lost("ConnectionClosed")
          const clientError = toClientError(error)
          const waiting = config.retryTransientErrors && state._tag === "Connecting" && error.reason === "Connect"
          if (waiting) {
            yield* Effect.logDebug("rpc connection attempt failed").pipe(Effect.annotateLogs("reason", error.message))
            if (Either.isRight(yield* Effect.either(driver.next(error)))) continue
          }
          const previous = state
          state = { _tag: "Down", error: clientError }
          if (previous._tag === "Connecting") yield* Deferred.fail(previous.ready, clientError)
          if (previous._tag !== "Down") {
            yield* Effect.logWarning("rpc connection down").pipe(Effect.annotateLogs("reason", error.message))
            yield* writeResponse({ _tag: "ClientProtocolError", error: clientError })
          }
          // When the schedule gives up, the client stays down and `send` keeps failing with the last error.
          if (waiting) return
          if (connected) yield* driver.reset
          if (Either.isLeft(yield* Effect.either(driver.next(error)))) return
        }
      })
      yield* loop.pipe(
        Effect.annotateLogs({ module: "effect-wire/rpc", address: config.address ?? "" }),
        Effect.interruptible,
        Effect.forkScoped
      )

      return { send, supportsAck: true, supportsTransferables: false }
    })
  )

/** As `@effect/rpc`'s socket protocol: 500 ms growing by half each time, at most 5 s apart, forever. */
export const defaultRetrySchedule: Schedule.Schedule<unknown, unknown> = Schedule.exponential(Duration.millis(500), 1.5)
  .pipe(Schedule.union(Schedule.spaced(Duration.seconds(5))))

export const defaultHeartbeat = Duration.seconds(10)

export const resolveHeartbeat = (heartbeat: Duration.DurationInput | false | undefined): Duration.Duration | undefined =>
  heartbeat === false ? undefined : heartbeat === undefined ? defaultHeartbeat : Duration.decode(heartbeat)
