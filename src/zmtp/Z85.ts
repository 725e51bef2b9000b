/**
 * Z85 (ZeroMQ RFC 32): the printable encoding of CURVE keys, 4 bytes to 5 characters.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ZmtpError } from "./ZmtpError.js"

const alphabet = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"

const decodeTable = (() => {
  const table = new Int16Array(128).fill(-1)
  for (let i = 0; i < alphabet.length; i++) table[alphabet.charCodeAt(i)] = i
  return table
})()

/**
 * Encodes bytes whose length is a multiple of 4.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (bytes: Uint8Array): Either.Either<string, ZmtpError> => {
  if (bytes.length % 4 !== 0) {
    return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "Z85: length must be a multiple of 4" }))
  }
  let out = ""
  for (let i = 0; i < bytes.length; i += 4) {
    let value = ((bytes[i]! << 24) | (bytes[i + 1]! << 16) | (bytes[i + 2]! << 8) | bytes[i + 3]!) >>> 0
    const chunk = new Array<string>(5)
    for (let j = 4; j >= 0; j--) {
      chunk[j] = alphabet[value % 85]!
      value = Math.floor(value / 85)
    }
    out += chunk.join("")
  }
  return Either.right(out)
}

/**
 * Decodes text whose length is a multiple of 5.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (text: string): Either.Either<Uint8Array, ZmtpError> => {
  if (text.length % 5 !== 0) {
    return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "Z85: length must be a multiple of 5" }))
  }
  const out = new Uint8Array((text.length / 5) * 4)
  for (let i = 0, o = 0; i < text.length; i += 5, o += 4) {
    let value = 0
    for (let j = 0; j < 5; j++) {
      const code = text.charCodeAt(i + j)
      const digit = code < 128 ? decodeTable[code]! : -1
      if (digit < 0) {
        return Either.left(
          new ZmtpError({ reason: "MalformedCommand", detail: `Z85: invalid character at ${i + j}` })
        )
      }
      value = value * 85 + digit
    }
    if (value > 0xffffffff) {
      return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: `Z85: group at ${i} overflows` }))
    }
    out[o] = value >>> 24
    out[o + 1] = (value >>> 16) & 0xff
    out[o + 2] = (value >>> 8) & 0xff
    out[o + 3] = value & 0xff
  }
  return Either.right(out)
}

/**
 * `Schema<Uint8Array, string>`: Z85 text to bytes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Z85: Schema.Schema<Uint8Array, string> = Schema.transformOrFail(
  Schema.String,
  Schema.Uint8ArrayFromSelf,
  {
    strict: true,
    decode: (text, _, ast) =>
      Either.mapLeft(decode(text), (error) => new ParseResult.Type(ast, text, error.detail)),
    encode: (bytes, _, ast) =>
      Either.mapLeft(encode(bytes), (error) => new ParseResult.Type(ast, bytes, error.detail))
  }
)

/**
 * A 32-byte CURVE key as 40 Z85 characters.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Key: Schema.Schema<Uint8Array, string> = Schema.compose(
  Schema.String.pipe(Schema.length(40)),
  Z85
)
