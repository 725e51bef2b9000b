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

const isAscii = (text: string): boolean => {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false
  return true
}

/**
 * Encodes `texts` and appends them to `out`: short ASCII texts as views of one shared buffer, others on their own.
 * Frames are handed to a socket and never written to, so sharing the buffer is safe.
 */
export const encodeAll = (texts: ReadonlyArray<string>, out: Array<Uint8Array>): void => {
  let size = 0
  const ascii = texts.map((text) => {
    // Long texts go to TextEncoder, which is faster than a loop beyond a few hundred bytes.
    const yes = text.length <= 512 && isAscii(text)
    if (yes) size += text.length
    return yes
  })
  const buffer = new Uint8Array(size)
  let offset = 0
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i]!
    if (!ascii[i]) {
      out.push(encoder.encode(text))
      continue
    }
    for (let j = 0; j < text.length; j++) buffer[offset + j] = text.charCodeAt(j)
    out.push(buffer.subarray(offset, offset + text.length))
    offset += text.length
  }
}
