import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { AMQPView } from "@cloudamqp/amqp-client/amqp-view"
import { AmqpError } from "../../src/amqp/AmqpError.js"
import * as Frame from "../../src/amqp/Frame.js"
import * as Methods from "../../src/amqp/Methods.js"
import * as Properties from "../../src/amqp/Properties.js"
import * as Table from "../../src/amqp/Table.js"
import * as Memory from "../../src/transport/Memory.js"
import * as Transport from "../../src/transport/Transport.js"
import { repoRoot } from "../support/peers.js"

const require = createRequire(import.meta.url)
const defs: {
  encodeProperties: (id: number, channel: number, size: number, fields: Record<string, unknown>) => Buffer
} = require(Path.join(repoRoot, "node_modules/amqplib/lib/defs.js"))

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")
const unhex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const utf8 = (s: string) => new TextEncoder().encode(s)
const concat = (parts: ReadonlyArray<Uint8Array>) => new Uint8Array(Buffer.concat(parts))
/** `undefined` properties mean absent: decoding never produces them. */
const absentAsMissing = <A>(value: A): A =>
  JSON.parse(JSON.stringify(value, (_, v) => typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? hex(v) : v)) as A

const left = <A>(e: Either.Either<A, AmqpError>): AmqpError => {
  assert.isTrue(Either.isLeft(e), "expected a failure")
  return (e as Either.Left<AmqpError, A>).left
}

const publishGolden = unhex(`
  01 0001 0000000a 003c 0028 0000 00 01 71 00 ce
  02 0001 0000000e 003c 0000 0000000000000002 0000 ce
  03 0001 00000002 68 69 ce`)

describe("Frame", () => {
  describe("golden bytes", () => {
    it("heartbeat", () => {
      assert.strictEqual(hex(Either.getOrThrow(Frame.encode(Frame.heartbeat))), "08000000000000ce")
      assert.deepStrictEqual(Either.getOrThrow(Frame.decode(unhex("08 0000 00000000 ce"))), Frame.heartbeat)
    })

    it("basic.publish with body \"hi\" is the spec's 50 bytes, in one buffer", () => {
      const bytes = Either.getOrThrow(Frame.encodePublish({ channel: 1, routingKey: "q", body: utf8("hi") }))
      assert.strictEqual(bytes.length, 50)
      assert.strictEqual(hex(bytes), hex(publishGolden))
    })

    it("content header with content-type and delivery-mode (flags 0x9000)", () => {
      const frame = Frame.header(1, 2n, { contentType: "application/json", deliveryMode: 2 })
      const expected = unhex("02 0001 00000020 003c 0000 0000000000000002 9000 10" + hex(utf8("application/json")) + "02 ce")
      assert.strictEqual(hex(Either.getOrThrow(Frame.encode(frame))), hex(expected))
      assert.deepStrictEqual(Either.getOrThrow(Frame.decode(expected)), frame)
    })

    it("body frame", () => {
      assert.strictEqual(hex(Either.getOrThrow(Frame.encode(Frame.body(3, utf8("hi"))))), "030003000000026869ce")
    })

    it("protocol header", () => {
      assert.strictEqual(hex(Frame.encodeProtocolHeader({ protocolId: 0, major: 0, minor: 9, revision: 1 })), "414d515000000901")
      const header = Either.getOrThrow(Frame.decodeProtocolHeader(unhex("414d515000000901")))
      assert.isTrue(Frame.isAmqp091(header))
    })
  })

  describe("properties", () => {
    it("every property, in flag order, byte-exact", () => {
      const p: Properties.BasicProperties = {
        contentType: "a", contentEncoding: "b", headers: [["h", Table.bool(true)]], deliveryMode: 2, priority: 9,
        correlationId: "c", replyTo: "r", expiration: "60000", messageId: "m",
        timestamp: new Date("2024-01-01T00:00:00Z"), type: "t", userId: "u", appId: "p", clusterId: "k"
      }
      const expected = unhex(
        "fffc 01 61 01 62 00000004 01 68 74 01 02 09 01 63 01 72 05 3630303030 01 6d 0000000065920080 01 74 01 75 01 70 01 6b"
      )
      assert.strictEqual(hex(Either.getOrThrow(Properties.encode(p))), hex(expected))
      assert.deepStrictEqual(Either.getOrThrow(Properties.decode(expected)), p)
    })

    it("keeps present-but-empty and zero values distinct from absent ones", () => {
      const p: Properties.BasicProperties = { contentType: "", priority: 0, deliveryMode: 0 }
      const bytes = Either.getOrThrow(Properties.encode(p))
      assert.strictEqual(hex(bytes), hex(unhex("9800 00 00 00")))
      assert.deepStrictEqual(Either.getOrThrow(Properties.decode(bytes)), p)
      assert.deepStrictEqual(Either.getOrThrow(Properties.decode(unhex("0000"))), {})
    })

    it("timestamps are whole seconds on the wire", () => {
      const bytes = Either.getOrThrow(Properties.encode({ timestamp: new Date("2024-01-01T00:00:00.999Z") }))
      assert.strictEqual(hex(bytes), "00400000000065920080")
      assert.strictEqual(Either.getOrThrow(Properties.decode(bytes)).timestamp!.getTime(), 1704067200000)
    })

    it("honours the continuation bit and rejects unknown flags", () => {
      assert.deepStrictEqual(Either.getOrThrow(Properties.decode(unhex("8001 0000 01 61"))), { contentType: "a" })
      assert.strictEqual(left(Properties.decode(unhex("0001 8000"))).reason, "Malformed")
      assert.strictEqual(left(Properties.decode(unhex("0002"))).reason, "Malformed")
      assert.strictEqual(left(Properties.decode(unhex("8000 05 61"))).reason, "Malformed")
    })

    it("rejects invalid values with typed errors", () => {
      assert.strictEqual(left(Properties.encode({ priority: 256 })).reason, "InvalidValue")
      assert.strictEqual(left(Properties.encode({ timestamp: new Date(Number.NaN) })).reason, "InvalidValue")
      const long = left(Properties.encode({ messageId: "é".repeat(128) }))
      assert.strictEqual(long.reason, "ShortStringTooLong")
      assert.strictEqual(long.field, "messageId")
    })

    it("matches amqplib's and @cloudamqp/amqp-client's property encoders", () => {
      const fields = {
        contentType: "application/json", contentEncoding: "gzip", headers: { "x-a": "b" }, deliveryMode: 2,
        priority: 5, correlationId: "c", replyTo: "r", expiration: "1000", messageId: "m", timestamp: 1704067200,
        type: "t", userId: "guest", appId: "app"
      }
      const ours: Properties.BasicProperties = {
        ...fields, headers: [["x-a", Table.string("b")]], timestamp: new Date(1704067200000)
      }
      const theirs = defs.encodeProperties(60, 1, 10, fields)
      const bytes = Either.getOrThrow(Frame.encode(Frame.header(1, 10n, ours)))
      assert.strictEqual(hex(bytes), hex(theirs))
      // amqp-client reads our properties back
      const view = new AMQPView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      const [props] = view.getProperties(19)
      assert.deepStrictEqual(props, { ...fields, headers: { "x-a": "b" }, timestamp: new Date(1704067200000) })
      // and we read theirs
      const buffer = new ArrayBuffer(1024)
      const n = new AMQPView(buffer).setProperties(0, { ...fields, headers: { "x-a": "b" }, timestamp: new Date(1704067200000) })
      assert.deepStrictEqual(Either.getOrThrow(Properties.decode(new Uint8Array(buffer, 0, n))), ours)
    })
  })

  describe("publish encoder", () => {
    it("chunks bodies at frame_max − 8 and never exceeds frame_max", () => {
      const body = new Uint8Array(20000).map((_, i) => i & 0xff)
      const bytes = Either.getOrThrow(Frame.encodePublish({ channel: 2, exchange: "x", routingKey: "k", body }, { frameMax: 8192 }))
      const frames = Either.getOrThrow(new Frame.Parser({ maxFrameSize: 8192 }).push(bytes))
      assert.deepStrictEqual(frames.map((f) => f._tag), ["Method", "Header", "Body", "Body", "Body"])
      const bodies = frames.filter((f): f is Frame.BodyFrame => f._tag === "Body")
      assert.deepStrictEqual(bodies.map((f) => f.payload.length), [8184, 8184, 3632])
      assert.deepStrictEqual(concat(bodies.map((f) => f.payload)), body)
      assert.strictEqual(bytes.length, (7 + 4 + 2 + 2 + 2 + 1 + 1) + (7 + 12 + 2 + 1) + 20000 + 3 * 8)
    })

    it("an empty body writes method and header only", () => {
      const bytes = Either.getOrThrow(Frame.encodePublish({ channel: 1, body: new Uint8Array(0) }))
      const frames = Either.getOrThrow(new Frame.Parser().push(bytes))
      assert.deepStrictEqual(frames.map((f) => f._tag), ["Method", "Header"])
      assert.strictEqual((frames[1] as Frame.HeaderFrame).bodySize, 0n)
    })

    it("writes the same bytes as encoding its three frames one by one", () => {
      const p: Frame.Publish = {
        channel: 7, exchange: "ex", routingKey: "rk", mandatory: true,
        properties: { contentType: "text/plain", headers: [["n", Table.int32(1)]] }, body: utf8("hello")
      }
      const one = Either.getOrThrow(Frame.encodePublish(p))
      const three = concat([
        Either.getOrThrow(Frame.encode(Frame.method(7, Methods.make("BasicPublish", { exchange: "ex", routingKey: "rk", mandatory: true })))),
        Either.getOrThrow(Frame.encode(Frame.header(7, 5n, p.properties))),
        Either.getOrThrow(Frame.encode(Frame.body(7, utf8("hello"))))
      ])
      assert.strictEqual(hex(one), hex(three))
    })

    it("reports a too long routing key or a header over frame_max before writing anything", () => {
      const encoder = new Frame.Encoder({ frameMax: 8192 })
      const error = encoder.publish({ channel: 1, routingKey: "é".repeat(128), body: new Uint8Array(1) })
      assert.strictEqual(error?.reason, "ShortStringTooLong")
      const big = encoder.publish({
        channel: 1, properties: { headers: [["h", Table.bytes(new Uint8Array(9000))]] }, body: new Uint8Array(1)
      })
      assert.strictEqual(big?.reason, "FrameTooLarge")
      assert.strictEqual(big?.max, 8192)
      assert.strictEqual(encoder.pending, 0)
    })

    it("the slab encoder never overwrites bytes it has handed out", () => {
      const encoder = new Frame.Encoder({ slabSize: 128 })
      const taken: Array<[Uint8Array, string]> = []
      for (let i = 0; i < 50; i++) {
        assert.isUndefined(encoder.publish({ channel: 1, routingKey: `k${i}`, body: utf8(`message ${i}`) }))
        if (i % 3 === 0) assert.isUndefined(encoder.frame(Frame.heartbeat))
        if (i % 2 === 1) {
          const bytes = encoder.take()
          taken.push([bytes, hex(bytes)])
        }
      }
      for (const [bytes, snapshot] of taken) assert.strictEqual(hex(bytes), snapshot)
      const all = concat(taken.map(([b]) => b))
      const frames = Either.getOrThrow(new Frame.Parser().push(all))
      assert.strictEqual(frames.filter((f) => f._tag === "Method").length, 50)
    })
  })

  describe("parser", () => {
    const stream = concat([
      publishGolden,
      unhex("08 0000 00000000 ce"),
      Either.getOrThrow(Frame.encodePublish({ channel: 3, routingKey: "r", properties: { messageId: "m" }, body: new Uint8Array(300).fill(7) }, { frameMax: 4096 })),
      Either.getOrThrow(Frame.encode(Frame.method(0, Methods.make("ConnectionClose", { replyCode: 200, classId: 0, methodId: 0 }))))
    ])
    const expected = Either.getOrThrow(new Frame.Parser().push(stream))

    it("decodes many frames in one read", () => {
      assert.deepStrictEqual(expected.map((f) => `${f._tag}@${f.channel}`), [
        "Method@1", "Header@1", "Body@1", "Heartbeat@0", "Method@3", "Header@3", "Body@3", "Method@0"
      ])
    })

    it("gives the same frames when the stream is split at every byte", () => {
      for (let cut = 1; cut < stream.length; cut++) {
        const frames = Either.getOrThrow(new Frame.Parser().push(stream.subarray(0, cut), stream.subarray(cut)))
        assert.deepStrictEqual(frames, expected, `split at ${cut}`)
      }
      const frames = Either.getOrThrow(new Frame.Parser().push(...Array.from(stream, (b) => Uint8Array.of(b))))
      assert.deepStrictEqual(frames, expected)
    })

    it.prop("gives the same frames for any chunking", { cuts: FastCheck.uniqueArray(FastCheck.integer({ min: 1, max: stream.length - 1 }), { maxLength: 40 }) }, ({ cuts }) => {
      const points = [0, ...[...cuts].sort((a, b) => a - b), stream.length]
      const chunks = points.slice(1).map((end, i) => stream.subarray(points[i], end))
      assert.deepStrictEqual(Either.getOrThrow(new Frame.Parser().push(...chunks)), expected)
    }, { fastCheck: { numRuns: 200 } })

    it("slices body payloads out of the chunk without copying", () => {
      const frames = Either.getOrThrow(new Frame.Parser().push(stream))
      const body = frames[2] as Frame.BodyFrame
      assert.strictEqual(body.payload.buffer, stream.buffer)
      assert.strictEqual(body.payload.byteOffset, stream.byteOffset + publishGolden.length - 3)
    })

    it("fails with FrameTooLarge before buffering a frame larger than the cap", () => {
      const parser = new Frame.Parser({ maxFrameSize: 8192 })
      const error = parser.feed(unhex("03 0001 ffffffff"), () => assert.fail("no frame"))
      assert.strictEqual(error?.reason, "FrameTooLarge")
      assert.strictEqual(error?.size, 0xffffffff + 8)
      assert.strictEqual(error?.max, 8192)
      assert.strictEqual(parser.buffered, 0)
      // and it stays failed
      assert.strictEqual(parser.feed(unhex("08 0000 00000000 ce"), () => assert.fail("no frame")), error)
      // the boundary: exactly frame_max is fine
      const ok = new Frame.Parser({ maxFrameSize: 16 })
      assert.strictEqual(Either.getOrThrow(ok.push(Either.getOrThrow(Frame.encode(Frame.body(1, new Uint8Array(8)))))).length, 1)
      assert.strictEqual(left(ok.push(Either.getOrThrow(Frame.encode(Frame.body(1, new Uint8Array(9)))))).reason, "FrameTooLarge")
    })

    it("checks the frame-end octet", () => {
      const error = left(new Frame.Parser().push(unhex("08 0000 00000000 cf")))
      assert.strictEqual(error.reason, "BadFrameEnd")
      assert.strictEqual(error.offset, 7)
    })

    it("rejects unknown frame types and methods with their ids", () => {
      const type = left(new Frame.Parser().push(unhex("04 0000 00000000 ce")))
      assert.strictEqual(type.reason, "UnknownFrameType")
      assert.strictEqual(type.frameType, 4)
      const method = left(new Frame.Parser().push(unhex("08 0000 00000000 ce 01 0002 00000004 0063 000a ce")))
      assert.strictEqual(method.reason, "UnknownMethod")
      assert.strictEqual(method.classId, 99)
      assert.strictEqual(method.methodId, 10)
      assert.strictEqual(method.channel, 2)
      assert.strictEqual(method.offset, 15)
    })

    it("reports a server's protocol header as a version mismatch, even split across reads", () => {
      const error = left(new Frame.Parser().push(unhex("41 4d 51"), unhex("50 00 01 00 00")))
      assert.strictEqual(error.reason, "ProtocolVersionMismatch")
      assert.deepStrictEqual(error.bytes, unhex("41 4d 51 50 00 01 00 00"))
    })

    it("rejects malformed payloads: heartbeat with a payload, a header of another class, short arguments", () => {
      assert.strictEqual(left(new Frame.Parser().push(unhex("08 0000 00000001 00 ce"))).reason, "Malformed")
      assert.strictEqual(left(new Frame.Parser().push(unhex("02 0001 0000000e 0032 0000 0000000000000000 0000 ce"))).reason, "Malformed")
      const short = left(new Frame.Parser().push(unhex("01 0000 00000006 000a 001f 07ff ce")))
      assert.strictEqual(short.reason, "Malformed")
      assert.strictEqual(short.field, "connection.tune-ok.frameMax")
    })
  })

  describe("Schemas", () => {
    it.prop("any generated frame round-trips through FrameFromBytes, byte-exact", { frame: Frame.Frame }, ({ frame }) => {
      const bytes = Schema.encodeSync(Frame.FrameFromBytes)(frame)
      const back = Schema.decodeSync(Frame.FrameFromBytes)(bytes)
      assert.deepStrictEqual(absentAsMissing(back), absentAsMissing(frame))
      assert.strictEqual(hex(Schema.encodeSync(Frame.FrameFromBytes)(back)), hex(bytes))
    }, { fastCheck: { numRuns: 500 } })

    it.prop("any generated properties round-trip", { properties: Properties.BasicProperties }, ({ properties }) => {
      const bytes = Schema.encodeSync(Properties.BasicPropertiesFromBytes)(properties)
      const back = Schema.decodeSync(Properties.BasicPropertiesFromBytes)(bytes)
      assert.deepStrictEqual(absentAsMissing(back), absentAsMissing(properties))
      for (const [key, value] of Object.entries(properties)) assert.strictEqual(key in back, value !== undefined, key)
    }, { fastCheck: { numRuns: 300 } })

    it("decoding invalid bytes is a ParseError, not an exception", () => {
      assert.isTrue(Either.isLeft(Schema.decodeEither(Frame.FrameFromBytes)(unhex("08 0000 00000000 00"))))
      assert.isTrue(Either.isLeft(Schema.decodeEither(Frame.FrameFromBytes)(unhex("08 0000"))))
    })
  })

  describe("fuzz", () => {
    const frames = Arbitrary.make(Frame.Frame)
    const run = (chunks: ReadonlyArray<Uint8Array>) => {
      const parser = new Frame.Parser({ maxFrameSize: 4096 })
      let fed = 0
      for (const chunk of chunks) {
        fed += chunk.length
        const error = parser.feed(chunk, (frame) => assert.isObject(frame))
        assert.isAtMost(parser.buffered, Math.max(8, Math.min(4096, fed)))
        if (error !== undefined) {
          assert.instanceOf(error, AmqpError)
          return error
        }
      }
      return undefined
    }

    it.prop("random bytes end in frames or a typed error, never an exception", {
      bytes: FastCheck.uint8Array({ maxLength: 512 }),
      step: FastCheck.integer({ min: 1, max: 64 })
    }, ({ bytes, step }) => {
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < bytes.length; i += step) chunks.push(bytes.subarray(i, i + step))
      run(chunks)
    }, { fastCheck: { numRuns: 1000 } })

    it.prop("random frame-shaped bytes (valid type, small size, 0xCE end) end in a value or a typed error", {
      type: FastCheck.constantFrom(1, 2, 3, 8),
      channel: FastCheck.integer({ min: 0, max: 3 }),
      payload: FastCheck.uint8Array({ maxLength: 64 })
    }, ({ type, channel, payload }) => {
      const bytes = concat([Uint8Array.of(type, 0, channel), unhex(payload.length.toString(16).padStart(8, "0")), payload, Uint8Array.of(0xce)])
      const result = Frame.decode(bytes)
      if (Either.isLeft(result)) assert.instanceOf(result.left, AmqpError)
    }, { fastCheck: { numRuns: 2000 } })

    it.prop("mutated valid frames end in a value or a typed error", {
      list: FastCheck.array(frames, { minLength: 1, maxLength: 4 }),
      mutations: FastCheck.array(FastCheck.tuple(FastCheck.nat(), FastCheck.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      step: FastCheck.integer({ min: 1, max: 97 })
    }, ({ list, mutations, step }) => {
      const encoded = list.map((f) => Frame.encode(f, { frameMax: 0 })).filter(Either.isRight).map((e) => e.right)
      const bytes = concat(encoded)
      if (bytes.length === 0) return
      for (const [at, value] of mutations) bytes[at % bytes.length] = value
      const chunks: Array<Uint8Array> = []
      for (let i = 0; i < bytes.length; i += step) chunks.push(bytes.subarray(i, i + step))
      const parser = new Frame.Parser({ maxFrameSize: 1 << 20 })
      for (const chunk of chunks) {
        const error = parser.feed(chunk, (frame) => assert.isObject(frame))
        if (error !== undefined) {
          assert.instanceOf(error, AmqpError)
          break
        }
      }
    }, { fastCheck: { numRuns: 500 } })
  })
})

describe("Frame.decodeStream", () => {
  it.effect("turns a byte stream split anywhere into frames, and fails with the parser's error", () =>
    Effect.gen(function*() {
      const bytes = concat([publishGolden, unhex("08 0000 00000000 ce")])
      const chunks = [bytes.subarray(0, 5), bytes.subarray(5, 31), bytes.subarray(31)]
      const frames = yield* Stream.fromIterable(chunks).pipe(Frame.decodeStream(), Stream.runCollect)
      assert.deepStrictEqual(Chunk.toReadonlyArray(frames).map((f) => f._tag), ["Method", "Header", "Body", "Heartbeat"])
      const error = yield* Stream.make(unhex("08 0000 00000000 00")).pipe(Frame.decodeStream(), Stream.runDrain, Effect.flip)
      assert.strictEqual(error.reason, "BadFrameEnd")
    }))

  it.effect("over a memory transport", () =>
    Effect.scoped(Effect.gen(function*() {
      const [a, b] = yield* Memory.pair()
      const encoder = new Frame.Encoder({ frameMax: 8192 })
      for (let i = 0; i < 100; i++) encoder.publish({ channel: 1, routingKey: `k${i}`, body: new Uint8Array(10000) })
      // the writer waits while the reader is behind (bounded memory), so it runs beside the reader
      yield* Effect.fork(Effect.zipRight(a.write(encoder.take()), a.shutdownWrite))
      const frames = yield* Transport.toStream(b).pipe(Frame.decodeStream({ maxFrameSize: 8192 }), Stream.runCollect)
      const counts = { Method: 0, Header: 0, Body: 0, Heartbeat: 0 }
      for (const f of frames) counts[f._tag]++
      assert.deepStrictEqual(counts, { Method: 100, Header: 100, Body: 200, Heartbeat: 0 })
    })))
})

describe("limits", () => {
  it("a timestamp beyond the range of a Date is a typed error, not an Invalid Date", () => {
    assert.strictEqual(left(Properties.decode(unhex("0040 ffffffffffffffff"))).reason, "Malformed")
  })

  it("frameMax 0 means no limit for the encoders", () => {
    const body = new Uint8Array(300000)
    const bytes = Either.getOrThrow(Frame.encodePublish({ channel: 1, body }, { frameMax: 0 }))
    const frames = Either.getOrThrow(new Frame.Parser({ maxFrameSize: 400000 }).push(bytes))
    assert.deepStrictEqual(frames.map((f) => f._tag), ["Method", "Header", "Body"])
  })

  it("the cap can change between reads (after tune-ok)", () => {
    const parser = new Frame.Parser({ maxFrameSize: 8192 })
    const big = Either.getOrThrow(Frame.encode(Frame.body(1, new Uint8Array(10000)), { frameMax: 0 }))
    parser.maxFrameSize = 131072
    assert.strictEqual(Either.getOrThrow(parser.push(big)).length, 1)
  })
})
