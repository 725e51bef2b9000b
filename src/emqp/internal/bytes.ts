/** Routing ids as map keys: one char per byte (latin1), so any binary id round-trips. */
export const toKey = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1")

export const fromKey = (key: string): Uint8Array => Buffer.from(key, "latin1")
