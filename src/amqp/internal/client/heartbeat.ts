/**
 * The heartbeat fiber's loop: every half interval, declare the peer dead after two intervals without any inbound
 * frame, else send a heartbeat if nothing was written for half an interval. It runs on its own fiber and reads
 * only timestamps, so neither a busy application nor a stuck reader delays it; the `Clock` makes it testable with
 * `TestClock`.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"

export interface Activity {
  /** `Clock` millis of the last inbound bytes. */
  lastRead: number
  /** `Clock` millis of the last completed write. */
  lastWrite: number
}

export const run = <E, R>(options: {
  readonly interval: Duration.Duration
  readonly activity: Activity
  /** Queues one heartbeat frame without waiting behind a full outbound buffer. */
  readonly send: Effect.Effect<void, E, R>
  readonly onTimeout: (silentMillis: number) => Effect.Effect<void, E, R>
}): Effect.Effect<void, E, R> => {
  const interval = Duration.toMillis(options.interval)
  const half = Math.max(1, Math.floor(interval / 2))
  const loop: Effect.Effect<void, E, R> = Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const silent = now - options.activity.lastRead
    if (silent >= 2 * interval) return options.onTimeout(silent)
    const step = now - options.activity.lastWrite >= half ? options.send : Effect.void
    return Effect.zipRight(step, Effect.zipRight(Effect.sleep(Duration.millis(half)), loop))
  })
  return Effect.zipRight(Effect.sleep(Duration.millis(half)), loop)
}
