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
