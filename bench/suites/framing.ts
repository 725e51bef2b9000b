/**
 * Frame decoding throughput (frames per second, higher is better) against the decoders of libp2p, in one run.
 *
 * - length-prefixed rows: 4-byte big-endian prefixes, decoded by our `Framing.lengthPrefixed` decoder and by
 *   `it-length-prefixed` (given the same fixed 4-byte length decoder instead of its default varint), on the
 *   same bytes cut into chunks of two sizes: 64 KiB chunks (most frames inside one chunk) and 100-byte chunks
 *   (every frame reassembled from pieces).
 * - header + length rows: yamux frames (12-byte header, the body length in bytes 8..11 of data frames),
 *   decoded by our `Framing.headerLength` and by `@chainsafe/libp2p-yamux`'s own `Decoder`; both sides read
 *   the header fields of each frame.
 * - lines row: newline-delimited records through an Effect `Stream`: `Framing.decode(Framing.lines())` against
 *   `Stream.decodeText` + `Stream.splitLines` (which yields strings, we yield bytes).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Stream from "effect/Stream"
import * as Lp from "it-length-prefixed"
// Not in the package's exports map: the decoder its muxer runs on every connection.
import { Decoder as YamuxDecoder } from "../../node_modules/@chainsafe/libp2p-yamux/dist/src/decode.js"
import * as Framing from "../../src/transport/Framing.js"
import { bestOf, type Row, type Suite } from "../harness.js"

const RUNS = 5

const cut = (data: Uint8Array, size: number): Array<Uint8Array> => {
  const out: Array<Uint8Array> = []
  for (let i = 0; i < data.length; i += size) out.push(data.slice(i, i + size))
  return out
}

const join = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

const framesPerSecond = async (frames: number, run: () => number | Promise<number>) =>
  bestOf(RUNS, async () => {
    const start = process.hrtime.bigint()
    const counted = await run()
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    if (counted !== frames) throw new Error(`decoded ${counted} frames, expected ${frames}`)
    return frames / seconds
  })

const lengthPrefixedRows = async (): Promise<Array<Row>> => {
  const count = 200_000
  const codec = Framing.lengthPrefixed()
  const wire = join(Array.from({ length: count }, (_, i) => Either.getOrThrow(codec.encode(new Uint8Array(32 + (i % 64))))))
  const u32: Lp.LengthDecoderFunction = Object.assign(
    (data: Parameters<Lp.LengthDecoderFunction>[0]) => {
      if (data.byteLength < 4) throw new RangeError("short length")
      return data.getUint32(0)
    },
    { bytes: 4 }
  )
  const rows: Array<Row> = []
  for (const [label, size] of [["64 KiB chunks", 65536], ["100-byte chunks", 100]] as const) {
    const chunks = cut(wire, size)
    const ours = await framesPerSecond(count, () => {
      const decoder = codec.decoder()
      let n = 0
      for (const chunk of chunks) {
        const frames = Either.getOrThrow(decoder.push(chunk))
        for (const frame of frames) n += frame.length > 0 ? 1 : 0
      }
      return n
    })
    const peer = await framesPerSecond(count, () => {
      let n = 0
      for (const frame of Lp.decode(chunks, { lengthDecoder: u32 })) n += frame.byteLength > 0 ? 1 : 0
      return n
    })
    rows.push({
      metric: `length-prefixed decode, 32-95 byte frames, ${label}`,
      unit: "frames/s",
      better: "higher",
      ours,
      peers: { "it-length-prefixed 11": peer }
    })
  }
  return rows
}

const yamuxRows = async (): Promise<Array<Row>> => {
  const count = 200_000
  const frames = Array.from({ length: count }, (_, i) => {
    // Every 8th frame is a window update (no body), the rest data frames of 16..271 bytes.
    const window = i % 8 === 7
    const length = window ? 0 : 16 + (i % 256)
    const frame = new Uint8Array(12 + length)
    const view = new DataView(frame.buffer)
    view.setUint8(0, 0)
    view.setUint8(1, window ? 1 : 0)
    view.setUint16(2, 0)
    view.setUint32(4, 1 + (i % 100))
    view.setUint32(8, window ? 262144 : length)
    return frame
  })
  const wire = join(frames)
  const framer = Framing.headerLength({
    headerSize: 12,
    bodyLength: (h) => (h[1] === 0 ? ((h[8]! << 24) >>> 0) + (h[9]! << 16) + (h[10]! << 8) + h[11]! : 0)
  })
  const rows: Array<Row> = []
  for (const [label, size] of [["64 KiB chunks", 65536], ["100-byte chunks", 100]] as const) {
    const chunks = cut(wire, size)
    const ours = await framesPerSecond(count, () => {
      const decoder = framer.decoder()
      let n = 0
      let streams = 0
      for (const chunk of chunks) {
        for (const frame of Either.getOrThrow(decoder.push(chunk))) {
          // Read the header fields, as the muxer does.
          const streamId = frame[4]! * 0x1000000 + (frame[5]! << 16) + (frame[6]! << 8) + frame[7]!
          streams += streamId + ((frame[2]! << 8) | frame[3]!) + frame[1]!
          n++
        }
      }
      return streams > 0 ? n : 0
    })
    const peer = await framesPerSecond(count, () => {
      const decoder = new YamuxDecoder()
      let n = 0
      let streams = 0
      for (const chunk of chunks) {
        for (const frame of decoder.emitFrames(chunk)) {
          streams += frame.header.streamID + frame.header.flag + frame.header.type
          n++
        }
      }
      return streams > 0 ? n : 0
    })
    rows.push({
      metric: `yamux header+length decode, ${label}`,
      unit: "frames/s",
      better: "higher",
      ours,
      peers: { "@chainsafe/libp2p-yamux 8 Decoder": peer }
    })
  }
  return rows
}

const linesRows = async (): Promise<Array<Row>> => {
  const count = 200_000
  const text = Array.from({ length: count }, (_, i) => `{"id":${i},"event":"tick","payload":"${"x".repeat(i % 50)}"}\n`).join("")
  const chunks = cut(new TextEncoder().encode(text), 65536)
  const ours = await framesPerSecond(count, () =>
    Effect.runPromise(Stream.fromIterable(chunks).pipe(Framing.decode(Framing.lines()), Stream.runCount)))
  const peer = await framesPerSecond(count, () =>
    Effect.runPromise(Stream.fromIterable(chunks).pipe(Stream.decodeText(), Stream.splitLines, Stream.runCount)))
  return [{
    metric: "newline-delimited records through a Stream, 64 KiB chunks",
    unit: "frames/s",
    better: "higher",
    ours,
    peers: { "effect Stream.splitLines": peer }
  }]
}

const suite: Suite = {
  name: "framing",
  run: async () => [...(await lengthPrefixedRows()), ...(await yamuxRows()), ...(await linesRows())]
}

export default suite
