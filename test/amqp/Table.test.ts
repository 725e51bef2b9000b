import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { AMQPView } from "@cloudamqp/amqp-client/amqp-view"
import { AmqpError } from "../../src/amqp/AmqpError.js"
import * as Table from "../../src/amqp/Table.js"
import { repoRoot } from "../support/peers.js"

const require = createRequire(import.meta.url)
// amqplib's package exports hide its codec; load the file itself.
const amqplibCodec: {
  encodeTable: (buffer: Buffer, value: unknown, offset: number) => number
  decodeFields: (slice: Buffer) => Record<string, unknown>
} = require(Path.join(repoRoot, "node_modules/amqplib/lib/codec.js"))

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const enc = (t: Table.FieldTable) => Either.getOrThrow(Table.encode(t))
const dec = (b: Uint8Array) => Either.getOrThrow(Table.decode(b))
const failure = <A>(e: Either.Either<A, AmqpError>): AmqpError => {
  assert.isTrue(Either.isLeft(e), "expected a failure")
  return (e as Either.Left<AmqpError, A>).left
}

describe("Table", () => {
  it("encodes every tag byte-exact (golden bytes built from the errata's tag table)", () => {
    const t: Table.FieldTable = [
      ["t", Table.bool(true)],
      ["b", Table.int8(-128)],
      ["B", Table.uint8(255)],
      ["s", Table.int16(-32768)],
      ["u", Table.uint16(65535)],
      ["I", Table.int32(-2147483648)],
      ["i", Table.uint32(4294967295)],
      ["l", Table.int64(-(2n ** 63n))],
      ["f", Table.float32(1.5)],
      ["d", Table.float64(0.1)],
      ["D", Table.decimal(2, 12345)],
      ["S", Table.string("hé")],
      ["A", Table.array([Table.int8(1), Table.string("x")])],
      ["T", Table.timestamp(new Date("2024-01-01T00:00:00Z"))],
      ["F", Table.table([["k", Table.voidValue]])],
      ["V", Table.voidValue],
      ["x", Table.bytes(Uint8Array.of(0, 0xff))]
    ]
    const expected = [
      "01 74 74 01",
      "01 62 62 80",
      "01 42 42 ff",
      "01 73 73 80 00",
      "01 75 75 ff ff",
      "01 49 49 80 00 00 00",
      "01 69 69 ff ff ff ff",
      "01 6c 6c 80 00 00 00 00 00 00 00",
      "01 66 66 3f c0 00 00",
      "01 64 64 3f b9 99 99 99 99 99 9a",
      "01 44 44 02 00 00 30 39",
      "01 53 53 00 00 00 03 68 c3 a9",
      "01 41 41 00 00 00 08 62 01 53 00 00 00 01 78",
      // 2024-01-01T00:00:00Z = 1704067200 s = 0x65920080
      "01 54 54 00 00 00 00 65 92 00 80",
      "01 46 46 00 00 00 03 01 6b 56",
      "01 56 56",
      "01 78 78 00 00 00 02 00 ff"
    ].join(" ")
    const body = unhex(expected)
    const bytes = enc(t)
    assert.strictEqual(hex(bytes), hex(Uint8Array.of(0, 0, body.length >> 8, body.length & 0xff)) + hex(body))
    assert.deepStrictEqual(dec(bytes), t)
  })

  it("reads every integer tag at its minimum and maximum", () => {
    const t: Table.FieldTable = [
      ["b0", Table.int8(-128)], ["b1", Table.int8(127)],
      ["B0", Table.uint8(0)], ["B1", Table.uint8(255)],
      ["s0", Table.int16(-32768)], ["s1", Table.int16(32767)],
      ["u0", Table.uint16(0)], ["u1", Table.uint16(65535)],
      ["I0", Table.int32(-2147483648)], ["I1", Table.int32(2147483647)],
      ["i0", Table.uint32(0)], ["i1", Table.uint32(4294967295)],
      ["l0", Table.int64(-(2n ** 63n))], ["l1", Table.int64(2n ** 63n - 1n)],
      ["l2", Table.int64(2n ** 53n + 1n)]
    ]
    const back = dec(enc(t))
    assert.deepStrictEqual(back, t)
    assert.deepStrictEqual(Table.get(back, "l2"), Table.int64(9007199254740993n))
  })

  it("rejects values out of range for their tag", () => {
    for (const v of [Table.int8(128), Table.uint8(-1), Table.int16(40000), Table.uint32(2 ** 32), Table.int32(1.5),
      Table.int64(2n ** 63n), Table.decimal(256, 1), Table.decimal(2, -1), Table.timestamp(-1n)]) {
      assert.strictEqual(failure(Table.encode([["k", v]])).reason, "InvalidValue", JSON.stringify(v, (_, x) => typeof x === "bigint" ? String(x) : x))
    }
  })

  it("short string names are measured in UTF-8 bytes and never truncated", () => {
    const name = "é".repeat(128) // 128 characters, 256 bytes
    const error = failure(Table.encode([[name, Table.bool(true)]]))
    assert.strictEqual(error.reason, "ShortStringTooLong")
    assert.strictEqual(error.size, 256)
    assert.strictEqual(error.max, 255)
    assert.isTrue(Either.isRight(Table.encode([["é".repeat(127) + "a", Table.bool(true)]])))
  })

  it("keeps wire order, repeated names, void and present-empty values", () => {
    const t: Table.FieldTable = [["b", Table.voidValue], ["a", Table.string("")], ["b", Table.bytes(new Uint8Array(0))]]
    assert.deepStrictEqual(dec(enc(t)), t)
  })

  it("reads the legacy L tag as a signed 64-bit integer", () => {
    const bytes = unhex("00 00 00 0b 01 6b 4c ff ff ff ff ff ff ff fe")
    assert.deepStrictEqual(dec(bytes), [["k", Table.int64(-2n)]])
  })

  it("fails with typed errors on unknown tags, truncation and trailing bytes", () => {
    const unknown = failure(Table.decode(unhex("00 00 00 03 01 6b 55")))
    assert.strictEqual(unknown.reason, "UnknownFieldType")
    assert.deepStrictEqual(unknown.bytes, Uint8Array.of(0x55))
    assert.strictEqual(unknown.offset, 6)
    assert.strictEqual(failure(Table.decode(unhex("00 00 00 05 01 6b 49 00"))).reason, "Malformed")
    assert.strictEqual(failure(Table.decode(unhex("00 00 00 00 00"))).reason, "Malformed")
    // a nested length running past its parent
    assert.strictEqual(failure(Table.decode(unhex("00 00 00 08 01 6b 46 00 00 00 09 00"))).reason, "Malformed")
    // invalid UTF-8 in a name
    assert.strictEqual(failure(Table.decode(unhex("00 00 00 03 01 ff 56"))).reason, "Malformed")
  })

  it("rejects tables nested beyond 64 levels instead of exhausting the stack", () => {
    let t: Table.FieldTable = []
    for (let i = 0; i < 100; i++) t = [["n", Table.table(t)]]
    assert.strictEqual(failure(Table.encode(t)).reason, "InvalidValue")
    // hand-built bytes nested 100 deep
    let bytes = unhex("00 00 00 00")
    for (let i = 0; i < 100; i++) {
      const inner = Buffer.concat([unhex("01 6e 46"), bytes])
      bytes = new Uint8Array(Buffer.concat([unhex(inner.length.toString(16).padStart(8, "0")), inner]))
    }
    assert.strictEqual(failure(Table.decode(bytes)).reason, "Malformed")
  })

  describe("plain values", () => {
    it("types plain JS values by the documented rules", () => {
      const t = Either.getOrThrow(Table.fromRecord({
        bool: true,
        small: 7,
        int32: -2147483648,
        big: 2 ** 40,
        float: 0.1,
        bigint: 2n ** 62n,
        text: "hi",
        date: new Date(1704067200999),
        bytes: Uint8Array.of(1),
        none: null,
        list: [1, "a"],
        nested: { a: false },
        explicit: Table.uint8(200),
        skipped: undefined
      }))
      assert.deepStrictEqual(t, [
        ["bool", Table.bool(true)],
        ["small", Table.int32(7)],
        ["int32", Table.int32(-2147483648)],
        ["big", Table.int64(2n ** 40n)],
        ["float", Table.float64(0.1)],
        ["bigint", Table.int64(2n ** 62n)],
        ["text", Table.string("hi")],
        ["date", Table.timestamp(1704067200n)],
        ["bytes", Table.bytes(Uint8Array.of(1))],
        ["none", Table.voidValue],
        ["list", Table.array([Table.int32(1), Table.string("a")])],
        ["nested", Table.table([["a", Table.bool(false)]])],
        ["explicit", Table.uint8(200)]
      ])
      assert.deepStrictEqual(Table.toRecord(t), {
        bool: true, small: 7, int32: -2147483648, big: 2n ** 40n, float: 0.1, bigint: 2n ** 62n, text: "hi",
        date: new Date(1704067200000), bytes: Uint8Array.of(1), none: null, list: [1, "a"], nested: { a: false },
        explicit: 200
      })
    })

    it("refuses what it cannot type instead of dropping or voiding it", () => {
      for (const bad of [{ u: 2 ** 60 }, { b: 2n ** 64n }, { f: () => 1 }, { s: Symbol("x") }, { m: new Map() }, { a: [undefined] }]) {
        assert.strictEqual(failure(Table.fromRecord(bad as unknown as Table.PlainRecord)).reason, "InvalidValue")
      }
    })

    it("accessors accept any integer width", () => {
      for (const v of [Table.int8(5), Table.uint8(5), Table.int16(5), Table.uint16(5), Table.int32(5), Table.uint32(5), Table.int64(5n)]) {
        assert.strictEqual(Table.asInteger(v), 5)
      }
      assert.strictEqual(Table.asInteger(Table.int64(2n ** 60n)), undefined)
      assert.strictEqual(Table.asString(Table.string("x-é")), "x-é")
    })
  })

  describe("Schemas", () => {
    it.prop("any generated table round-trips through its bytes, byte-exact", { table: Table.FieldTable }, ({ table }) => {
      const bytes = Schema.encodeSync(Table.FieldTableFromBytes)(table)
      const back = Schema.decodeSync(Table.FieldTableFromBytes)(bytes)
      assert.deepStrictEqual(back, table)
      assert.strictEqual(hex(Schema.encodeSync(Table.FieldTableFromBytes)(back)), hex(bytes))
    }, { fastCheck: { numRuns: 300 } })

    it("the Schema rejects what the encoder rejects", () => {
      assert.isTrue(Either.isLeft(Schema.validateEither(Table.FieldTable)([["k", Table.int8(300)]])))
      assert.isTrue(Either.isLeft(Schema.validateEither(Table.FieldTable)([["é".repeat(200), Table.voidValue]])))
      assert.isTrue(Either.isLeft(Schema.encodeEither(Table.FieldTableFromBytes)([["k", Table.int8(300)]])))
    })

    it("FieldTableFromRecord decodes plain objects by the rules", () => {
      assert.deepStrictEqual(Schema.decodeSync(Table.FieldTableFromRecord)({ a: 1 }), [["a", Table.int32(1)]])
    })
  })

  describe("interop with the Node clients' codecs", () => {
    const sample: Table.FieldTable = [
      ["bool", Table.bool(true)],
      ["int8", Table.int8(-5)],
      ["uint8", Table.uint8(200)],
      ["int16", Table.int16(-300)],
      ["uint16", Table.uint16(60000)],
      ["int32", Table.int32(-70000)],
      ["uint32", Table.uint32(3000000000)],
      ["int64", Table.int64(-(2n ** 40n))],
      ["float32", Table.float32(1.5)],
      ["float64", Table.float64(0.1)],
      ["decimal", Table.decimal(2, 12345)],
      ["text", Table.string("héllo")],
      ["array", Table.array([Table.int32(1), Table.string("a"), Table.bool(false)])],
      ["ts", Table.timestamp(1704067200n)],
      ["nested", Table.table([["x-match", Table.string("all")]])],
      ["void", Table.voidValue],
      ["bytes", Table.bytes(Uint8Array.of(1, 2, 3))]
    ]

    it("amqplib decodes our table to the expected values", () => {
      const bytes = enc(sample)
      const fields = amqplibCodec.decodeFields(Buffer.from(bytes.subarray(4)))
      assert.deepStrictEqual({ ...fields, bytes: Uint8Array.from(fields.bytes as Buffer) }, {
        bool: true, int8: -5, uint8: 200, int16: -300, uint16: 60000, int32: -70000, uint32: 3000000000,
        int64: -(2 ** 40), float32: 1.5, float64: 0.1, decimal: { "!": "decimal", value: { places: 2, digits: 12345 } },
        text: "héllo", array: [1, "a", false], ts: { "!": "timestamp", value: 1704067200 },
        nested: { "x-match": "all" }, void: null, bytes: Uint8Array.of(1, 2, 3)
      })
    })

    it("we decode amqplib's table to the expected tagged values", () => {
      const buffer = Buffer.alloc(4096)
      const n = amqplibCodec.encodeTable(buffer, {
        bool: true, small: 5, short: 300, int: 70000, long: 2 ** 40, double: 0.5, text: "héllo", list: [1, "a"],
        nested: { a: null }, bytes: Buffer.from([1, 2]),
        ts: { "!": "timestamp", value: 1704067200 }, dec: { "!": "decimal", value: { places: 2, digits: 12345 } },
        u8: { "!": "uint8", value: 200 }, u16: { "!": "uint16", value: 60000 }, u32: { "!": "uint32", value: 3000000000 },
        f: { "!": "float", value: 1.5 }
      }, 0)
      assert.deepStrictEqual(dec(new Uint8Array(buffer.subarray(0, n))), [
        ["bool", Table.bool(true)],
        ["small", Table.int8(5)],
        ["short", Table.int16(300)],
        ["int", Table.int32(70000)],
        ["long", Table.int64(2n ** 40n)],
        ["double", Table.float64(0.5)],
        ["text", Table.string("héllo")],
        ["list", Table.array([Table.int8(1), Table.string("a")])],
        ["nested", Table.table([["a", Table.voidValue]])],
        ["bytes", Table.bytes(Uint8Array.of(1, 2))],
        ["ts", Table.timestamp(1704067200n)],
        ["dec", Table.decimal(2, 12345)],
        ["u8", Table.uint8(200)],
        ["u16", Table.uint16(60000)],
        ["u32", Table.uint32(3000000000)],
        ["f", Table.float32(1.5)]
      ])
    })

    it("@cloudamqp/amqp-client decodes our table to the expected values", () => {
      const bytes = enc(sample)
      const view = new AMQPView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      const [fields, length] = view.getTable(0)
      assert.strictEqual(length, bytes.length)
      assert.deepStrictEqual(fields, {
        bool: true, int8: -5, uint8: 200, int16: -300, uint16: 60000, int32: -70000, uint32: 3000000000,
        int64: -(2 ** 40), float32: 1.5, float64: 0.1, decimal: 123.45, text: "héllo", array: [1, "a", false],
        ts: new Date(1704067200000), nested: { "x-match": "all" }, void: null, bytes: Uint8Array.of(1, 2, 3)
      })
    })

    it("we decode @cloudamqp/amqp-client's table to the expected tagged values", () => {
      const buffer = new ArrayBuffer(4096)
      const view = new AMQPView(buffer)
      const n = view.setTable(0, {
        bool: false, int: -7, big: 2n ** 40n, float: 0.5, text: "hé", list: [1, "a"], nested: { a: null },
        bytes: Uint8Array.of(9), date: new Date(1704067200000)
      })
      assert.deepStrictEqual(dec(new Uint8Array(buffer, 0, n)), [
        ["bool", Table.bool(false)],
        ["int", Table.int32(-7)],
        ["big", Table.int64(2n ** 40n)],
        // amqp-client writes non-integers as float32
        ["float", Table.float32(0.5)],
        ["text", Table.string("hé")],
        ["list", Table.array([Table.int32(1), Table.string("a")])],
        ["nested", Table.table([["a", Table.voidValue]])],
        ["bytes", Table.bytes(Uint8Array.of(9))],
        ["date", Table.timestamp(1704067200n)]
      ])
    })

    it.prop("amqplib reads any generated table we write", { table: Table.FieldTable }, ({ table }) => {
      const fields = amqplibCodec.decodeFields(Buffer.from(enc(table).subarray(4)))
      assert.strictEqual(typeof fields, "object")
    }, { fastCheck: { numRuns: 100 } })
  })

  it("arbitraries cover every tag", () => {
    const seen = new Set<string>()
    const visit = (v: Table.FieldValue): void => {
      seen.add(v._tag)
      if (v._tag === "Array") v.value.forEach(visit)
      if (v._tag === "Table") v.value.forEach(([, x]) => visit(x))
    }
    for (const t of FastCheck.sample(Arbitrary.make(Table.FieldTable), { numRuns: 200, seed: 42 })) t.forEach(([, v]) => visit(v))
    assert.strictEqual(seen.size, 17)
  })
})
