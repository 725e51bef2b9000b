/**
 * Typed streams over a muxado session, as Go's `TypedStreamSession`: the first four bytes of every stream are a
 * big-endian u32 type.
 *
 * - `openTyped` puts all four type bytes in the SYN frame (Go's acceptor reads them with a single `Read`).
 * - Accepting reads exactly four bytes, with a deadline, in a fiber per stream: a stream that ends early or
 *   stalls fails alone and never fails `acceptTyped`.
 * - Streams of the heartbeat type (`0xFFFFFFFF`) are answered by the session itself (each 4-byte ID echoed), so
 *   the peer's heartbeat works whatever the application's accept loop does.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import { ErrorCode, MuxError } from "./MuxError.js"
import { MuxSession, type Session } from "./Session.js"
import type { MuxStream } from "./Stream.js"

/**
 * The stream type Go's Heartbeat uses.
 *
 * @since 0.1.0
 * @category constants
 */
export const HeartbeatType = 0xffffffff

/**
 * @since 0.1.0
 * @category models
 */
export interface TypedStream extends MuxStream {
  /** The u32 type the opener wrote first. */
  readonly streamType: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TypedSession {
  readonly session: Session
  /** Opens a stream and sends its type (with `initial` bytes, if any) as the SYN frame. */
  readonly openTyped: (
    streamType: number,
    initial?: Uint8Array
  ) => Effect.Effect<TypedStream, MuxError, Scope.Scope>
  /** The next remote stream with its type read (heartbeat streams never show up here). */
  readonly acceptTyped: Effect.Effect<TypedStream, MuxError, Scope.Scope>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MuxTypedSession extends Context.Tag("effect-wire/mux/TypedSession")<MuxTypedSession, TypedSession>() {}

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long an accepted stream may take to deliver its four type bytes. Default: 10 seconds. */
  readonly typeTimeout?: Duration.DurationInput | undefined
  /** Echo the peer's heartbeats (streams of type `0xFFFFFFFF`). Default: true. */
  readonly respondToHeartbeats?: boolean | undefined
  /** Typed streams waiting for `acceptTyped`; beyond it the session's own backlog applies. Default: 128. */
  readonly backlog?: number | undefined
}

const typeBytes = (streamType: number, initial: Uint8Array | undefined): Uint8Array => {
  const out = new Uint8Array(4 + (initial?.length ?? 0))
  new DataView(out.buffer).setUint32(0, streamType >>> 0)
  if (initial !== undefined) out.set(initial, 4)
  return out
}

interface Pending {
  readonly stream: TypedStream
  readonly scope: Scope.CloseableScope
}

/** Echoes 4-byte heartbeat IDs until the peer closes the stream. */
const respond = (stream: MuxStream): Effect.Effect<void, MuxError> =>
  Effect.forever(Effect.flatMap(stream.readExactly(4), stream.write)).pipe(
    Effect.catchIf((error) => error.reason === "StreamClosed" && error.remote === true, () => Effect.void)
  )

/**
 * Typed streams over `session`, until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (session: Session, options?: Options): Effect.Effect<TypedSession, never, Scope.Scope> =>
  Effect.gen(function*() {
    const typeTimeout = Duration.decode(options?.typeTimeout ?? Duration.seconds(10))
    const respondToHeartbeats = options?.respondToHeartbeats ?? true
    const backlog = options?.backlog ?? 128
    const queue = yield* Queue.bounded<Pending>(backlog)
    // One permit per stream between the session's accept and `acceptTyped`: it bounds the streams held here.
    const permits = yield* Effect.makeSemaphore(backlog)
    yield* Effect.addFinalizer(() =>
      Effect.flatMap(Queue.takeAll(queue), (items) => Effect.forEach(items, (item) => Scope.close(item.scope, Exit.void)))
    )

    const dispatch = (stream: MuxStream, scope: Scope.CloseableScope) => {
      let handedOver = false
      let released = false
      return Effect.gen(function*() {
        const bytes = yield* stream.readExactly(4).pipe(
          Effect.timeoutFail({
            duration: typeTimeout,
            onTimeout: () =>
              new MuxError({
                reason: "Timeout",
                code: ErrorCode.StreamCancelled,
                streamId: stream.id,
                detail: "no stream type in time"
              })
          })
        )
        const streamType = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0)
        if (streamType === HeartbeatType && respondToHeartbeats) {
          released = true
          yield* permits.release(1)
          return yield* respond(stream)
        }
        yield* Queue.offer(queue, { stream: { ...stream, streamType }, scope })
        handedOver = true
      }).pipe(
        Effect.onExit((exit) =>
          handedOver ? Effect.void : Effect.zipRight(
            Scope.close(scope, exit),
            released ? Effect.void : permits.release(1)
          )
        ),
        Effect.ignore
      )
    }

    yield* Effect.forkScoped(
      Effect.forever(
        Effect.gen(function*() {
          yield* permits.take(1)
          const scope = yield* Scope.make()
          const stream = yield* Effect.onError(Scope.extend(session.accept, scope), () => permits.release(1))
          yield* Effect.forkScoped(dispatch(stream, scope))
        })
      ).pipe(Effect.ignore)
    )

    const typed: TypedSession = {
      session,
      openTyped: (streamType, initial) =>
        Effect.gen(function*() {
          const stream = yield* session.open()
          // One write that fits the fresh window and the frame cap: the type travels in the SYN frame.
          yield* stream.write(typeBytes(streamType, initial))
          return { ...stream, streamType: streamType >>> 0 }
        }),
      acceptTyped: Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const item = yield* restore(Queue.take(queue))
          yield* permits.release(1)
          yield* Effect.addFinalizer((exit) => Scope.close(item.scope, exit))
          return item.stream
        })
      )
    }
    return typed
  })

/**
 * Typed streams over the current session.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<MuxTypedSession, never, MuxSession> =>
  Layer.scoped(MuxTypedSession, Effect.flatMap(MuxSession, (session) => make(session, options)))
