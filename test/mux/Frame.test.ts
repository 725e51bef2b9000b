import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Frame from "../../src/mux/Frame.js"
import { MuxError } from "../../src/mux/MuxError.js"

const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)))
const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")
const ascii = (s: string) => new TextEncoder().encode(s)

const decodeOk = (bytes: Uint8Array): Frame.Frame => {
  const result = Frame.decode(bytes)
  if (Either.isLeft(result)) assert.fail(`decode failed: ${result.left.message}`)
  return result.right
}
const decodeErr = (bytes: Uint8Array): MuxError => {
  const result = Frame.decode(bytes)
  if (Either.isRight(result)) assert.fail(`decode succeeded: ${JSON.stringify(result.right)}`)
  return result.left
}
const encodeOk = (frame: Frame.Frame): string => {
  const result = Frame.encode(frame)
  if (Either.isLeft(result)) assert.fail(`encode failed: ${result.left.message}`)
  return toHex(result.right)
}

describe("Frame header (spec §2.3)", () => {
  const ok: Array<[number, number, number, number, string]> = [
    [0, 4, 0x2843, 0, "00 00 04 00 00 00 28 43"],
    [7, 0x37bd, 0, 2, "00 37 bd 72 00 00 00 00"],
    [0, 0, 0, 0, "00 00 00 00 00 00 00 00"],
    [0xf, 0xffffff, 0x7fffffff, 0xf, "ff ff ff ff 7f ff ff ff"],
    [0xc, 0x0f1daa, 0x4f224719, 0xf, "0f 1d aa cf 4f 22 47 19"]
  ]
  for (const [type, length, sid, flags, bytes] of ok) {
    it(`encodes ${bytes}`, () => {
      const header = Frame.encodeHeader(length, type, flags, sid)
      assert.isTrue(Either.isRight(header))
      if (Either.isRight(header)) assert.strictEqual(toHex(header.right), bytes)
    })
  }
  const bad: Array<[number, number, number, number, string]> = [
    [0xc, 0x0f1daa, 0x80000000, 0xf, "sid too large"],
    [0, 0, 0xffffffff, 0, "sid too large"],
    [0, 0x1000000, 1, 0, "length too large"],
    [0, -1, 1, 0, "negative length"]
  ]
  for (const [type, length, sid, flags, why] of bad) {
    it(`refuses to encode: ${why} (${length}, ${sid})`, () => {
      assert.isTrue(Either.isLeft(Frame.encodeHeader(length, type, flags, sid)))
    })
  }
  it("decodes the unknown-type header vectors as Unknown frames", () => {
    const frame = decodeOk(hex("00 00 00 f5 7f ff ff ff"))
    assert.deepStrictEqual(frame, { _tag: "Unknown", type: 0xf, flags: 5, streamId: 0x7fffffff, length: 0 })
  })
})

describe("Frame codec vectors (spec §3.2)", () => {
  it("DATA", () => {
    const bytes = hex("00 00 05 10 49 a1 bb 00 00 01 02 03 04")
    const frame = decodeOk(bytes)
    assert.deepStrictEqual(frame, {
      _tag: "Data",
      streamId: 0x49a1bb00,
      syn: false,
      fin: false,
      payload: hex("00 01 02 03 04")
    })
    assert.strictEqual(encodeOk(frame), toHex(bytes))
  })
  it("DATA FIN on sid 0x7FFFFFFF", () => {
    const bytes = hex("00 00 10 11 7f ff ff ff ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00")
    const frame = decodeOk(bytes)
    assert.strictEqual(frame._tag, "Data")
    if (frame._tag === "Data") {
      assert.isTrue(frame.fin)
      assert.isFalse(frame.syn)
      assert.strictEqual(frame.streamId, 0x7fffffff)
      assert.strictEqual(frame.payload.length, 16)
    }
    assert.strictEqual(encodeOk(frame), toHex(bytes))
  })
  it("empty DATA on sid 1", () => {
    const bytes = hex("00 00 00 10 00 00 00 01")
    assert.strictEqual(encodeOk(decodeOk(bytes)), toHex(bytes))
  })
  it("refuses to encode DATA of 0x1000000 bytes", () => {
    const result = Frame.encode({ _tag: "Data", streamId: 1, syn: false, fin: false, payload: new Uint8Array(0x1000000) })
    assert.isTrue(Either.isLeft(result))
  })
  it("RST", () => {
    for (const [code, bytes] of [[5, "00 00 04 00 49 a1 bb 00 00 00 00 05"], [0, "00 00 04 00 49 a1 bb 00 00 00 00 00"]] as const) {
      const frame = decodeOk(hex(bytes))
      assert.deepStrictEqual(frame, { _tag: "Rst", streamId: 0x49a1bb00, code })
      assert.strictEqual(encodeOk(frame), bytes)
    }
  })
  it("RST errors: length 3 → FrameSizeError, sid 0 → ProtocolError, truncated → short read", () => {
    const size = decodeErr(hex("00 00 03 00 49 a1 bb 00 00 00 00"))
    assert.strictEqual(size.reason, "FrameSizeError")
    assert.strictEqual(size.code, 8)
    assert.strictEqual(size.detail, "illegal RST frame length: 0x3")
    const sid0 = decodeErr(hex("00 00 04 00 00 00 00 00 00 00 00 01"))
    assert.strictEqual(sid0.reason, "ProtocolError")
    assert.strictEqual(sid0.code, 1)
    const short = decodeErr(hex("00 00 04 00 49 a1 bb 00 00 00 01"))
    assert.match(short.detail ?? "", /short read/)
  })
  it("WNDINC", () => {
    for (const [increment, bytes] of [[0x12c498, "00 00 04 20 00 00 00 01 00 12 c4 98"], [0x7fffffff, "00 00 04 20 00 00 00 01 7f ff ff ff"]] as const) {
      const frame = decodeOk(hex(bytes))
      assert.deepStrictEqual(frame, { _tag: "WndInc", streamId: 1, increment })
      assert.strictEqual(encodeOk(frame), bytes)
    }
  })
  it("WNDINC errors: increment 0 (also 0x80000000 once masked), length 5, truncated", () => {
    assert.strictEqual(decodeErr(hex("00 00 04 20 04 b1 bd 09 00 00 00 00")).reason, "ProtocolError")
    assert.strictEqual(decodeErr(hex("00 00 04 20 04 b1 bd 09 80 00 00 00")).reason, "ProtocolError")
    assert.strictEqual(decodeErr(hex("00 00 05 20 04 b1 bd 09 00 00 00 01 00")).reason, "FrameSizeError")
    assert.match(decodeErr(hex("00 00 04 20 04 b1 bd 09 00 00 01")).detail ?? "", /short read/)
  })
  it("GOAWAY: Length = 8 + len(debug), as Go writes it", () => {
    const frame = Frame.goAway(1, 0, "bye")
    assert.strictEqual(encodeOk(frame), "00 00 0b 30 00 00 00 00 00 00 00 01 00 00 00 00 62 79 65")
    const decoded = decodeOk(hex("00 00 0b 30 00 00 00 00 00 00 00 01 00 00 00 00 62 79 65"))
    assert.strictEqual(decoded._tag, "GoAway")
    if (decoded._tag === "GoAway") {
      assert.strictEqual(decoded.lastStreamId, 1)
      assert.strictEqual(decoded.code, 0)
      assert.strictEqual(Frame.debugText(decoded), "bye")
    }
  })
  it("GOAWAY errors: length < 8, stream id ≠ 0", () => {
    assert.strictEqual(decodeErr(hex("00 00 07 30 00 00 00 00 00 00 00 01 00 00 00")).reason, "FrameSizeError")
    assert.strictEqual(decodeErr(hex("00 00 08 30 00 00 00 03 00 00 00 01 00 00 00 00")).reason, "ProtocolError")
  })
  it("DATA on stream 0 and a set reserved bit are protocol errors", () => {
    assert.strictEqual(decodeErr(hex("00 00 00 10 00 00 00 00")).reason, "ProtocolError")
    assert.strictEqual(decodeErr(hex("00 00 00 12 80 00 00 03")).reason, "ProtocolError")
  })
  it("unknown frame types are skipped with their payload", () => {
    const decoder = new Frame.Decoder()
    decoder.push(hex("00 00 03 70 00 00 00 05 aa bb cc 00 00 00 10 00 00 00 03"))
    assert.deepStrictEqual(decoder.next(), { _tag: "Unknown", type: 7, flags: 0, streamId: 5, length: 3 })
    const data = decoder.next()
    assert.strictEqual((data as Frame.Frame)._tag, "Data")
    assert.strictEqual(decoder.next(), undefined)
  })
})

describe("Golden traces (spec §9)", () => {
  it("§9.1 echo, half-close, close: every frame decodes and re-encodes to the same bytes", () => {
    const trace = [
      "00 00 0c 12 00 00 00 03 " + toHex(ascii("hello muxado")),
      "00 00 00 11 00 00 00 03",
      "00 00 04 20 00 00 00 03 00 00 00 0c",
      "00 00 0c 10 00 00 00 03 " + toHex(ascii("hello muxado")),
      "00 00 00 11 00 00 00 03",
      "00 00 04 20 00 00 00 03 00 00 00 0c",
      "00 00 10 30 00 00 00 00 00 00 00 00 00 00 00 00 " + toHex(ascii("no error")),
      "00 00 21 30 00 00 00 00 00 00 00 03 00 00 00 0f " + toHex(ascii("read EOF from remote peer"))
    ]
    const frames = trace.map((t) => decodeOk(hex(t)))
    assert.deepStrictEqual(frames.map((f) => f._tag), ["Data", "Data", "WndInc", "Data", "Data", "WndInc", "GoAway", "GoAway"])
    const last = frames[7]!
    if (last._tag === "GoAway") {
      assert.strictEqual(last.code, 15)
      assert.strictEqual(last.lastStreamId, 3)
      assert.strictEqual(Frame.debugText(last), "read EOF from remote peer")
    }
    frames.forEach((frame, i) => assert.strictEqual(encodeOk(frame), trace[i]))
  })
  it("§9.2 typed stream SYN and §9.3 heartbeat frames", () => {
    for (const t of ["00 00 04 12 00 00 00 03 01 02 03 04", "00 00 01 10 00 00 00 03 78", "00 00 04 12 00 00 00 03 ff ff ff ff", "00 00 04 10 00 00 00 03 00 60 92 47", "00 00 04 20 00 00 00 03 00 00 00 04"]) {
      assert.strictEqual(encodeOk(decodeOk(hex(t))), t)
    }
  })
  it("§9.4 GOAWAY last=1 \"bye\" and RST 5", () => {
    assert.strictEqual(encodeOk(Frame.goAway(1, 0, "bye")), "00 00 0b 30 00 00 00 00 00 00 00 01 00 00 00 00 62 79 65")
    assert.strictEqual(encodeOk({ _tag: "Rst", streamId: 3, code: 5 }), "00 00 04 00 00 00 00 03 00 00 00 05")
  })
})

describe("FrameFromBytes schema", () => {
  const frames = Schema.Union(
    Frame.Rst,
    Frame.WndInc,
    Frame.Unknown,
    Schema.TaggedStruct("Data", {
      streamId: Frame.Data.fields.streamId,
      syn: Schema.Boolean,
      fin: Schema.Boolean,
      payload: Schema.Uint8ArrayFromSelf
    }),
    Schema.TaggedStruct("GoAway", {
      lastStreamId: Frame.GoAway.fields.lastStreamId,
      code: Frame.GoAway.fields.code,
      debug: Schema.Uint8ArrayFromSelf
    })
  )

  it.prop("encode then decode is the identity", [frames], ([frame]) => {
    const normalized: Frame.Frame = frame._tag === "Unknown" ? { ...frame, length: Math.min(frame.length, 4096) } : frame
    const bytes = Schema.encodeSync(Frame.FrameFromBytes)(normalized)
    const back = Schema.decodeSync(Frame.FrameFromBytes)(bytes)
    assert.deepStrictEqual(back, normalized)
  }, { fastCheck: { numRuns: 300 } })

  it.prop("decoding byte by byte gives the same frames as decoding at once", [FastCheck.array(Arbitrary.make(frames), { maxLength: 8 }), FastCheck.integer({ min: 1, max: 23 })], ([list, step]) => {
    const bytes = list.map((f) => Frame.unsafeEncode(f._tag === "Unknown" ? { ...f, length: f.length % 64 } : f))
    const all = new Uint8Array(bytes.reduce((n, b) => n + b.length, 0))
    let o = 0
    for (const b of bytes) {
      all.set(b, o)
      o += b.length
    }
    const decoder = new Frame.Decoder()
    const out: Array<Frame.Frame> = []
    for (let i = 0; i < all.length; i += step) {
      decoder.push(all.subarray(i, i + step))
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        if (f instanceof MuxError) assert.fail(f.message)
        out.push(f)
      }
    }
    assert.strictEqual(out.length, list.length)
    assert.strictEqual(decoder.buffered, 0)
    out.forEach((f, i) => assert.strictEqual(toHex(Frame.unsafeEncode(f)), toHex(bytes[i]!)))
  }, { fastCheck: { numRuns: 200 } })

  it("rejects bytes that are not one frame", () => {
    assert.isTrue(Either.isLeft(Schema.decodeEither(Frame.FrameFromBytes)(hex("00 00 00 10 00 00 00 01 00"))))
    assert.isTrue(Either.isLeft(Schema.decodeEither(Frame.FrameFromBytes)(hex("00 00 04 00"))))
  })
})

describe("Decoder streaming mode", () => {
  it.prop("DATA arrives in pieces as bytes do: SYN on the first, FIN on the last, same bytes in order", [FastCheck.uint8Array({ minLength: 1, maxLength: 5000 }), FastCheck.integer({ min: 1, max: 700 }), FastCheck.boolean(), FastCheck.boolean()], ([payload, step, syn, fin]) => {
    const bytes = Frame.unsafeEncode({ _tag: "Data", streamId: 5, syn, fin, payload })
    const decoder = new Frame.Decoder(true)
    const pieces: Array<Frame.Data> = []
    for (let i = 0; i < bytes.length; i += step) {
      decoder.push(bytes.subarray(i, i + step))
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        if (f instanceof MuxError || f._tag !== "Data") return assert.fail(String(f))
        pieces.push(f)
      }
    }
    assert.isAtLeast(pieces.length, 1)
    assert.strictEqual(toHex(Buffer.concat(pieces.map((p) => p.payload))), toHex(payload))
    pieces.forEach((p, i) => {
      assert.strictEqual(p.syn, syn && i === 0)
      assert.strictEqual(p.fin, fin && i === pieces.length - 1)
      assert.isAbove(p.payload.length, 0)
    })
  }, { fastCheck: { numRuns: 200 } })
})

describe("Decoder fuzzing", () => {
  it.prop("random bytes never throw, never hang, and never buffer more than was pushed", [FastCheck.uint8Array({ maxLength: 2048 }), FastCheck.integer({ min: 1, max: 64 })], ([bytes, step]) => {
    const decoder = new Frame.Decoder()
    let frames = 0
    for (let i = 0; i < bytes.length; i += step) {
      decoder.push(bytes.subarray(i, i + step))
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        if (f instanceof MuxError) {
          assert.oneOf(f.reason, ["ProtocolError", "FrameSizeError"])
          assert.strictEqual(decoder.next(), f) // stays failed
          return
        }
        frames++
        assert.isAtMost(frames, bytes.length / 8 + 1)
      }
      assert.isAtMost(decoder.buffered, bytes.length)
    }
  }, { fastCheck: { numRuns: 500 } })

  it.prop("mutated valid traces decode or fail with a typed error", [FastCheck.array(FastCheck.tuple(FastCheck.nat(200), FastCheck.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })], ([mutations]) => {
    const trace = hex(
      "00 00 0c 12 00 00 00 03 68 65 6c 6c 6f 20 6d 75 78 61 64 6f 00 00 00 11 00 00 00 03 00 00 04 20 00 00 00 03 00 00 00 0c 00 00 10 30 00 00 00 00 00 00 00 00 00 00 00 00 6e 6f 20 65 72 72 6f 72"
    )
    for (const [at, value] of mutations) trace[at % trace.length] = value
    const decoder = new Frame.Decoder()
    decoder.push(trace)
    for (let i = 0; i < 64; i++) {
      const f = decoder.next()
      if (f === undefined || f instanceof MuxError) return
    }
    assert.fail("decoder produced more frames than bytes allow")
  }, { fastCheck: { numRuns: 500 } })

  it("a DATA frame the filter rejects is skipped without being buffered", () => {
    const decoder = new Frame.Decoder()
    const header = new Uint8Array(8)
    Frame.writeHeader(header, 0, 0xffffff, 1, 0, 3)
    decoder.push(header)
    const reject = { acceptData: () => false }
    assert.strictEqual(decoder.next(reject), undefined)
    let fed = 0
    while (fed < 0xffffff) {
      const n = Math.min(65536, 0xffffff - fed)
      decoder.push(new Uint8Array(n))
      fed += n
      const f = decoder.next(reject)
      assert.isAtMost(decoder.buffered, 0)
      if (f !== undefined) {
        assert.strictEqual(fed, 0xffffff)
        assert.strictEqual((f as Frame.Data).payload.length, 0)
        assert.strictEqual(decoder.skipped, 0xffffff)
      }
    }
  })
})
