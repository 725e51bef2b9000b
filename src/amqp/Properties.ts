/**
 * The basic class's content properties, carried by every content header frame.
 *
 * A property that is absent is a missing key; a property present with an empty or zero value (`""`, `0`) is kept
 * and encoded, never dropped as falsy.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { AmqpError } from "./AmqpError.js"
import * as Codec from "./internal/properties.js"
import * as Wire from "./internal/wire.js"
import * as Table from "./Table.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface BasicProperties {
  /** MIME type of the body. */
  readonly contentType?: string | undefined
  /** MIME content encoding (`gzip`, …). */
  readonly contentEncoding?: string | undefined
  /** Application headers. */
  readonly headers?: Table.FieldTable | undefined
  /** 1 = transient, 2 = persistent. */
  readonly deliveryMode?: number | undefined
  /** 0–9 per spec; RabbitMQ honours up to the queue's `x-max-priority`. */
  readonly priority?: number | undefined
  readonly correlationId?: string | undefined
  readonly replyTo?: string | undefined
  /** Per-message TTL: a decimal string of milliseconds. */
  readonly expiration?: string | undefined
  readonly messageId?: string | undefined
  /** Whole seconds on the wire: milliseconds are floored away when encoding. */
  readonly timestamp?: Date | undefined
  readonly type?: string | undefined
  /** RabbitMQ checks it equals the connection's user. */
  readonly userId?: string | undefined
  readonly appId?: string | undefined
  /** Deprecated. */
  readonly clusterId?: string | undefined
}

/**
 * Encodes the property flags and list (the part of a content header after the body size).
 *
 * @since 0.1.0
 * @category codec
 */
export const encode = (properties: BasicProperties): Either.Either<Uint8Array, AmqpError> => {
  const size = Codec.size(properties)
  if (typeof size !== "number") return Either.left(size)
  const w = new Wire.Writer(new Uint8Array(size))
  Codec.write(w, properties)
  return Either.right(w.buf)
}

/**
 * Decodes a property flags word and list spanning all of `bytes`.
 *
 * @since 0.1.0
 * @category codec
 */
export const decode = (bytes: Uint8Array): Either.Either<BasicProperties, AmqpError> => {
  const r = new Wire.Reader(bytes, 0, bytes.length)
  const p = Codec.decode(r)
  if (r.error === undefined && r.pos !== bytes.length) Wire.fail(r, "Malformed", `${bytes.length - r.pos} bytes after the properties`)
  return r.error === undefined ? Either.right(p) : Either.left(r.error)
}

const WholeSecondDate: Schema.Schema<Date> = Schema.ValidDateFromSelf.pipe(
  Schema.filter((d) => d.getTime() >= 0 && d.getTime() % 1000 === 0, {
    message: () => "AMQP timestamps are whole seconds since 1970"
  }),
  Schema.annotations({
    arbitrary: () => (fc) => fc.integer({ min: 0, max: 2 ** 32 }).map((s) => new Date(s * 1000))
  })
)

/**
 * The properties Schema (validates short string lengths, octet ranges and whole-second timestamps).
 *
 * @since 0.1.0
 * @category schemas
 */
export const BasicProperties: Schema.Schema<BasicProperties> = Schema.Struct({
  contentType: Schema.optional(Table.ShortString),
  contentEncoding: Schema.optional(Table.ShortString),
  headers: Schema.optional(Table.FieldTable),
  deliveryMode: Schema.optional(Table.Octet),
  priority: Schema.optional(Table.Octet),
  correlationId: Schema.optional(Table.ShortString),
  replyTo: Schema.optional(Table.ShortString),
  expiration: Schema.optional(Table.ShortString),
  messageId: Schema.optional(Table.ShortString),
  timestamp: Schema.optional(WholeSecondDate),
  type: Schema.optional(Table.ShortString),
  userId: Schema.optional(Table.ShortString),
  appId: Schema.optional(Table.ShortString),
  clusterId: Schema.optional(Table.ShortString)
}).annotations({ identifier: "BasicProperties" })

/**
 * The properties from their wire bytes (flags and list), with the frame codec's encoder and decoder.
 *
 * @since 0.1.0
 * @category schemas
 */
export const BasicPropertiesFromBytes: Schema.Schema<BasicProperties, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  BasicProperties,
  {
    strict: true,
    decode: (bytes, _, ast) => Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.message)),
    encode: (p, _, ast) => Either.mapLeft(encode(p), (e) => new ParseResult.Type(ast, p, e.message))
  }
).annotations({ identifier: "BasicPropertiesFromBytes" })
