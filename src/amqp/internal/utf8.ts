/**
 * UTF-8 without `TextEncoder`/`TextDecoder` on the hot path: most AMQP strings (names, routing keys, MIME types)
 * are short ASCII, where a byte loop beats a native call.
 */

const encoder = new TextEncoder()

/** Bytes `s` takes as UTF-8, counting a lone surrogate as the 3 bytes of U+FFFD (what `TextEncoder` writes). */
export const byteLength = (s: string): number => {
  const n = s.length
  let bytes = n
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) bytes += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = s.charCodeAt(i + 1)
      if (d >= 0xdc00 && d <= 0xdfff) {
        // A pair is 2 UTF-16 units and 4 bytes.
        bytes += 2
        i++
      } else bytes += 2
    } else bytes += 2
  }
  return bytes
}

/** Writes `s` (whose UTF-8 length is `length`) at `offset`; returns the offset after it. */
export const write = (buf: Uint8Array, offset: number, s: string, length: number): number => {
  if (length === s.length) {
    for (let i = 0; i < length; i++) buf[offset + i] = s.charCodeAt(i)
  } else {
    encoder.encodeInto(s, buf.subarray(offset, offset + length))
  }
  return offset + length
}

/** Encodes a string to fresh bytes. */
export const encode = (s: string): Uint8Array => encoder.encode(s)

const units: Array<number> = []

const decoder = new TextDecoder("utf-8")

/** Decodes UTF-8, replacing invalid sequences with U+FFFD (for convenience views, never for the wire codec). */
export const decodeLossy = (bytes: Uint8Array): string => decoder.decode(bytes)

const fromCharCode = String.fromCharCode

/** ASCII `buf[start, end)` as a string: one native call, no intermediate strings for short names. */
const ascii = (b: Uint8Array, s: number, end: number): string => {
  switch (end - s) {
    case 0:
      return ""
    case 1:
      return fromCharCode(b[s]!)
    case 2:
      return fromCharCode(b[s]!, b[s + 1]!)
    case 3:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!)
    case 4:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!)
    case 5:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!)
    case 6:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!)
    case 7:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!)
    case 8:
      return fromCharCode(b[s]!, b[s + 1]!, b[s + 2]!, b[s + 3]!, b[s + 4]!, b[s + 5]!, b[s + 6]!, b[s + 7]!)
    default:
      return end - s <= 1024
        ? fromCharCode.apply(null, b.subarray(s, end) as unknown as Array<number>)
        : decoder.decode(b.subarray(s, end))
  }
}

// Names, routing keys, consumer tags and MIME types repeat from message to message: a small direct-mapped cache
// of recent short ASCII strings, checked against the bytes, saves allocating the same string again.
const SLOTS = 512
const recent: Array<string> = new Array(SLOTS).fill("")

/** Strictly decodes `buf[start, end)`; `undefined` when the bytes are not valid UTF-8. */
export const read = (buf: Uint8Array, start: number, end: number): string | undefined => {
  const n = end - start
  let h = n
  let i = start
  for (; i < end; i++) {
    const c = buf[i]!
    if (c >= 0x80) return readSlow(buf, start, end)
    h = (h * 31 + c) & 0xfffff
  }
  if (n > 48) return ascii(buf, start, end)
  const slot = (h ^ (h >>> 9)) & (SLOTS - 1)
  const hit = recent[slot]!
  if (hit.length === n) {
    let k = 0
    while (k < n && hit.charCodeAt(k) === buf[start + k]) k++
    if (k === n) return hit
  }
  const s = ascii(buf, start, end)
  recent[slot] = s
  return s
}

const readSlow = (buf: Uint8Array, start: number, end: number): string | undefined => {
  units.length = 0
  let i = start
  while (i < end) {
    const b0 = buf[i]!
    if (b0 < 0x80) {
      units.push(b0)
      i++
      continue
    }
    let cp: number
    let need: number
    let min: number
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      cp = b0 & 0x1f
      need = 1
      min = 0x80
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      cp = b0 & 0x0f
      need = 2
      min = 0x800
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      cp = b0 & 0x07
      need = 3
      min = 0x10000
    } else return undefined
    if (i + need >= end) return undefined
    for (let k = 1; k <= need; k++) {
      const b = buf[i + k]!
      if ((b & 0xc0) !== 0x80) return undefined
      cp = (cp << 6) | (b & 0x3f)
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return undefined
    if (cp >= 0x10000) {
      const v = cp - 0x10000
      units.push(0xd800 | (v >> 10), 0xdc00 | (v & 0x3ff))
    } else units.push(cp)
    i += need + 1
  }
  let s = ""
  for (let k = 0; k < units.length; k += 4096) s += String.fromCharCode.apply(null, units.slice(k, k + 4096))
  return s
}
