/**
 * The 64-byte ZMTP greeting: signature, version, mechanism and the as-server flag.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ZmtpError } from "./ZmtpError.js"

/**
 * @since 0.1.0
 * @category constants
 */
export const size = 64

/**
 * Bytes after which the signature can be checked.
 *
 * @since 0.1.0
 * @category constants
 */
export const signatureSize = 10

/**
 * @since 0.1.0
 * @category models
 */
export interface Greeting {
  readonly major: number
  readonly minor: number
  /** `NULL`, `PLAIN` or `CURVE` (any name of up to 20 characters from `A-Z 0-9 - _ . +`). */
  readonly mechanism: string
  readonly asServer: boolean
}

const validMechanism = /^[A-Z0-9\-_.+]{1,20}$/

/**
 * The greeting of a ZMTP 3.1 peer.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (mechanism: string, asServer = false): Greeting => ({ major: 3, minor: 1, mechanism, asServer })

/**
 * Encodes a greeting. The padding is all zeros, as the spec asks of peers that send the whole greeting at once.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (greeting: Greeting): Uint8Array => {
  const out = new Uint8Array(size)
  out[0] = 0xff
  out[9] = 0x7f
  out[10] = greeting.major
  out[11] = greeting.minor
  for (let i = 0; i < greeting.mechanism.length && i < 20; i++) out[12 + i] = greeting.mechanism.charCodeAt(i)
  out[32] = greeting.asServer ? 1 : 0
  return out
}

/**
 * Checks the first 10 bytes: `ff`, 8 bytes of padding (never interpreted), and bit 0 of byte 9 set.
 *
 * @since 0.1.0
 * @category decoding
 */
export const checkSignature = (bytes: Uint8Array): Either.Either<void, ZmtpError> =>
  bytes[0] === 0xff && (bytes[9]! & 0x01) === 1
    ? Either.void
    : Either.left(new ZmtpError({ reason: "BadGreeting", detail: "not a ZMTP 3 signature" }))

/**
 * Decodes a full greeting. Accepts any 3.x; refuses older versions, which cannot be spoken with a 3.1 mechanism.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array): Either.Either<Greeting, ZmtpError> => {
  if (bytes.length < size) {
    return Either.left(new ZmtpError({ reason: "BadGreeting", detail: `greeting is ${bytes.length} bytes, not 64` }))
  }
  const signature = checkSignature(bytes)
  if (Either.isLeft(signature)) return Either.left(signature.left)
  const major = bytes[10]!
  const minor = bytes[11]!
  if (major < 3) {
    return Either.left(new ZmtpError({ reason: "UnsupportedVersion", detail: `peer speaks ZMTP ${major}.${minor}` }))
  }
  let end = 12
  while (end < 32 && bytes[end] !== 0) end++
  let mechanism = ""
  for (let i = 12; i < end; i++) mechanism += String.fromCharCode(bytes[i]!)
  for (let i = end; i < 32; i++) {
    if (bytes[i] !== 0) return Either.left(new ZmtpError({ reason: "BadGreeting", detail: "mechanism is not NUL-padded" }))
  }
  if (!validMechanism.test(mechanism)) {
    return Either.left(new ZmtpError({ reason: "BadGreeting", detail: `invalid mechanism ${JSON.stringify(mechanism)}` }))
  }
  return Either.right({ major, minor, mechanism, asServer: bytes[32] === 1 })
}

/**
 * @since 0.1.0
 * @category schemas
 */
export const GreetingFromSelf = Schema.Struct({
  major: Schema.Int.pipe(Schema.between(3, 255)),
  minor: Schema.Int.pipe(Schema.between(0, 255)),
  mechanism: Schema.String.pipe(Schema.pattern(validMechanism)),
  asServer: Schema.Boolean
})

/**
 * `Schema<Greeting, Uint8Array>` over the same codec the connections use.
 *
 * @since 0.1.0
 * @category schemas
 */
export const GreetingFromBytes: Schema.Schema<Greeting, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  GreetingFromSelf,
  {
    strict: true,
    decode: (bytes, _, ast) => Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.detail)),
    encode: (greeting) => ParseResult.succeed(encode(greeting))
  }
)
