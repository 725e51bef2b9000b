import { assert, describe, it } from "@effect/vitest"
import { createRequire } from "node:module"
import * as Path from "node:path"
import * as Constants from "../../src/amqp/Constants.js"
import { repoRoot } from "../support/peers.js"

const require = createRequire(import.meta.url)
const defs: { readonly constants: Readonly<Record<string, number>> } = require(
  Path.join(repoRoot, "node_modules/amqplib/lib/defs.js")
)

describe("Constants", () => {
  it("has every reply code of the codegen spec, by the same name", () => {
    const frameConstants = ["FRAME_METHOD", "FRAME_HEADER", "FRAME_BODY", "FRAME_HEARTBEAT", "FRAME_MIN_SIZE", "FRAME_END"]
    const fromSpec = Object.entries(defs.constants).filter(([name]) => !frameConstants.includes(name))
    assert.deepStrictEqual(
      Object.fromEntries(Constants.replyCodes.map((r) => [r.name, r.code])),
      Object.fromEntries(fromSpec)
    )
    assert.strictEqual(Constants.ReplyCode.NOT_FOUND, 404)
    assert.strictEqual(Constants.replyCodeInfo(320)?.class, "hard")
    assert.strictEqual(Constants.replyCodeInfo(406)?.class, "soft")
    assert.isUndefined(Constants.replyCodeInfo(999))
  })

  it("frame constants", () => {
    assert.strictEqual(Constants.FRAME_METHOD, defs.constants.FRAME_METHOD)
    assert.strictEqual(Constants.FRAME_HEADER, defs.constants.FRAME_HEADER)
    assert.strictEqual(Constants.FRAME_BODY, defs.constants.FRAME_BODY)
    assert.strictEqual(Constants.FRAME_HEARTBEAT, 8)
    assert.strictEqual(Constants.FRAME_END, 0xce)
    // RabbitMQ 4.1 raised the minimum to 8192; the vendored codegen JSON still says 4096.
    assert.strictEqual(Constants.FRAME_MIN_SIZE_SPEC, defs.constants.FRAME_MIN_SIZE)
    assert.strictEqual(Constants.FRAME_MIN_SIZE, 8192)
    assert.deepStrictEqual(Array.from(Constants.PROTOCOL_HEADER), [0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1])
  })
})
