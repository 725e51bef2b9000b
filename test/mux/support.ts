/**
 * A raw muxado peer over one end of a memory pair: sends hand-made frames and reads back decoded ones, so
 * session tests can assert the exact bytes our side puts on the wire.
 */
import * as Effect from "effect/Effect"
import * as Frame from "../../src/mux/Frame.js"
import { MuxError } from "../../src/mux/MuxError.js"
import type * as Transport from "../../src/transport/Transport.js"

export const hex = (s: string) => Uint8Array.from(s.trim().split(/\s+/).map((b) => parseInt(b, 16)))
export const toHex = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(" ")
export const ascii = (s: string) => new TextEncoder().encode(s)
export const text = (chunks: ReadonlyArray<Uint8Array> | Uint8Array) =>
  new TextDecoder().decode(chunks instanceof Uint8Array ? chunks : Buffer.concat(chunks.map((c) => Buffer.from(c))))

export interface RawPeer {
  readonly send: (...frames: ReadonlyArray<Frame.Frame | Uint8Array>) => Effect.Effect<void>
  /** The next frame our side sent, or `"eof"` once the transport ended. */
  readonly next: Effect.Effect<Frame.Frame | "eof">
  /** The next frame, re-encoded as hex (Go-trace style). */
  readonly nextHex: Effect.Effect<string>
  /** Frames until EOF. */
  readonly rest: Effect.Effect<ReadonlyArray<Frame.Frame>>
  readonly transport: Transport.Transport
}

export const rawPeer = (transport: Transport.Transport): RawPeer => {
  const decoder = new Frame.Decoder()
  let ended = false
  const next: Effect.Effect<Frame.Frame | "eof"> = Effect.suspend(() => {
    const frame = decoder.next()
    if (frame instanceof MuxError) return Effect.die(frame)
    if (frame !== undefined) return Effect.succeed(frame)
    if (ended) return Effect.succeed("eof" as const)
    return Effect.flatMap(Effect.either(transport.read), (result) => {
      if (result._tag === "Left" || typeof result.right === "symbol") ended = true
      else for (const chunk of result.right) decoder.push(chunk)
      return next
    })
  })
  const rest: Effect.Effect<ReadonlyArray<Frame.Frame>> = Effect.gen(function*() {
    const out: Array<Frame.Frame> = []
    for (;;) {
      const frame = yield* next
      if (frame === "eof") return out
      out.push(frame)
    }
  })
  return {
    transport,
    send: (...frames) =>
      Effect.orDie(transport.writeAll(frames.map((f) => (f instanceof Uint8Array ? f : Frame.unsafeEncode(f))))),
    next,
    nextHex: Effect.map(next, (f) => (f === "eof" ? "eof" : toHex(Frame.unsafeEncode(f)))),
    rest
  }
}

export const data = (streamId: number, payload: Uint8Array | string, flags: { syn?: boolean; fin?: boolean } = {}): Frame.Data => ({
  _tag: "Data",
  streamId,
  syn: flags.syn ?? false,
  fin: flags.fin ?? false,
  payload: typeof payload === "string" ? ascii(payload) : payload
})

export const sum = (bytes: Uint8Array, seed = 0): number => {
  let h = seed >>> 0
  for (let i = 0; i < bytes.length; i++) h = (Math.imul(h, 31) + bytes[i]!) >>> 0
  return h
}

export const pattern = (n: number, seed: number): Uint8Array => {
  const out = new Uint8Array(n)
  let x = seed | 1
  for (let i = 0; i < n; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}
