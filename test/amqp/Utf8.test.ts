import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Utf8 from "../../src/amqp/internal/utf8.js"

const encoder = new TextEncoder()

describe("internal utf8", () => {
  it.prop("reads back what TextEncoder wrote, whatever was read before (the recent-string cache never lies)", {
    strings: FastCheck.array(FastCheck.oneof(
      FastCheck.string({ maxLength: 60 }),
      FastCheck.constantFrom("ab", "ba", "a", "b", "", "ctag-1", "ctag-2", "c0ffee"),
      FastCheck.fullUnicodeString({ maxLength: 20 })
    ), { maxLength: 50 })
  }, ({ strings }) => {
    for (const s of strings) {
      const bytes = encoder.encode(s)
      const padded = new Uint8Array(bytes.length + 2)
      padded.set(bytes, 1)
      assert.strictEqual(Utf8.read(padded, 1, 1 + bytes.length), s)
      assert.strictEqual(Utf8.byteLength(s), bytes.length)
    }
  }, { fastCheck: { numRuns: 300 } })

  it("agrees with TextEncoder on lengths and bytes for lone surrogates", () => {
    for (const s of ["\ud800", "a\udc00b", "\ud83d\ude00", "\ud83d"]) {
      const bytes = encoder.encode(s)
      assert.strictEqual(Utf8.byteLength(s), bytes.length, JSON.stringify(s))
      const out = new Uint8Array(bytes.length)
      Utf8.write(out, 0, s, bytes.length)
      assert.deepStrictEqual(out, bytes)
    }
  })

  it("rejects invalid UTF-8: overlong forms, surrogates, truncated sequences, bytes above U+10FFFF", () => {
    for (const bad of [[0xc0, 0x80], [0xe0, 0x80, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf4, 0x90, 0x80, 0x80], [0x80], [0xff]]) {
      assert.isUndefined(Utf8.read(Uint8Array.from(bad), 0, bad.length), bad.join(" "))
    }
    assert.strictEqual(Utf8.read(Uint8Array.of(0xe2, 0x82, 0xac), 0, 3), "€")
  })
})
