import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as Framing from "../../src/transport/Framing.js"
import * as Transport from "../../src/transport/Transport.js"

const bytes = (...values: ReadonlyArray<number>) => Uint8Array.from(values)
const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex")

const decodeAll = (framer: Framing.Framer, chunks: ReadonlyArray<Uint8Array>): Array<Uint8Array> => {
  const decoder = framer.decoder()
  const out: Array<Uint8Array> = []
  for (const chunk of chunks) out.push(...Either.getOrThrow(decoder.push(chunk)))
  Either.getOrThrow(decoder.end())
  assert.strictEqual(decoder.buffered, 0)
  return out
}

const encodeAll = (codec: Framing.Codec, frames: ReadonlyArray<Uint8Array>) =>
  Transport.concat(frames.map((frame) => Either.getOrThrow(codec.encode(frame))))

/** Cuts `data` at the given positions (sorted, deduplicated, clamped). */
const cut = (data: Uint8Array, positions: ReadonlyArray<number>): Array<Uint8Array> => {
  const points = [...new Set(positions.map((p) => Math.min(p, data.length)))].sort((a, b) => a - b)
  const out: Array<Uint8Array> = []
  let from = 0
  for (const p of points) {
    out.push(data.subarray(from, p))
    from = p
  }
  out.push(data.subarray(from))
  return out
}

const assertFrames = (actual: ReadonlyArray<Uint8Array>, expected: ReadonlyArray<Uint8Array>) =>
  assert.deepStrictEqual(actual.map(hex), expected.map(hex))

const codecs: ReadonlyArray<readonly [string, Framing.Codec]> = [
  ["u8 prefix", Framing.lengthPrefixed({ prefixSize: 1, maxFrameSize: 250 })],
  ["u16le prefix counting itself", Framing.lengthPrefixed({ prefixSize: 2, endian: "little", includesPrefix: true })],
  ["u32be prefix", Framing.lengthPrefixed()],
  ["u64le prefix", Framing.lengthPrefixed({ prefixSize: 8, endian: "little" })],
  ["\\n", Framing.lines()],
  ["\\r\\n", Framing.delimiter("\r\n")],
  ["3-byte delimiter", Framing.delimiter(bytes(0xab, 0xab, 0xcd))]
]

const framesArbitrary = (delimited: boolean) =>
  FastCheck.array(
    FastCheck.uint8Array({ maxLength: 40 }).map((frame) =>
      // Delimited frames must not contain their delimiter's bytes: keep them in a disjoint range.
      delimited ? frame.map((b) => 0x20 + (b % 0x50)) : frame
    ),
    { maxLength: 12 }
  )

describe("Framing", () => {
  describe("golden bytes", () => {
    it("encodes each prefix size and byte order", () => {
      const frame = bytes(1, 2, 3)
      const encode = (options: Framing.LengthPrefixedOptions) =>
        hex(Either.getOrThrow(Framing.lengthPrefixed(options).encode(frame)))
      assert.strictEqual(encode({ prefixSize: 1 }), "03010203")
      assert.strictEqual(encode({ prefixSize: 2 }), "0003010203")
      assert.strictEqual(encode({ prefixSize: 2, endian: "little", includesPrefix: true }), "0500010203")
      assert.strictEqual(encode({}), "00000003010203")
      assert.strictEqual(encode({ endian: "little", includesPrefix: true }), "07000000010203")
      assert.strictEqual(encode({ prefixSize: 8 }), "0000000000000003010203")
      assert.strictEqual(hex(Either.getOrThrow(Framing.delimiter("\r\n").encode(frame))), "0102030d0a")
    })

    it("decodes a length that counts its prefix", () => {
      const framer = Framing.lengthPrefixed({ prefixSize: 2, includesPrefix: true })
      assertFrames(decodeAll(framer, [bytes(0, 4, 9, 8, 0, 2)]), [bytes(9, 8), bytes()])
      const invalid = framer.decoder().push(bytes(0, 1))
      assert.isTrue(Either.isLeft(invalid) && invalid.left.reason === "InvalidLength")
    })

    it("encodeChunks shares the frame's memory", () => {
      const frame = utf8("payload")
      const chunks = Either.getOrThrow(Framing.lengthPrefixed().encodeChunks(frame))
      assert.strictEqual(chunks.length, 2)
      assert.strictEqual(chunks[1], frame)
      assert.strictEqual(hex(chunks[0]!), "00000007")
    })
  })

  describe("frames split anywhere", () => {
    for (const [name, codec] of codecs) {
      const delimited = !name.includes("prefix")
      it.prop(
        `${name}: any frames cut at any positions decode to the same frames`,
        [framesArbitrary(delimited), FastCheck.array(FastCheck.nat({ max: 600 }), { maxLength: 20 })],
        ([frames, positions]) => {
          const wire = encodeAll(codec, frames)
          assertFrames(decodeAll(codec, cut(wire, positions)), frames)
        },
        { fastCheck: { numRuns: 150 } }
      )

      it(`${name}: every byte boundary, and one byte at a time`, () => {
        const frames = [utf8("hello"), utf8(""), utf8("a longer frame with some words in it"), utf8("x")]
        const wire = encodeAll(codec, frames)
        for (let i = 0; i <= wire.length; i++) {
          assertFrames(decodeAll(codec, [wire.subarray(0, i), wire.subarray(i)]), frames)
        }
        assertFrames(decodeAll(codec, cut(wire, Array.from(wire, (_, i) => i))), frames)
      })
    }
  })

  describe("many frames in one chunk", () => {
    it("are views into the chunk, without copies", () => {
      const codec = Framing.lengthPrefixed({ prefixSize: 2 })
      const frames = Array.from({ length: 1000 }, (_, i) => utf8(`frame number ${i}`))
      const wire = encodeAll(codec, frames)
      const decoded = Either.getOrThrow(codec.decoder().push(wire))
      assertFrames(decoded, frames)
      for (const frame of decoded) assert.strictEqual(frame.buffer, wire.buffer)
    })

    it("delimited frames too, and the rest waits for the next chunk", () => {
      const decoder = Framing.delimiter("\r\n").decoder()
      const chunk = utf8("one\r\ntwo\r\nthr")
      const first = Either.getOrThrow(decoder.push(chunk))
      assert.deepStrictEqual(first.map(text), ["one", "two"])
      for (const frame of first) assert.strictEqual(frame.buffer, chunk.buffer)
      assert.strictEqual(decoder.buffered, 3)
      assert.deepStrictEqual(Either.getOrThrow(decoder.push(utf8("ee\r"))).map(text), [])
      assert.deepStrictEqual(Either.getOrThrow(decoder.push(utf8("\nfour\r\n"))).map(text), ["three", "four"])
    })

    it("a lone \\r is data for a \\r\\n delimiter", () => {
      assert.deepStrictEqual(decodeAll(Framing.delimiter("\r\n"), [utf8("a\rb\r"), utf8("\r\n")]).map(text), [
        "a\rb\r"
      ])
    })
  })

  describe("limits", () => {
    it("rejects an oversized length-prefixed frame as soon as its header arrives", () => {
      const decoder = Framing.lengthPrefixed({ maxFrameSize: 1024 }).decoder()
      assert.isTrue(Either.isRight(decoder.push(bytes(0, 0, 4, 0)))) // exactly the limit: accepted
      assert.strictEqual(decoder.buffered, 0)
      const tooLarge = Framing.lengthPrefixed({ maxFrameSize: 1024 }).decoder().push(bytes(0, 0, 4, 1))
      assert.isTrue(Either.isLeft(tooLarge))
      if (Either.isLeft(tooLarge)) {
        assert.strictEqual(tooLarge.left._tag, "FramingError")
        assert.strictEqual(tooLarge.left.reason, "FrameTooLarge")
        assert.strictEqual(tooLarge.left.size, 1025)
        assert.strictEqual(tooLarge.left.maxFrameSize, 1024)
      }
    })

    it("returns the frames before malformed input, then fails", () => {
      const decoder = Framing.lengthPrefixed({ prefixSize: 1, maxFrameSize: 4 }).decoder()
      const result = decoder.push(bytes(2, 0xaa, 0xbb, 1, 0xcc, 9, 0))
      assertFrames(Either.getOrThrow(result), [bytes(0xaa, 0xbb), bytes(0xcc)])
      assert.strictEqual(decoder.error?.reason, "FrameTooLarge")
      const later = decoder.end()
      assert.isTrue(Either.isLeft(later) && later.left === decoder.error)
    })

    it("a failed decoder keeps failing", () => {
      const decoder = Framing.lengthPrefixed({ prefixSize: 1, maxFrameSize: 4 }).decoder()
      assert.isTrue(Either.isLeft(decoder.push(bytes(5))))
      const again = decoder.push(bytes(1, 0))
      assert.isTrue(Either.isLeft(again) && again.left.reason === "FrameTooLarge")
    })

    it("reads both words of an 8-byte prefix in either byte order", () => {
      const big = Framing.lengthPrefixed({ prefixSize: 8, maxFrameSize: 16 }).decoder().push(bytes(0, 0, 0, 1, 0, 0, 0, 5))
      assert.isTrue(Either.isLeft(big) && big.left.size === 2 ** 32 + 5)
      const little = Framing.lengthPrefixed({ prefixSize: 8, endian: "little", maxFrameSize: 16 }).decoder()
        .push(bytes(5, 0, 0, 0, 2, 0, 0, 0))
      assert.isTrue(Either.isLeft(little) && little.left.size === 2 * 2 ** 32 + 5)
    })

    it("rejects an 8-byte prefix beyond the safe integer range", () => {
      const result = Framing.lengthPrefixed({ prefixSize: 8 }).decoder().push(bytes(255, 255, 255, 255, 255, 255, 255, 255))
      assert.isTrue(Either.isLeft(result) && result.left.reason === "InvalidLength")
    })

    it("rejects a delimited frame that outgrows the limit before its delimiter arrives", () => {
      const decoder = Framing.lines({ maxFrameSize: 8 }).decoder()
      assert.isTrue(Either.isRight(decoder.push(utf8("12345678"))))
      const result = decoder.push(utf8("9"))
      assert.isTrue(Either.isLeft(result) && result.left.reason === "FrameTooLarge" && result.left.size === 9)
      // Memory stays bounded: nothing is kept after the failure.
      assert.strictEqual(decoder.buffered, 0)
    })

    it("rejects a delimited frame over the limit inside one chunk", () => {
      const result = Framing.delimiter("\r\n", { maxFrameSize: 3 }).decoder().push(utf8("abcd\r\n"))
      assert.isTrue(Either.isLeft(result) && result.left.reason === "FrameTooLarge" && result.left.size === 4)
    })

    it("refuses to encode what the framing cannot carry", () => {
      const u8 = Framing.lengthPrefixed({ prefixSize: 1, includesPrefix: true })
      assert.isTrue(Either.isRight(u8.encode(new Uint8Array(254))))
      const large = u8.encode(new Uint8Array(255))
      assert.isTrue(Either.isLeft(large) && large.left.reason === "FrameTooLarge" && large.left.maxFrameSize === 254)
      const lines = Framing.lines()
      const inside = lines.encode(utf8("a\nb"))
      assert.isTrue(Either.isLeft(inside) && inside.left.reason === "InvalidFrame")
      const crlf = Framing.delimiter("\r\n").encode(utf8("ends with \r"))
      assert.isTrue(Either.isLeft(crlf) && crlf.left.reason === "InvalidFrame")
    })

    it("reports a frame cut short when the input ends", () => {
      for (const codec of [Framing.lengthPrefixed(), Framing.lines()]) {
        const decoder = codec.decoder()
        Either.getOrThrow(decoder.push(utf8("\0\0\0\x05abc")))
        const end = decoder.end()
        assert.isTrue(Either.isLeft(end) && end.left.reason === "Truncated")
      }
    })
  })

  describe("fuzz", () => {
    const limit = 64
    const framers: ReadonlyArray<readonly [string, Framing.Framer, number]> = [
      ["u8", Framing.lengthPrefixed({ prefixSize: 1, maxFrameSize: limit }), 1],
      ["u16le incl", Framing.lengthPrefixed({ prefixSize: 2, endian: "little", includesPrefix: true, maxFrameSize: limit }), 2],
      ["u32", Framing.lengthPrefixed({ maxFrameSize: limit }), 4],
      ["u64", Framing.lengthPrefixed({ prefixSize: 8, maxFrameSize: limit }), 8],
      ["crlf", Framing.delimiter("\r\n", { maxFrameSize: limit }), 1],
      ["header", Framing.headerLength({ headerSize: 3, bodyLength: (h) => h[2]! % 3 === 0 ? new Framing.FramingError({ reason: "InvalidHeader" }) : h[1]!, maxFrameSize: limit }), 3]
    ]
    for (const [name, framer, slack] of framers) {
      it.prop(
        `${name}: random bytes never throw, never buffer past the limit, and fail only with a typed error`,
        [FastCheck.uint8Array({ maxLength: 600 }), FastCheck.array(FastCheck.nat({ max: 600 }), { maxLength: 30 })],
        ([data, positions]) => {
          const decoder = framer.decoder()
          for (const chunk of cut(data, positions)) {
            const result = decoder.push(chunk)
            assert.isAtMost(decoder.buffered, limit + slack)
            if (Either.isLeft(result)) {
              assert.strictEqual(result.left._tag, "FramingError")
              return
            }
            for (const frame of result.right) assert.isAtMost(frame.length, limit)
            if (decoder.error !== undefined) return
          }
          const end = decoder.end()
          if (Either.isLeft(end)) assert.include(["Truncated"], end.left.reason)
        },
        { fastCheck: { numRuns: 200 } }
      )
    }
  })

  describe("headerLength", () => {
    // AMQP 0-9-1: type (1), channel (2), payload size (4), payload, frame-end 0xCE.
    const amqp = Framing.headerLength({
      headerSize: 7,
      bodyLength: (h) => new DataView(h.buffer, h.byteOffset, 7).getUint32(3) + 1,
      maxFrameSize: 4096
    })
    const amqpFrame = (type: number, channel: number, payload: Uint8Array) => {
      const frame = new Uint8Array(8 + payload.length)
      const view = new DataView(frame.buffer)
      view.setUint8(0, type)
      view.setUint16(1, channel)
      view.setUint32(3, payload.length)
      frame.set(payload, 7)
      frame[7 + payload.length] = 0xce
      return frame
    }

    it("hands out AMQP frames whole, at every split", () => {
      const heartbeat = amqpFrame(8, 0, bytes())
      const method = amqpFrame(1, 1, utf8("\x00\x0a\x00\x0apayload"))
      const wire = Transport.concat([method, heartbeat, method])
      for (let i = 0; i <= wire.length; i++) {
        assertFrames(decodeAll(amqp, cut(wire, [i, i + 3])), [method, heartbeat, method])
      }
      assert.strictEqual(hex(heartbeat), "08000000000000ce")
    })

    it("checks the whole frame against the limit", () => {
      const result = amqp.decoder().push(amqpFrame(3, 1, new Uint8Array(4089)).subarray(0, 7))
      assert.isTrue(Either.isLeft(result) && result.left.reason === "FrameTooLarge" && result.left.size === 4097)
    })

    // muxado v2: length (24 bits), type (4 bits) + flags (4 bits), stream id (32 bits).
    const muxado = Framing.headerLength({
      headerSize: 8,
      bodyLength: (h) =>
        h[3]! >> 4 > 7
          ? new Framing.FramingError({ reason: "InvalidHeader", detail: `unknown frame type ${h[3]! >> 4}` })
          : (h[0]! << 16) | (h[1]! << 8) | h[2]!
    })

    it("lets the header function reject a header", () => {
      const data = bytes(0, 0, 2, 0x00, 0, 0, 0, 1, 0xaa, 0xbb)
      assertFrames(decodeAll(muxado, [data]), [data])
      const bad = muxado.decoder().push(bytes(0, 0, 0, 0xf0, 0, 0, 0, 1))
      assert.isTrue(Either.isLeft(bad) && bad.left.reason === "InvalidHeader")
    })
  })

  describe("schema", () => {
    const FramesFromBytes = Framing.schema(Framing.lengthPrefixed({ prefixSize: 1 }))

    it("decodes and encodes with the same codec", () => {
      const frames = Schema.decodeSync(FramesFromBytes)(bytes(2, 0xaa, 0xbb, 0, 1, 0xcc))
      assertFrames(frames, [bytes(0xaa, 0xbb), bytes(), bytes(0xcc)])
      assert.strictEqual(hex(Schema.encodeSync(FramesFromBytes)(frames)), "02aabb0001cc")
    })

    it("fails on truncated, malformed and unencodable input", () => {
      const truncated = Schema.decodeEither(FramesFromBytes)(bytes(3, 1))
      assert.isTrue(Either.isLeft(truncated))
      assert.include(Either.isLeft(truncated) ? truncated.left.message : "", "Truncated")
      const tooLarge = Schema.encodeEither(FramesFromBytes)([new Uint8Array(300)])
      assert.isTrue(Either.isLeft(tooLarge))
      assert.include(Either.isLeft(tooLarge) ? tooLarge.left.message : "", "FrameTooLarge")
    })

    it.prop("round-trips any frames", [FastCheck.array(FastCheck.uint8Array({ maxLength: 255 }), { maxLength: 10 })], ([frames]) => {
      const wire = Schema.encodeSync(FramesFromBytes)(frames)
      assertFrames(Schema.decodeSync(FramesFromBytes)(wire), frames)
    })
  })

  describe("streams", () => {
    it.effect("decode and encode round-trip through a Stream", () =>
      Effect.gen(function*() {
        const codec = Framing.delimiter("\r\n")
        const frames = ["a", "", "bc", "def"].map(utf8)
        const wire = yield* Stream.fromIterable(frames).pipe(Framing.encode(codec), Stream.runCollect)
        const rechunked = cut(Transport.concat(Chunk.toReadonlyArray(wire)), [1, 2, 3, 5, 8])
        const decoded = yield* Stream.fromIterable(rechunked).pipe(Framing.decode(codec), Stream.runCollect)
        assertFrames(Chunk.toReadonlyArray(decoded), frames)
      }))

    it.effect("a stream that ends inside a frame fails with Truncated after the complete frames", () =>
      Effect.gen(function*() {
        const seen: Array<string> = []
        const error = yield* Stream.make(utf8("one\ntw")).pipe(
          Framing.decode(Framing.lines()),
          Stream.runForEach((frame) => Effect.sync(() => seen.push(text(frame)))),
          Effect.flip
        )
        assert.deepStrictEqual(seen, ["one"])
        assert.strictEqual(error._tag, "FramingError")
        assert.strictEqual(error._tag === "FramingError" && error.reason, "Truncated")
      }))

    it.effect("upstream errors pass through", () =>
      Effect.gen(function*() {
        const error = yield* Stream.fail("boom" as const).pipe(Framing.decode(Framing.lines()), Stream.runDrain, Effect.flip)
        assert.strictEqual(error, "boom")
      }))
  })
})
