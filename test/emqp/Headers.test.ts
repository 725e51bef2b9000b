import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Headers from "../../src/emqp/Headers.js"

const parse = (text: string) => {
  const result = Headers.parse(text)
  if (Either.isLeft(result)) assert.fail(result.left.message)
  return result.right
}

describe("Headers", () => {
  it("empty frame = no headers, and no headers format to the empty frame", () => {
    assert.deepStrictEqual(parse(""), Headers.empty)
    assert.strictEqual(Headers.format(Headers.empty), "")
  })

  it("formats in the reference client's order with numbers only above 0", () => {
    const all = Headers.make({ replyRequested: true, guarantee: true, retryCount: 3, timeout: 30 })
    assert.strictEqual(Headers.format(all), "reply-requested,guarantee,retry-count:3,timeout:30")
    assert.strictEqual(Headers.format(Headers.make({ retryCount: 0, timeout: 0, guarantee: true })), "guarantee")
    assert.strictEqual(
      Headers.format(Headers.make({ nohaste: true, runCount: 5, extensions: ["x-trace:ab"] })),
      "nohaste,run_count:5,x-trace:ab"
    )
  })

  it("parses in any order, keeps unknown items as extensions", () => {
    assert.deepStrictEqual(
      parse("timeout:30,x-a,reply-requested,run_count:2"),
      Headers.make({ timeout: 30, replyRequested: true, runCount: 2, extensions: ["x-a"] })
    )
  })

  it("refuses values the reference's int() would crash on", () => {
    for (const bad of ["timeout:", "timeout:abc", "retry-count:-1", "run_count:1.5", "timeout"]) {
      const result = Headers.parse(bad)
      assert.isTrue(Either.isLeft(result), bad)
      if (Either.isLeft(result)) assert.strictEqual(result.left.reason, "Malformed")
    }
  })

  it.prop("format → parse round trip", [Headers.Headers], ([headers]) => {
    assert.deepStrictEqual(parse(Headers.format(headers)), headers)
  }, { fastCheck: { numRuns: 500 } })
})
