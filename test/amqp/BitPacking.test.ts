import { assert, describe, it } from "@effect/vitest"
import * as Codec from "../../src/amqp/internal/methods.js"
import * as Wire from "../../src/amqp/internal/wire.js"
import type * as Spec from "../../src/amqp/Spec.js"

// A made-up method that exercises every packing rule: a run of 9 bits (the 9th starts a new octet), a non-bit
// argument ending a run, and a method ending in bits.
const definition: Spec.MethodDefinition = {
  tag: "TestBits",
  name: "test.bits",
  classId: 200,
  methodId: 1,
  args: [
    ["b1", "bit"], ["b2", "bit"], ["b3", "bit"], ["b4", "bit"], ["b5", "bit"], ["b6", "bit"], ["b7", "bit"],
    ["b8", "bit"], ["b9", "bit"],
    ["n", "short"],
    ["c1", "bit"], ["c2", "bit"]
  ],
  synchronous: false,
  replies: [],
  content: false,
  extension: false
}

const compiled = Codec.compile(definition)

const encode = (values: Record<string, unknown>) => {
  const method = { _tag: "TestBits", ...values }
  const size = Codec.size(compiled, method)
  assert.strictEqual(typeof size, "number")
  const w = new Wire.Writer(new Uint8Array(size as number))
  Codec.write(w, compiled, method)
  assert.strictEqual(w.pos, size)
  return Buffer.from(w.buf).toString("hex")
}

describe("bit packing", () => {
  it("packs the first bit into 0x01, the 9th into a new octet, and restarts after a non-bit argument", () => {
    const none = { b1: false, b2: false, b3: false, b4: false, b5: false, b6: false, b7: false, b8: false, b9: false, n: 0, c1: false, c2: false }
    assert.strictEqual(encode(none), "00c80001" + "00" + "00" + "0000" + "00")
    assert.strictEqual(encode({ ...none, b1: true }), "00c80001" + "01" + "00" + "0000" + "00")
    assert.strictEqual(encode({ ...none, b8: true }), "00c80001" + "80" + "00" + "0000" + "00")
    assert.strictEqual(encode({ ...none, b9: true }), "00c80001" + "00" + "01" + "0000" + "00")
    assert.strictEqual(encode({ ...none, n: 0x1234, c2: true }), "00c80001" + "00" + "00" + "1234" + "02")
    assert.strictEqual(compiled.fixedSize, 4 + 2 + 2 + 1)
  })

  it("decodes each bit back from its mask", () => {
    for (let k = 0; k < 11; k++) {
      const names = ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "c1", "c2"]
      const values: Record<string, unknown> = { n: 7 }
      names.forEach((name, i) => values[name] = i === k)
      const bytes = Buffer.from(encode(values), "hex")
      const r = new Wire.Reader(new Uint8Array(bytes), 4, bytes.length)
      const out = Codec.decodeArgs(r, compiled)
      assert.isUndefined(r.error)
      assert.strictEqual(out.n, 7)
      names.forEach((name, i) => assert.strictEqual(out[name], i === k, `${name} with bit ${k} set`))
    }
  })
})
