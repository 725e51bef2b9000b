const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true })
const encoder = new TextEncoder()

/** Decodes strict UTF-8; `undefined` for invalid input. Short ASCII frames (most eMQP fields) skip TextDecoder. */
export const decode = (bytes: Uint8Array): string | undefined => {
  const length = bytes.length
  if (length <= 64) {
    let ascii = true
    for (let i = 0; i < length; i++) {
      if (bytes[i]! > 0x7f) {
        ascii = false
        break
      }
    }
    if (ascii) return String.fromCharCode.apply(null, bytes as unknown as Array<number>)
  }
  try {
    return decoder.decode(bytes)
  } catch {
    return undefined
  }
}

export const encode = (text: string): Uint8Array => encoder.encode(text)

/**
 * Encodes `texts` and appends them to `out`: short ASCII texts as views of one shared buffer, others on their own.
 * Frames are handed to a socket and never written to, so sharing the buffer is safe.
 */
export const encodeAll = (texts: ReadonlyArray<string>, out: Array<Uint8Array>): void => {
  let size = 0
  // The byte length of each short ASCII text (UTF-8 length = string length), -1 for the others; long texts go
  // to TextEncoder, which beats a copy into a shared buffer beyond a few hundred bytes.
  const lengths = new Array<number>(texts.length)
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]!
    const n = text.length <= 512 ? Buffer.byteLength(text, "utf8") : -1
    lengths[i] = n === text.length ? n : -1
    if (n === text.length) size += n
  }
  const buffer = Buffer.allocUnsafe(size)
  let offset = 0
  for (let i = 0; i < texts.length; i++) {
    const n = lengths[i]!
    if (n < 0) {
      out.push(encoder.encode(texts[i]!))
      continue
    }
    buffer.write(texts[i]!, offset, n, "latin1")
    out.push(buffer.subarray(offset, offset + n))
    offset += n
  }
}
