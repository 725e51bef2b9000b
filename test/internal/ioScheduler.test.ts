import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { ioScheduler } from "../../src/internal/ioScheduler.js"

// What a socket write the kernel takes at once looks like to the writer fiber: Node calls back on `nextTick`.
const writeTakenAtOnce = Effect.async<void>((resume) => {
  process.nextTick(() => resume(Effect.void))
})

describe("ioScheduler", () => {
  it.live("a fiber resumed from nextTick callbacks, round after round, still lets timers and I/O run", () =>
    Effect.gen(function*() {
      let timerFired = false
      const timer = setTimeout(() => {
        timerFired = true
      }, 5)
      let rounds = 0
      yield* Effect.whileLoop({
        while: () => !timerFired && rounds < 200_000,
        body: () => writeTakenAtOnce,
        step: () => {
          rounds++
        }
      }).pipe(Effect.withScheduler(ioScheduler))
      clearTimeout(timer)
      assert.isTrue(timerFired, `the 5 ms timer did not fire during ${rounds} resumptions`)
    }))
})
