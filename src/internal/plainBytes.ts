/**
 * A Node `Buffer` re-viewed as a plain `Uint8Array` over the same memory (no copy); a plain array as it is.
 *
 * Sockets hand out Buffers, while parsers assemble frames that straddle reads in plain arrays of their own: code
 * optimised for one kind of array is deoptimised when the other turns up mid-stream, so the protocol readers feed
 * their parsers one kind only.
 */
export const plainBytes = (chunk: Uint8Array): Uint8Array =>
  chunk.constructor === Uint8Array ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
