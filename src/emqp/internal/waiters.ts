/**
 * Deadlines without a timer per item: one fiber sleeps until the earliest deadline (on the Effect clock, so
 * TestClock drives it) and fires the ones that passed; it is woken early only when a new deadline comes before
 * the one it sleeps towards. On top of it, callers waiting for a reply by id.
 *
 * A request or a job then costs a map entry, not a timer and a race of fibers.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"

interface Deadline {
  readonly at: number
  readonly fire: () => void
}

export class Deadlines {
  private readonly entries = new Map<unknown, Deadline>()
  private wakeAt = Number.POSITIVE_INFINITY
  private poke: (() => void) | undefined
  /** A wake-up that came while the sweeper was not suspended. */
  private pending = false

  get size(): number {
    return this.entries.size
  }

  /** Calls `fire` once `at` (epoch millis) has passed, unless `remove(key)` came first. */
  add(key: unknown, at: number, fire: () => void): void {
    this.entries.set(key, { at, fire })
    if (at < this.wakeAt) this.wake()
  }

  remove(key: unknown): void {
    this.entries.delete(key)
  }

  private wake(): void {
    const poke = this.poke
    if (poke === undefined) {
      this.pending = true
    } else {
      this.poke = undefined
      poke()
    }
  }

  /** Fires the passed deadlines; returns the earliest one left. */
  private sweep(now: number): number {
    let next = Number.POSITIVE_INFINITY
    const due: Array<Deadline> = []
    for (const [key, entry] of this.entries) {
      if (entry.at <= now) {
        this.entries.delete(key)
        due.push(entry)
      } else if (entry.at < next) {
        next = entry.at
      }
    }
    for (const entry of due) entry.fire()
    return next
  }

  private readonly poked: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.pending) {
      this.pending = false
      return resume(Effect.void)
    }
    this.poke = () => resume(Effect.void)
    return Effect.sync(() => {
      this.poke = undefined
    })
  })

  /** The sweeper: fork it in the owner's scope. */
  readonly run: Effect.Effect<never> = Effect.forever(
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      this.pending = false
      const next = this.sweep(now)
      this.wakeAt = next
      if (next === Number.POSITIVE_INFINITY) return this.poked
      return Effect.raceFirst(Effect.sleep(next - now), this.poked)
    })
  )
}

type Resume<A, E> = (effect: Effect.Effect<A, E>) => void

interface Waiter<A, E> {
  /** Set once the caller suspends. */
  resume: Resume<A, E> | undefined
  /** An outcome that came before the caller suspended. */
  early: Effect.Effect<A, E> | undefined
}

export class Waiters<A, E> {
  private readonly entries = new Map<string, Waiter<A, E>>()
  readonly deadlines = new Deadlines()

  get size(): number {
    return this.entries.size
  }

  /** Registers `id` before its request is sent, so that a fast reply finds it; `onTimeout` settles it at `at`. */
  register(id: string, at: number, onTimeout: () => E): void {
    this.entries.set(id, { resume: undefined, early: undefined })
    this.deadlines.add(id, at, () => this.settle(id, Effect.fail(onTimeout())))
  }

  /** Suspends until `id` is settled; interrupting the caller forgets it. */
  wait(id: string): Effect.Effect<A, E> {
    return Effect.async<A, E>((resume) => {
      const entry = this.entries.get(id)
      if (entry === undefined) return resume(Effect.dieMessage(`nothing registered as ${id}`))
      if (entry.early !== undefined) {
        this.remove(id)
        return resume(entry.early)
      }
      entry.resume = resume
      return Effect.sync(() => this.remove(id))
    })
  }

  /** Forgets `id` (its caller is gone or its send failed). */
  remove(id: string): void {
    this.entries.delete(id)
    this.deadlines.remove(id)
  }

  /** Settles `id`; `false` if nobody waits for it. */
  settle(id: string, outcome: Effect.Effect<A, E>): boolean {
    const entry = this.entries.get(id)
    if (entry === undefined) return false
    if (entry.resume === undefined) {
      if (entry.early === undefined) entry.early = outcome
    } else {
      this.remove(id)
      entry.resume(outcome)
    }
    return true
  }
}
