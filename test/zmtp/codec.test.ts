import { assert, describe, it } from "@effect/vitest"
import * as Arbitrary from "effect/Arbitrary"
import * as Either from "effect/Either"
import * as FastCheck from "effect/FastCheck"
import * as Schema from "effect/Schema"
import * as Command from "../../src/zmtp/Command.js"
import * as Frame from "../../src/zmtp/Frame.js"
import * as Greeting from "../../src/zmtp/Greeting.js"
import * as Metadata from "../../src/zmtp/Metadata.js"
import * as Z85 from "../../src/zmtp/Z85.js"

const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex").replace(/(..)/g, "$1 ").trim()
const fromHex = (s: string) => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"))
const ascii = (s: string) => new TextEncoder().encode(s)

const decodeAll = (bytes: Uint8Array, chunkSize: number, max = Number.POSITIVE_INFINITY) => {
  const decoder = new Frame.Decoder(max)
  const frames: Array<Frame.Frame> = []
  for (let i = 0; i < bytes.length; i += chunkSize) {
    const error = decoder.decode(bytes.subarray(i, i + chunkSize), frames)
    if (error !== undefined) return error
  }
  return frames
}

describe("Greeting", () => {
  it("encodes a NULL 3.1 greeting byte for byte", () => {
    const bytes = Greeting.encode(Greeting.make("NULL"))
    assert.strictEqual(
      hex(bytes),
      hex(fromHex("ff 00 00 00 00 00 00 00 00 7f 03 01 4e 55 4c 4c" + "00".repeat(16) + "00" + "00".repeat(31)))
    )
  })

  it("decodes libzmq's greeting (padding 00..01, as-server 0)", () => {
    const libzmq = fromHex("ff 00 00 00 00 00 00 00 01 7f 03 01 4e 55 4c 4c" + "00".repeat(48))
    assert.deepStrictEqual(Greeting.decode(libzmq), Either.right({ major: 3, minor: 1, mechanism: "NULL", asServer: false }))
  })

  it("accepts 3.0, refuses 2.x and bad signatures", () => {
    const base = Greeting.encode(Greeting.make("CURVE", true))
    const v30 = base.slice()
    v30[11] = 0
    assert.strictEqual(Either.getOrThrow(Greeting.decode(v30)).minor, 0)
    const v2 = base.slice()
    v2[10] = 2
    assert.strictEqual(Either.flip(Greeting.decode(v2)).pipe(Either.getOrThrow).reason, "UnsupportedVersion")
    const bad = base.slice()
    bad[0] = 0x00
    assert.strictEqual(Either.flip(Greeting.decode(bad)).pipe(Either.getOrThrow).reason, "BadGreeting")
    const noBit = base.slice()
    noBit[9] = 0x7e
    assert.strictEqual(Either.flip(Greeting.decode(noBit)).pipe(Either.getOrThrow).reason, "BadGreeting")
  })

  it.prop("Schema round trip", [Arbitrary.make(Greeting.GreetingFromSelf)], ([greeting]) => {
    const bytes = Schema.encodeSync(Greeting.GreetingFromBytes)(greeting)
    assert.strictEqual(bytes.length, 64)
    assert.deepStrictEqual(Schema.decodeSync(Greeting.GreetingFromBytes)(bytes), greeting)
  })
})

describe("Frame", () => {
  it("golden bytes: short, MORE, LONG and command frames", () => {
    assert.strictEqual(hex(Frame.encode({ more: false, command: false, body: ascii("hello") })), "00 05 68 65 6c 6c 6f")
    assert.strictEqual(hex(Frame.encode({ more: true, command: false, body: new Uint8Array(0) })), "01 00")
    const long = Frame.encode({ more: false, command: false, body: new Uint8Array(256) })
    assert.strictEqual(hex(long.subarray(0, 9)), "02 00 00 00 00 00 00 01 00")
    assert.strictEqual(long.length, 265)
    assert.strictEqual(hex(Frame.encodeCommand(Command.encodeRaw("WELCOME"))), "04 08 07 57 45 4c 43 4f 4d 45")
  })

  it("decodes a LONG size for a small body, as libzmq may send", () => {
    const frames = decodeAll(fromHex("03 00 00 00 00 00 00 00 02 61 62 00 01 63"), 100)
    assert.isArray(frames)
    assert.deepStrictEqual((frames as Array<Frame.Frame>).map((f) => [f.more, hex(f.body)]), [[true, "61 62"], [false, "63"]])
  })

  it("enforces the maximum message size across the frames of a message, before allocating", () => {
    const message = Frame.encodeMessage([new Uint8Array(60), new Uint8Array(60)])
    const error = decodeAll(message, 7, 100)
    assert.isFalse(Array.isArray(error))
    assert.strictEqual((error as { reason: string }).reason, "MessageTooLarge")
    // A 2^62-byte frame header fails at once.
    const huge = decodeAll(fromHex("02 40 00 00 00 00 00 00 00"), 9)
    assert.strictEqual((huge as { reason: string }).reason, "MessageTooLarge")
    // Two messages of 60 + 40 each are fine: the count restarts after the last frame.
    const two = Frame.encodeMessage([new Uint8Array(60), new Uint8Array(40)])
    assert.isArray(decodeAll(new Uint8Array([...two, ...two]), 13, 100))
  })

  it("refuses a command with MORE and a command inside a multipart message", () => {
    assert.strictEqual((decodeAll(fromHex("05 01 00"), 3) as { reason: string }).reason, "MalformedFrame")
    assert.strictEqual((decodeAll(fromHex("01 01 61 04 01 00"), 6) as { reason: string }).reason, "MalformedFrame")
  })

  it.prop(
    "messages survive any chunking",
    [FastCheck.array(FastCheck.array(FastCheck.uint8Array({ maxLength: 600 }), { minLength: 1, maxLength: 5 }), { minLength: 1, maxLength: 5 }), FastCheck.integer({ min: 1, max: 700 })],
    ([messages, chunkSize]) => {
      const bytes = new Uint8Array(messages.reduce((n, m) => n + Frame.messageSize(m), 0))
      let offset = 0
      for (const message of messages) offset = Frame.encodeMessageInto(message, bytes, offset)
      const frames = decodeAll(bytes, chunkSize) as Array<Frame.Frame>
      const decoded: Array<Array<string>> = []
      let parts: Array<string> = []
      for (const frame of frames) {
        parts.push(hex(frame.body))
        if (!frame.more) {
          decoded.push(parts)
          parts = []
        }
      }
      assert.deepStrictEqual(decoded, messages.map((m) => m.map(hex)))
    }
  )

  it.prop("Schema round trip", [Arbitrary.make(Frame.FrameFromSelf)], ([frame]) => {
    const bytes = Schema.encodeSync(Frame.FrameFromBytes)(frame)
    assert.deepStrictEqual(Schema.decodeSync(Frame.FrameFromBytes)(bytes), frame)
  })

  it.prop("fuzz: random bytes never throw and either decode or fail with a typed error", [FastCheck.uint8Array({ maxLength: 512 }), FastCheck.integer({ min: 1, max: 64 })], ([bytes, chunk]) => {
    const result = decodeAll(bytes, chunk, 1 << 16)
    if (!Array.isArray(result)) assert.include(["MalformedFrame", "MessageTooLarge"], result.reason)
  })
})

describe("Command", () => {
  it("golden bytes: libzmq ROUTER READY (41 bytes) and DEALER READY with Identity", () => {
    const router = Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "ROUTER"), Metadata.property("Identity", "")])))
    assert.strictEqual(
      hex(router),
      "04 29 05 52 45 41 44 59 0b 53 6f 63 6b 65 74 2d 54 79 70 65 00 00 00 06 52 4f 55 54 45 52 08 49 64 65 6e 74 69 74 79 00 00 00 00"
    )
    const dealer = Frame.encodeCommand(Command.encode(Command.ready([Metadata.property("Socket-Type", "DEALER"), Metadata.property("Identity", "worker-1")])))
    assert.strictEqual(
      hex(dealer),
      "04 31 05 52 45 41 44 59 0b 53 6f 63 6b 65 74 2d 54 79 70 65 00 00 00 06 44 45 41 4c 45 52 08 49 64 65 6e 74 69 74 79 00 00 00 08 77 6f 72 6b 65 72 2d 31"
    )
  })

  it("golden bytes: ERROR, PING/PONG with TTL and context, SUBSCRIBE/CANCEL", () => {
    assert.strictEqual(hex(Frame.encodeCommand(Command.encode(Command.error("400")))), "04 0a 05 45 52 52 4f 52 03 34 30 30")
    assert.strictEqual(hex(Frame.encodeCommand(Command.encode(Command.ping(50, ascii("ctx123"))))), "04 0d 04 50 49 4e 47 00 32 63 74 78 31 32 33")
    assert.strictEqual(hex(Frame.encodeCommand(Command.encode(Command.pong(ascii("ctx123"))))), "04 0b 04 50 4f 4e 47 63 74 78 31 32 33")
    assert.strictEqual(hex(Frame.encodeCommand(Command.encode(Command.subscribe(ascii("foo"))))), "04 0d 09 53 55 42 53 43 52 49 42 45 66 6f 6f")
    assert.strictEqual(hex(Frame.encodeCommand(Command.encode(Command.cancel(ascii("foo"))))), "04 0a 06 43 41 4e 43 45 4c 66 6f 6f")
  })

  it("reads libzmq 4.3's malformed ERROR (5e \"RROR\") as ERROR", () => {
    // As a libzmq 4.3.5 PLAIN server with a ZAP handler sends it after refusing a password (captured on the wire).
    const body = fromHex("04 09 5e 52 52 4f 52 03 34 30 30").subarray(2)
    assert.deepStrictEqual(Command.decode(body), Either.right(Command.error("400")))
    // A real name-length byte of 0x5e with enough bytes behind it is still a name.
    const long = Command.encodeRaw("RROR" + "A".repeat(0x5e - 4))
    assert.isTrue(Either.isRight(Command.decodeRaw(long)) && Either.getOrThrow(Command.decodeRaw(long)).name.length === 0x5e)
  })

  it("decodes READY metadata, looking names up without case", () => {
    const body = fromHex("05 52 45 41 44 59 0b 73 6f 63 6b 65 74 2d 74 79 70 65 00 00 00 03 50 55 42")
    const command = Either.getOrThrow(Command.decode(body))
    assert.strictEqual(command._tag, "Ready")
    assert.strictEqual(Metadata.getString((command as Command.Ready).metadata, "Socket-Type"), "PUB")
  })

  it("refuses truncated metadata and bad names", () => {
    assert.isTrue(Either.isLeft(Command.decode(fromHex("05 52 45 41 44 59 0b 53 6f 63 6b 65 74 2d 54 79 70 65 00 00 00 09 52"))))
    assert.isTrue(Either.isLeft(Command.decode(fromHex("00"))))
    assert.isTrue(Either.isLeft(Command.decode(fromHex("05 52 45"))))
    assert.isTrue(Either.isLeft(Command.decode(fromHex("04 50 49 4e 47 00"))))
  })

  it.prop("Schema round trip", [Arbitrary.make(Command.CommandFromSelf)], ([command]) => {
    const bytes = Schema.encodeSync(Command.CommandFromBytes)(command)
    assert.deepStrictEqual(Schema.decodeSync(Command.CommandFromBytes)(bytes), command)
  })

  it.prop("fuzz: random bodies decode or fail with a typed error", [FastCheck.uint8Array({ maxLength: 64 })], ([bytes]) => {
    const result = Command.decode(bytes)
    if (Either.isLeft(result)) assert.strictEqual(result.left.reason, "MalformedCommand")
  })
})

describe("Z85", () => {
  it("RFC 32 test vector and libzmq's documented keys", () => {
    assert.strictEqual(Either.getOrThrow(Z85.encode(fromHex("86 4f d2 6f b5 59 f7 5b"))), "HelloWorld")
    assert.strictEqual(
      hex(Either.getOrThrow(Z85.decode("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"))),
      hex(fromHex("54FCBA24E93249969316FB617C872BB0C1D1FF14800427C594CBFACF1BC2D652"))
    )
    assert.isTrue(Either.isLeft(Z85.decode("Hello")) === false)
    assert.isTrue(Either.isLeft(Z85.decode("Hell")))
    assert.isTrue(Either.isLeft(Z85.decode("Hell~")))
    assert.isTrue(Either.isLeft(Z85.encode(new Uint8Array(3))))
  })

  it.prop("round trip", [FastCheck.uint8Array({ maxLength: 64 }).filter((b) => b.length % 4 === 0)], ([bytes]) => {
    assert.deepStrictEqual(Either.getOrThrow(Z85.decode(Either.getOrThrow(Z85.encode(bytes)))), bytes)
  })
})
