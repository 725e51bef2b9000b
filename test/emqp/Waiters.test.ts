import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as TestClock from "effect/TestClock"
import { Deadlines, Waiters } from "../../src/emqp/internal/waiters.js"

describe("Deadlines and Waiters (one sweeper for every request's timeout)", () => {
  it.scoped("each deadline fires when the clock passes it, not before; removed ones never fire", () =>
    Effect.gen(function*() {
      const deadlines = new Deadlines()
      yield* Effect.forkScoped(deadlines.run)
      const fired: Array<string> = []
      deadlines.add("late", 3_000, () => fired.push("late"))
      deadlines.add("early", 1_000, () => fired.push("early"))
      deadlines.add("removed", 2_000, () => fired.push("removed"))
      deadlines.remove("removed")
      yield* TestClock.adjust(Duration.millis(999))
      assert.deepStrictEqual(fired, [])
      yield* TestClock.adjust(Duration.millis(1))
      assert.deepStrictEqual(fired, ["early"])
      yield* TestClock.adjust(Duration.millis(2_000))
      assert.deepStrictEqual(fired, ["early", "late"])
      assert.strictEqual(deadlines.size, 0)
    }))

  it.scoped("a deadline earlier than the one the sweeper sleeps towards wakes it", () =>
    Effect.gen(function*() {
      const deadlines = new Deadlines()
      yield* Effect.forkScoped(deadlines.run)
      const fired: Array<string> = []
      deadlines.add("far", 60_000, () => fired.push("far"))
      yield* TestClock.adjust(Duration.millis(10))
      deadlines.add("near", 100, () => fired.push("near"))
      yield* TestClock.adjust(Duration.millis(90))
      assert.deepStrictEqual(fired, ["near"])
    }))

  it.scoped("a waiter gets its reply, or its timeout error at the deadline; a reply before the wait is kept", () =>
    Effect.gen(function*() {
      const waiters = new Waiters<string, string>()
      yield* Effect.forkScoped(waiters.deadlines.run)
      waiters.register("a", 1_000, () => "timeout a")
      waiters.register("b", 1_000, () => "timeout b")
      waiters.register("c", 1_000, () => "timeout c")
      const a = yield* Effect.fork(Effect.either(waiters.wait("a")))
      const b = yield* Effect.fork(Effect.either(waiters.wait("b")))
      yield* Effect.yieldNow()
      assert.isTrue(waiters.settle("a", Effect.succeed("reply a")))
      assert.isTrue(waiters.settle("c", Effect.succeed("reply c")), "settled before anyone waits")
      assert.isFalse(waiters.settle("unknown", Effect.succeed("?")))
      assert.deepStrictEqual(yield* Fiber.join(a), Either.right("reply a"))
      yield* TestClock.adjust(Duration.millis(1_000))
      assert.deepStrictEqual(yield* Fiber.join(b), Either.left("timeout b"))
      assert.deepStrictEqual(yield* Effect.either(waiters.wait("c")), Either.right("reply c"))
      assert.strictEqual(waiters.size, 0)
    }))

  it.scoped("an interrupted waiter is forgotten", () =>
    Effect.gen(function*() {
      const waiters = new Waiters<string, string>()
      yield* Effect.forkScoped(waiters.deadlines.run)
      waiters.register("x", 1_000, () => "timeout")
      const fiber = yield* Effect.fork(waiters.wait("x"))
      yield* Effect.yieldNow()
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(waiters.size, 0)
      assert.strictEqual(waiters.deadlines.size, 0)
      assert.isFalse(waiters.settle("x", Effect.succeed("late")))
    }))
})
