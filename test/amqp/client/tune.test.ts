import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import { bodyChunkSize, negotiate } from "../../../src/amqp/internal/client/tune.js"

const server = { channelMax: 2047, frameMax: 131072, heartbeat: 60 }
const wanted = { channelMax: 0, frameMax: 131072, heartbeat: "server" as const }

const tuned = (s: typeof server, w: Parameters<typeof negotiate>[1]) => {
  const r = negotiate(s, w)
  if (Either.isLeft(r)) assert.fail(r.left.message)
  return r.right
}

describe("tune negotiation", () => {
  it("takes the broker's values when the client has no preference", () => {
    assert.deepStrictEqual(tuned(server, wanted), { channelMax: 2047, frameMax: 131072, heartbeat: 60 })
  })

  it("sends the minimum of the non-zero values; 0 means no limit", () => {
    assert.strictEqual(tuned(server, { ...wanted, channelMax: 10 }).channelMax, 10)
    assert.strictEqual(tuned({ ...server, channelMax: 0 }, wanted).channelMax, 65535)
    assert.strictEqual(tuned({ ...server, channelMax: 0 }, { ...wanted, channelMax: 7 }).channelMax, 7)
    assert.strictEqual(tuned({ ...server, frameMax: 0 }, { ...wanted, frameMax: 8192 }).frameMax, 8192)
    assert.strictEqual(tuned({ ...server, frameMax: 0 }, { ...wanted, frameMax: 0 }).frameMax, 0)
  })

  it("refuses frame_max below 8192 from either side", () => {
    const local = negotiate(server, { ...wanted, frameMax: 4096 })
    assert.isTrue(Either.isLeft(local) && local.left.reason === "Negotiation")
    const remote = negotiate({ ...server, frameMax: 4096 }, wanted)
    assert.isTrue(Either.isLeft(remote) && remote.left.reason === "Negotiation")
  })

  it("heartbeat: the smaller of two non-zero values, the greater when one is 0, 0 only when disabled", () => {
    assert.strictEqual(tuned(server, { ...wanted, heartbeat: "10 seconds" }).heartbeat, 10)
    assert.strictEqual(tuned(server, { ...wanted, heartbeat: "120 seconds" }).heartbeat, 60)
    assert.strictEqual(tuned({ ...server, heartbeat: 0 }, { ...wanted, heartbeat: "15 seconds" }).heartbeat, 15)
    assert.strictEqual(tuned(server, { ...wanted, heartbeat: "disabled" }).heartbeat, 0)
    assert.strictEqual(tuned(server, { ...wanted, heartbeat: "1500 millis" }).heartbeat, 2)
  })

  it("never sends more than the broker offered, and never 0 when it offered a limit", () => {
    FastCheck.assert(
      FastCheck.property(
        FastCheck.integer({ min: 0, max: 65535 }),
        FastCheck.integer({ min: 0, max: 65535 }),
        (s, c) => {
          const t = tuned({ ...server, channelMax: s }, { ...wanted, channelMax: c })
          return t.channelMax >= 1 && t.channelMax <= 65535 && (s === 0 || t.channelMax <= s) &&
            (c === 0 || t.channelMax <= c)
        }
      )
    )
  })

  it("body chunks leave room for the 8 bytes of frame overhead", () => {
    assert.strictEqual(bodyChunkSize(8192), 8184)
    assert.strictEqual(bodyChunkSize(0), 131064)
  })
})
