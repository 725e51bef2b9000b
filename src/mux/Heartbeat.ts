/**
 * Go muxado's Heartbeat, the requester side: a typed stream of type `0xFFFFFFFF` on which we write a random
 * 4-byte ID every `interval` and time the peer's echo. (The responder side is built into `TypedSession`.)
 *
 * Unlike Go, results are distinct events (a measured latency is never confused with a timeout), the requester
 * keeps beating after a timeout or a mismatch (on a fresh stream), and closing the session on missed beats is
 * an explicit option. All timing goes through `Clock`, so `TestClock` drives it.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as SynchronizedRef from "effect/SynchronizedRef"
import { ErrorCode, type MuxError } from "./MuxError.js"
import type { MuxStream } from "./Stream.js"
import { HeartbeatType, MuxTypedSession, type TypedSession } from "./TypedSession.js"

/**
 * What one beat gave.
 *
 * - `Beat`: the echo came back after `latency`.
 * - `Timeout`: no echo within `interval + tolerance`.
 * - `Failure`: the stream failed or echoed something else (`error` says which).
 *
 * @since 0.1.0
 * @category models
 */
export type HeartbeatEvent = Data.TaggedEnum<{
  Beat: { readonly latency: Duration.Duration }
  Timeout: { readonly after: Duration.Duration }
  Failure: { readonly error: MuxError | "mismatch" }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const HeartbeatEvent = Data.taggedEnum<HeartbeatEvent>()

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Time between beats. Default: 10 seconds (Go's default). */
  readonly interval?: Duration.DurationInput | undefined
  /** How long past `interval` an echo may take before the beat counts as a timeout. Default: 15 seconds. */
  readonly tolerance?: Duration.DurationInput | undefined
  /** Close the session after this many timeouts in a row. Default: never (Go only reports). */
  readonly closeAfterTimeouts?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Heartbeat {
  /** Every result from now on. */
  readonly events: Stream.Stream<HeartbeatEvent>
  /** A queue of every result from now on, for as long as the scope lasts. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<HeartbeatEvent>, never, Scope.Scope>
  /** One beat now, outside the schedule (Go's `Beat()`). */
  readonly beat: Effect.Effect<HeartbeatEvent>
  /** The latest result, if any. */
  readonly latest: Effect.Effect<Option.Option<HeartbeatEvent>>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MuxHeartbeat extends Context.Tag("effect-wire/mux/Heartbeat")<MuxHeartbeat, Heartbeat>() {}

interface Current {
  readonly stream: MuxStream
  readonly scope: Scope.CloseableScope
}

/**
 * Starts the requester: it opens the heartbeat stream at once (as Go's `Start()` does), then beats every
 * `interval` until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (typed: TypedSession, options?: Options): Effect.Effect<Heartbeat, never, Scope.Scope> =>
  Effect.gen(function*() {
    const interval = Duration.decode(options?.interval ?? Duration.seconds(10))
    const tolerance = Duration.decode(options?.tolerance ?? Duration.seconds(15))
    const deadline = Duration.sum(interval, tolerance)
    const pubsub = yield* PubSub.sliding<HeartbeatEvent>(256)
    let latest: HeartbeatEvent | undefined
    let timeoutsInARow = 0
    // The heartbeat stream lives in its own scope, replaced after a failure; beats are serialised through the ref.
    const current = yield* SynchronizedRef.make<Option.Option<Current>>(Option.none())
    const drop = (exit: Exit.Exit<unknown, unknown>) =>
      SynchronizedRef.updateEffect(current, (held) =>
        Option.match(held, {
          onNone: () => Effect.succeed(Option.none()),
          onSome: ({ scope }) => Effect.as(Scope.close(scope, exit), Option.none())
        }))
    yield* Effect.addFinalizer(() => drop(Exit.void))

    const ensureStream = (held: Option.Option<Current>) =>
      Option.match(held, {
        onSome: (c) => Effect.succeed(c),
        onNone: () =>
          Effect.gen(function*() {
            const scope = yield* Scope.make()
            const stream = yield* typed.openTyped(HeartbeatType).pipe(
              Scope.extend(scope),
              Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
            )
            return { stream, scope }
          })
      })

    const once: Effect.Effect<HeartbeatEvent> = SynchronizedRef.modifyEffect(current, (held) =>
      Effect.gen(function*(): Effect.fn.Return<readonly [HeartbeatEvent, Option.Option<Current>]> {
        const opened = yield* Effect.either(ensureStream(held))
        if (opened._tag === "Left") {
          return [HeartbeatEvent.Failure({ error: opened.left }), Option.none<Current>()] as const
        }
        const c = opened.right
        const id = (yield* Random.nextIntBetween(0, 0x7fffffff)) >>> 0
        const bytes = new Uint8Array(4)
        new DataView(bytes.buffer).setUint32(0, id)
        const start = yield* Clock.currentTimeNanos
        const result = yield* c.stream.write(bytes).pipe(
          Effect.zipRight(c.stream.readExactly(4)),
          Effect.timeout(deadline),
          Effect.either
        )
        if (result._tag === "Left") {
          const timedOut = result.left._tag === "TimeoutException"
          // A late echo would desynchronise this stream: cancel it and beat on a fresh one next time.
          yield* Scope.close(c.scope, Exit.fail(result.left))
          const event = timedOut
            ? HeartbeatEvent.Timeout({ after: deadline })
            : HeartbeatEvent.Failure({ error: result.left as MuxError })
          return [event, Option.none<Current>()] as const
        }
        const echoed = new DataView(result.right.buffer, result.right.byteOffset, 4).getUint32(0)
        if (echoed !== id) {
          yield* Scope.close(c.scope, Exit.fail("mismatch"))
          return [HeartbeatEvent.Failure({ error: "mismatch" }), Option.none<Current>()] as const
        }
        const end = yield* Clock.currentTimeNanos
        return [HeartbeatEvent.Beat({ latency: Duration.nanos(end - start) }), Option.some(c)] as const
      })
    )

    const beat = Effect.tap(once, (event) =>
      Effect.gen(function*() {
        latest = event
        yield* PubSub.publish(pubsub, event)
        timeoutsInARow = event._tag === "Timeout" ? timeoutsInARow + 1 : 0
        const limit = options?.closeAfterTimeouts
        if (limit !== undefined && timeoutsInARow >= limit) {
          yield* Effect.forkDaemon(typed.session.goAway(ErrorCode.NoError, "heartbeat timeout"))
        }
      }))

    // Go sends the heartbeat SYN at Start(), then the first beat one interval later.
    yield* SynchronizedRef.updateEffect(current, (held) =>
      Effect.option(ensureStream(held))
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(interval), beat)))

    return {
      events: Stream.fromPubSub(pubsub),
      subscribe: PubSub.subscribe(pubsub),
      beat,
      latest: Effect.sync(() => Option.fromNullable(latest))
    }
  })

/**
 * A heartbeat requester on the current typed session.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<MuxHeartbeat, never, MuxTypedSession> =>
  Layer.scoped(MuxHeartbeat, Effect.flatMap(MuxTypedSession, (typed) => make(typed, options)))
