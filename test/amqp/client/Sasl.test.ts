import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import * as Sasl from "../../../src/amqp/Sasl.js"

const guest = { username: "guest", password: Redacted.make("guest") }
const hex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0).toString(16)).join(" ")

describe("Sasl", () => {
  it("PLAIN is 00 user 00 password", () => {
    assert.strictEqual(hex(Sasl.response("PLAIN", guest)), "00 67 75 65 73 74 00 67 75 65 73 74")
  })

  it("PLAIN encodes UTF-8 bytes, not UTF-16 units", () => {
    const bytes = Sasl.plain({ username: "é", password: Redacted.make("€") })
    assert.strictEqual(hex(bytes), "00 c3 a9 00 e2 82 ac")
  })

  it("AMQPLAIN is a field table without its length prefix (35 bytes for guest/guest)", () => {
    const bytes = Sasl.response("AMQPLAIN", guest)
    assert.strictEqual(bytes.length, 35)
    assert.strictEqual(
      hex(bytes),
      `05 ${ascii("LOGIN")} 53 00 00 00 05 ${ascii("guest")} 08 ${ascii("PASSWORD")} 53 00 00 00 05 ${ascii("guest")}`
    )
  })

  it("EXTERNAL and ANONYMOUS send an empty response", () => {
    assert.strictEqual(Sasl.response("EXTERNAL", guest).length, 0)
    assert.strictEqual(Sasl.response("ANONYMOUS", guest).length, 0)
  })

  it("chooses the first wanted mechanism the broker offers, or fails naming both lists", () => {
    assert.deepStrictEqual(Sasl.choose(["EXTERNAL", "PLAIN"], "AMQPLAIN PLAIN"), Either.right("PLAIN"))
    const refused = Sasl.choose(["PLAIN"], "EXTERNAL")
    assert.isTrue(Either.isLeft(refused))
    if (Either.isLeft(refused)) {
      assert.strictEqual(refused.left.reason, "MechanismNotSupported")
      assert.include(refused.left.detail, "EXTERNAL")
    }
  })
})
