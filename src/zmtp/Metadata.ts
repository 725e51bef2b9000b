/**
 * ZMTP metadata: the properties carried by `READY` (and PLAIN/CURVE `INITIATE`).
 *
 * Properties keep their order and their exact spelling: libzmq compares `Socket-Type` and `Identity`
 * case-sensitively, so they are emitted exactly so; lookups here ignore case, as the spec asks.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { ZmtpError } from "./ZmtpError.js"

/**
 * One property: a name of 1..255 characters from `A-Z a-z 0-9 - _ . +` and a value of any bytes.
 *
 * @since 0.1.0
 * @category models
 */
export type Property = readonly [name: string, value: Uint8Array]

/**
 * @since 0.1.0
 * @category models
 */
export type Metadata = ReadonlyArray<Property>

/**
 * @since 0.1.0
 * @category names
 */
export const SocketType = "Socket-Type"

/**
 * @since 0.1.0
 * @category names
 */
export const Identity = "Identity"

/**
 * @since 0.1.0
 * @category names
 */
export const Resource = "Resource"

const encoder = new TextEncoder()
const latin1 = new TextDecoder("latin1")

const validName = /^[A-Za-z0-9\-_.+]{1,255}$/

/**
 * The value of a property, looked up without regard to case.
 *
 * @since 0.1.0
 * @category accessors
 */
export const get = (metadata: Metadata, name: string): Uint8Array | undefined => {
  const lower = name.toLowerCase()
  for (const [key, value] of metadata) if (key.toLowerCase() === lower) return value
  return undefined
}

/**
 * The value of a property as ASCII text.
 *
 * @since 0.1.0
 * @category accessors
 */
export const getString = (metadata: Metadata, name: string): string | undefined => {
  const value = get(metadata, name)
  return value === undefined ? undefined : latin1.decode(value)
}

/**
 * A property with a text value.
 *
 * @since 0.1.0
 * @category constructors
 */
export const property = (name: string, value: string | Uint8Array): Property =>
  [name, typeof value === "string" ? encoder.encode(value) : value]

/**
 * Bytes of the encoded properties.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodedSize = (metadata: Metadata): number => {
  let size = 0
  for (const [name, value] of metadata) size += 1 + name.length + 4 + value.length
  return size
}

/**
 * Writes the properties into `out` at `offset`; returns the offset after them.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeInto = (metadata: Metadata, out: Uint8Array, offset: number): number => {
  for (const [name, value] of metadata) {
    out[offset++] = name.length
    for (let i = 0; i < name.length; i++) out[offset++] = name.charCodeAt(i)
    out[offset++] = value.length >>> 24
    out[offset++] = (value.length >>> 16) & 0xff
    out[offset++] = (value.length >>> 8) & 0xff
    out[offset++] = value.length & 0xff
    out.set(value, offset)
    offset += value.length
  }
  return offset
}

/**
 * Checks names and values against the grammar.
 *
 * @since 0.1.0
 * @category validation
 */
export const validate = (metadata: Metadata): Either.Either<Metadata, ZmtpError> => {
  for (const [name, value] of metadata) {
    if (!validName.test(name)) {
      return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: `invalid property name ${JSON.stringify(name)}` }))
    }
    if (value.length > 0x7fffffff) {
      return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: `property ${name} is too large` }))
    }
  }
  return Either.right(metadata)
}

/**
 * @since 0.1.0
 * @category encoding
 */
export const encode = (metadata: Metadata): Uint8Array => {
  const out = new Uint8Array(encodedSize(metadata))
  encodeInto(metadata, out, 0)
  return out
}

/**
 * Parses properties from `bytes[offset..]` up to the end. Values are views into `bytes`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array, offset = 0): Either.Either<Metadata, ZmtpError> => {
  const properties: Array<Property> = []
  const malformed = (detail: string) => Either.left(new ZmtpError({ reason: "MalformedCommand", detail }))
  while (offset < bytes.length) {
    const nameLength = bytes[offset]!
    if (nameLength === 0) return malformed("empty property name")
    if (offset + 1 + nameLength + 4 > bytes.length) return malformed("truncated property")
    const name = latin1.decode(bytes.subarray(offset + 1, offset + 1 + nameLength))
    if (!validName.test(name)) return malformed(`invalid property name ${JSON.stringify(name)}`)
    offset += 1 + nameLength
    const valueLength = ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0
    offset += 4
    if (valueLength > bytes.length - offset) return malformed(`truncated value of ${name}`)
    properties.push([name, bytes.subarray(offset, offset + valueLength)])
    offset += valueLength
  }
  return Either.right(properties)
}

/**
 * The in-memory form of metadata.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MetadataFromSelf: Schema.Schema<Metadata> = Schema.Array(
  Schema.Tuple(
    Schema.String.pipe(Schema.pattern(validName)),
    Schema.Uint8ArrayFromSelf
  )
)

/**
 * `Schema<Metadata, Uint8Array>` over the same codec the connections use.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MetadataFromBytes: Schema.Schema<Metadata, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  MetadataFromSelf,
  {
    strict: true,
    decode: (bytes, _, ast) => Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.detail)),
    encode: (metadata) => ParseResult.succeed(encode(metadata))
  }
)
