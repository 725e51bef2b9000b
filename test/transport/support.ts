/**
 * Helpers shared by the transport suites.
 */
import * as Effect from "effect/Effect"
import * as Transport from "../../src/transport/Transport.js"

export const bytes = (s: string) => new TextEncoder().encode(s)

/** Reads until `n` bytes (or Eof) arrived, as text. */
export const readText = (transport: Transport.Transport, n: number) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    let got = 0
    while (got < n) {
      const result = yield* transport.read
      if (Transport.isEof(result)) break
      parts.push(...result)
      got += result.reduce((k, c) => k + c.length, 0)
    }
    return new TextDecoder().decode(Transport.concat(parts))
  })

/** Echoes every chunk back until the peer half-closes, then half-closes too. */
export const echo = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    while (true) {
      const result = yield* transport.read
      if (Transport.isEof(result)) return yield* transport.shutdownWrite
      yield* transport.writeAll(result)
    }
  })
