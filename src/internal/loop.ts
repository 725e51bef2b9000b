import * as Effect from "effect/Effect"

/**
 * Runs `step` again and again, like `Effect.forever` but without its `yieldNow` after every round: a message loop
 * that finds its next message already queued goes straight on instead of giving up its turn (and paying a fiber
 * wake-up) per message. The scheduler still makes a long run yield after its operation budget, and a step that
 * waits suspends the fiber as usual.
 */
export const loop = <A, E, R>(step: Effect.Effect<A, E, R>): Effect.Effect<never, E, R> => {
  const again: Effect.Effect<never, E, R> = Effect.flatMap(step, () => again)
  return again
}
