/**
 * The publish gate of a blocked connection: open by default (a field read on the hot path); while closed, at most
 * `maxWaiters` publishes wait, each up to `timeout`.
 */
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import * as SubscriptionRef from "effect/SubscriptionRef"
import * as Blocked from "../../Blocked.js"
import { ClientRefused, Timeout } from "../../ClientError.js"

export class Gate {
  private opened: Deferred.Deferred<void> | undefined = undefined
  private waiters = 0
  constructor(
    readonly state: SubscriptionRef.SubscriptionRef<Blocked.BlockedState>,
    readonly timeout: Duration.Duration,
    readonly maxWaiters: number
  ) {}

  static make(timeout: Duration.DurationInput, maxWaiters: number): Effect.Effect<Gate> {
    return Effect.map(
      SubscriptionRef.make(Blocked.unblocked),
      (ref) => new Gate(ref, Duration.decode(timeout), maxWaiters)
    )
  }

  get isOpen(): boolean {
    return this.opened === undefined
  }

  block(reason: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      this.opened ??= Deferred.unsafeMake<void>(FiberId.none)
      return SubscriptionRef.set(this.state, Blocked.blocked(reason))
    })
  }

  unblock: Effect.Effect<void> = Effect.suspend(() => {
    const opened = this.opened
    this.opened = undefined
    if (opened !== undefined) Deferred.unsafeDone(opened, Effect.void)
    return SubscriptionRef.set(this.state, Blocked.unblocked)
  })

  /** Waits until unblocked; fails when too many are waiting or the wait is longer than `timeout`. */
  pass: Effect.Effect<void, Timeout | ClientRefused> = Effect.suspend((): Effect.Effect<void, Timeout | ClientRefused> => {
    const opened = this.opened
    if (opened === undefined) return Effect.void
    if (this.waiters >= this.maxWaiters) {
      return Effect.fail(
        new ClientRefused({ reason: "Blocked", detail: `connection blocked with ${this.waiters} publishes waiting` })
      )
    }
    this.waiters++
    return Deferred.await(opened).pipe(
      Effect.timeoutFail({
        duration: this.timeout,
        onTimeout: () => new Timeout({ operation: "publish while connection.blocked", millis: Duration.toMillis(this.timeout) })
      }),
      Effect.ensuring(Effect.sync(() => this.waiters--))
    )
  })
}
