import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import { ConfirmTracker, type Outcome } from "../../../src/amqp/internal/client/confirms.js"

const track = (n: number, mandatory = false) => {
  const tracker = new ConfirmTracker()
  const outcomes = new Map<bigint, Array<Outcome>>()
  for (let i = 0; i < n; i++) {
    tracker.register({
      mandatory,
      exchange: "",
      routingKey: `k${i % 3}`,
      settle: (o) => outcomes.set(o.deliveryTag, [...(outcomes.get(o.deliveryTag) ?? []), o])
    })
  }
  return { tracker, outcomes }
}

describe("ConfirmTracker", () => {
  it("ack 3, ack 1, ack multiple 5 for publishes 1–6: 1–5 settle exactly once, 6 stays pending", () => {
    const { outcomes, tracker } = track(6)
    assert.strictEqual(tracker.settle(3n, false, true), 1)
    assert.strictEqual(tracker.settle(1n, false, true), 1)
    assert.strictEqual(tracker.settle(5n, true, true), 3)
    assert.deepStrictEqual([...outcomes.keys()].sort(), [1n, 2n, 3n, 4n, 5n])
    for (const list of outcomes.values()) assert.strictEqual(list.length, 1)
    assert.strictEqual(tracker.size, 1)
    const drained: Array<bigint> = []
    tracker.drain((tag) => drained.push(tag))
    assert.deepStrictEqual(drained, [6n])
  })

  it("nack settles as Nacked; unknown tags settle nothing", () => {
    const { outcomes, tracker } = track(2)
    tracker.settle(2n, false, false)
    assert.strictEqual(outcomes.get(2n)?.[0]?._tag, "Nacked")
    assert.strictEqual(tracker.settle(2n, false, true), 0)
    assert.strictEqual(tracker.settle(99n, false, true), 0)
  })

  it("a return arriving before the ack turns that publish's outcome into Returned", () => {
    const { outcomes, tracker } = track(3, true)
    // k1 is publish 2: the broker returns it, then acks 1..3 at once.
    assert.isTrue(tracker.returned({ replyCode: 312, replyText: "NO_ROUTE", exchange: "", routingKey: "k1" }))
    tracker.settle(3n, true, true)
    assert.strictEqual(outcomes.get(1n)?.[0]?._tag, "Acked")
    assert.strictEqual(outcomes.get(2n)?.[0]?._tag, "Returned")
    assert.strictEqual(outcomes.get(3n)?.[0]?._tag, "Acked")
    assert.isFalse(tracker.returned({ replyCode: 312, replyText: "NO_ROUTE", exchange: "", routingKey: "zz" }))
  })

  it.prop(
    "any sequence of single and multiple acks settles each publish at most once, and only published tags",
    [
      FastCheck.integer({ min: 1, max: 60 }),
      FastCheck.array(FastCheck.tuple(FastCheck.integer({ min: 1, max: 70 }), FastCheck.boolean(), FastCheck.boolean()), {
        maxLength: 80
      })
    ],
    ([n, acks]) => {
      const { outcomes, tracker } = track(n)
      const expected = new Set<bigint>()
      for (const [tag, multiple, ack] of acks) {
        tracker.settle(BigInt(tag), multiple, ack)
        if (multiple) for (let t = 1; t <= Math.min(tag, n); t++) expected.add(BigInt(t))
        else if (tag <= n) expected.add(BigInt(tag))
      }
      assert.deepStrictEqual(new Set(outcomes.keys()), expected)
      for (const list of outcomes.values()) assert.strictEqual(list.length, 1)
      assert.strictEqual(tracker.size, n - expected.size)
    }
  )
})
