import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as codec from "../../src/rpc/internal/codec.js"
import * as Framing from "../../src/transport/Framing.js"
import * as Transport from "../../src/transport/Transport.js"

const serializations = {
  json: RpcSerialization.json,
  ndjson: RpcSerialization.ndjson,
  msgPack: RpcSerialization.msgPack
} as const

// JSON-safe payloads, so every serialization round-trips them. A `__proto__` key is left out: msgpackr renames it
// on decode on purpose (prototype pollution), so it cannot survive msgpack.
const payload = FastCheck.jsonValue()
  .map((v) => JSON.parse(JSON.stringify(v)) as unknown)
  .filter((v) => !JSON.stringify(v).includes(`"__proto__":`))

// Client messages as the engine encodes them.
const message = FastCheck.oneof(
  FastCheck.record({
    _tag: FastCheck.constant("Request" as const),
    id: FastCheck.bigInt({ min: 0n, max: 2n ** 63n }).map(String),
    tag: FastCheck.string({ minLength: 1 }),
    payload,
    headers: FastCheck.array(FastCheck.tuple(FastCheck.string(), FastCheck.string()), { maxLength: 3 })
  }),
  FastCheck.record({ _tag: FastCheck.constant("Ack" as const), requestId: FastCheck.string() }),
  FastCheck.record({ _tag: FastCheck.constant("Interrupt" as const), requestId: FastCheck.string() }),
  FastCheck.constant({ _tag: "Ping" as const })
)

/** Cuts `bytes` at the given points (fractions of its length). */
const cut = (bytes: Uint8Array, points: ReadonlyArray<number>): Array<Uint8Array> => {
  const offsets = [...new Set(points.map((p) => Math.floor(p * bytes.length)))].sort((a, b) => a - b)
  const pieces: Array<Uint8Array> = []
  let start = 0
  for (const offset of offsets) {
    if (offset > start) pieces.push(bytes.subarray(start, offset))
    start = Math.max(start, offset)
  }
  if (start < bytes.length) pieces.push(bytes.subarray(start))
  return pieces
}

describe("rpc codec", () => {
  for (const [name, serialization] of Object.entries(serializations)) {
    it.prop(
      `${name}: messages survive any cutting of the byte stream`,
      [FastCheck.array(message, { minLength: 1, maxLength: 8 }), FastCheck.array(FastCheck.double({ min: 0, max: 1, noNaN: true }), { maxLength: 12 })],
      ([messages, points]) => {
        const framing = codec.resolveFraming(serialization, undefined)
        const sender = codec.make(serialization, framing)
        const receiver = codec.make(serialization, framing)
        const bytes = Transport.concat(messages.flatMap((m) => Either.getOrThrow(sender.encode(m))))
        const received: Array<unknown> = []
        for (const piece of cut(bytes, points)) received.push(...Either.getOrThrow(receiver.decode([piece])))
        assert.deepStrictEqual(received, messages)
      },
      { fastCheck: { numRuns: 200 } }
    )
  }

  it("json without its own framing gets 4-byte big-endian length prefixes", () => {
    assert.isUndefined(codec.resolveFraming(RpcSerialization.ndjson, undefined))
    const framing = codec.resolveFraming(RpcSerialization.json, undefined)
    const chunks = Either.getOrThrow(codec.make(RpcSerialization.json, framing).encode({ _tag: "Ping" }))
    const bytes = Transport.concat(chunks)
    assert.deepStrictEqual([...bytes.subarray(0, 4)], [0, 0, 0, 15])
    assert.strictEqual(new TextDecoder().decode(bytes.subarray(4)), `{"_tag":"Ping"}`)
  })

  it("bad input fails the codec with a Decode error instead of throwing", () => {
    const ndjson = codec.make(RpcSerialization.ndjson, undefined)
    const bad = ndjson.decode([new TextEncoder().encode("{nope\n")])
    assert.isTrue(Either.isLeft(bad) && bad.left.reason === "Decode")
    const framed = codec.make(RpcSerialization.json, Framing.lengthPrefixed({ maxFrameSize: 8 }))
    const tooLarge = framed.decode([new Uint8Array([0, 0, 1, 0])])
    assert.isTrue(Either.isLeft(tooLarge) && tooLarge.left.reason === "Decode")
  })
})
