/**
 * Field tables: AMQP's typed key/value maps (`headers`, `arguments`, client and server properties).
 *
 * The model is lossless: every value keeps its wire type (`FieldValue`, tagged), entries keep their wire order,
 * 64-bit integers are `bigint`, decimals are `{ scale, value }`, long strings and byte arrays are bytes. Decoding
 * and encoding again reproduces the input bytes (except the legacy `L` tag, read as `l` like RabbitMQ does).
 *
 * For everyday use, `fromRecord` and `toRecord` convert from and to plain JS values with these rules:
 *
 * | JS value | wire type |
 * |---|---|
 * | `boolean` | `t` Bool |
 * | integer `number` in the int32 range | `I` Int32 |
 * | other safe integer `number` | `l` Int64 |
 * | non-integer `number` (and NaN, ±Infinity) | `d` Float64 (never float32) |
 * | `bigint` in the int64 range | `l` Int64 |
 * | `string` | `S` long string, UTF-8 |
 * | `Date` | `T` timestamp, whole seconds |
 * | `Uint8Array` | `x` byte array |
 * | `null` | `V` void |
 * | array | `A` array |
 * | plain object | `F` nested table |
 * | a tagged `FieldValue` (an object whose `_tag` is one of the tags below) | itself |
 *
 * Anything else (`undefined` inside an array, unsafe integers, functions, symbols, class instances) is an
 * `InvalidValue` error, never silently dropped or turned into void. Keys whose value is `undefined` are skipped.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import { AmqpError } from "./AmqpError.js"
import * as Utf8 from "./internal/utf8.js"
import * as Wire from "./internal/wire.js"

/**
 * A typed field value. Tags: `t b B s u I i l f d D S A T F V x` on the wire.
 *
 * @since 0.1.0
 * @category models
 */
export type FieldValue =
  | { readonly _tag: "Bool"; readonly value: boolean }
  | { readonly _tag: "Int8" | "UInt8" | "Int16" | "UInt16" | "Int32" | "UInt32"; readonly value: number }
  | { readonly _tag: "Int64"; readonly value: bigint }
  | { readonly _tag: "Float32" | "Float64"; readonly value: number }
  | { readonly _tag: "Decimal"; readonly scale: number; readonly value: number }
  | { readonly _tag: "LongString"; readonly value: Uint8Array }
  | { readonly _tag: "Timestamp"; readonly seconds: bigint }
  | { readonly _tag: "Array"; readonly value: ReadonlyArray<FieldValue> }
  | { readonly _tag: "Table"; readonly value: FieldTable }
  | { readonly _tag: "Bytes"; readonly value: Uint8Array }
  | { readonly _tag: "Void" }

/**
 * A field table: entries in wire order.
 *
 * @since 0.1.0
 * @category models
 */
export type FieldTable = ReadonlyArray<readonly [name: string, value: FieldValue]>

/**
 * @since 0.1.0
 * @category models
 */
export type FieldValueTag = FieldValue["_tag"]

const tags: ReadonlySet<string> = new Set<FieldValueTag>([
  "Bool", "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "Float32", "Float64", "Decimal",
  "LongString", "Timestamp", "Array", "Table", "Bytes", "Void"
])

/**
 * @since 0.1.0
 * @category guards
 */
export const isFieldValue = (u: unknown): u is FieldValue =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string" && tags.has(u._tag)

// ---------------------------------------------------------------------------------------------------------------
// Constructors
// ---------------------------------------------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category constructors
 */
export const bool = (value: boolean): FieldValue => ({ _tag: "Bool", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const int8 = (value: number): FieldValue => ({ _tag: "Int8", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const uint8 = (value: number): FieldValue => ({ _tag: "UInt8", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const int16 = (value: number): FieldValue => ({ _tag: "Int16", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const uint16 = (value: number): FieldValue => ({ _tag: "UInt16", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const int32 = (value: number): FieldValue => ({ _tag: "Int32", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const uint32 = (value: number): FieldValue => ({ _tag: "UInt32", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const int64 = (value: bigint): FieldValue => ({ _tag: "Int64", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const float32 = (value: number): FieldValue => ({ _tag: "Float32", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const float64 = (value: number): FieldValue => ({ _tag: "Float64", value })
/**
 * `value × 10^-scale`. `value` is the raw 32-bit field, read unsigned like RabbitMQ does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const decimal = (scale: number, value: number): FieldValue => ({ _tag: "Decimal", scale, value })
/**
 * A long string (`S`) from text (UTF-8) or raw bytes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const string = (value: string | Uint8Array): FieldValue => ({
  _tag: "LongString",
  value: typeof value === "string" ? Utf8.encode(value) : value
})
/**
 * A timestamp (`T`): a `Date` is floored to whole seconds; a `bigint` is taken as seconds.
 *
 * @since 0.1.0
 * @category constructors
 */
export const timestamp = (value: Date | bigint): FieldValue => ({
  _tag: "Timestamp",
  seconds: typeof value === "bigint" ? value : BigInt(Math.floor(value.getTime() / 1000))
})
/**
 * @since 0.1.0
 * @category constructors
 */
export const array = (value: ReadonlyArray<FieldValue>): FieldValue => ({ _tag: "Array", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const table = (value: FieldTable): FieldValue => ({ _tag: "Table", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const bytes = (value: Uint8Array): FieldValue => ({ _tag: "Bytes", value })
/**
 * @since 0.1.0
 * @category constructors
 */
export const voidValue: FieldValue = { _tag: "Void" }

/**
 * The empty table.
 *
 * @since 0.1.0
 * @category constructors
 */
export const empty: FieldTable = []

// ---------------------------------------------------------------------------------------------------------------
// Access
// ---------------------------------------------------------------------------------------------------------------

/**
 * The value of the first entry named `name`.
 *
 * @since 0.1.0
 * @category getters
 */
export const get = (t: FieldTable, name: string): FieldValue | undefined => {
  for (const entry of t) if (entry[0] === name) return entry[1]
  return undefined
}

/**
 * The value as a JS number when it is an integer of any width that fits one exactly (peers choose different
 * integer tags for the same argument, e.g. `x-max-priority`).
 *
 * @since 0.1.0
 * @category getters
 */
export const asInteger = (v: FieldValue | undefined): number | undefined => {
  if (v === undefined) return undefined
  switch (v._tag) {
    case "Int8":
    case "UInt8":
    case "Int16":
    case "UInt16":
    case "Int32":
    case "UInt32":
      return v.value
    case "Int64":
      return v.value >= BigInt(Number.MIN_SAFE_INTEGER) && v.value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(v.value)
        : undefined
    default:
      return undefined
  }
}

/**
 * The value as text when it is a long string (decoded as UTF-8, invalid sequences replaced).
 *
 * @since 0.1.0
 * @category getters
 */
export const asString = (v: FieldValue | undefined): string | undefined =>
  v !== undefined && v._tag === "LongString" ? Utf8.decodeLossy(v.value) : undefined

// ---------------------------------------------------------------------------------------------------------------
// Plain JS values
// ---------------------------------------------------------------------------------------------------------------

/**
 * A plain JS value that `fromRecord` knows how to type (see the module docs for the rules).
 *
 * @since 0.1.0
 * @category plain values
 */
export type PlainValue =
  | boolean
  | number
  | bigint
  | string
  | Date
  | Uint8Array
  | null
  | FieldValue
  | ReadonlyArray<PlainValue>
  | PlainRecord

/**
 * @since 0.1.0
 * @category plain values
 */
export interface PlainRecord {
  readonly [key: string]: PlainValue | undefined
}

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

const isPlainObject = (u: unknown): u is PlainRecord => {
  if (typeof u !== "object" || u === null) return false
  const proto = Object.getPrototypeOf(u)
  return proto === Object.prototype || proto === null
}

const plainValue = (u: unknown, field: string, depth: number): FieldValue | AmqpError => {
  if (depth > 64) return new AmqpError({ reason: "InvalidValue", field, detail: "nested deeper than 64" })
  switch (typeof u) {
    case "boolean":
      return { _tag: "Bool", value: u }
    case "number":
      if (Number.isInteger(u)) {
        if (u >= -2147483648 && u <= 2147483647) return { _tag: "Int32", value: u }
        if (Number.isSafeInteger(u)) return { _tag: "Int64", value: BigInt(u) }
        return new AmqpError({
          reason: "InvalidValue",
          field,
          detail: `${u} is not a safe integer: pass a bigint or an explicit Float64`
        })
      }
      return { _tag: "Float64", value: u }
    case "bigint":
      return u >= INT64_MIN && u <= INT64_MAX
        ? { _tag: "Int64", value: u }
        : new AmqpError({ reason: "InvalidValue", field, detail: `${u} is outside the signed 64-bit range` })
    case "string":
      return { _tag: "LongString", value: Utf8.encode(u) }
    case "object": {
      if (u === null) return voidValue
      if (u instanceof Date) {
        const ms = u.getTime()
        if (!Number.isFinite(ms) || ms < 0) {
          return new AmqpError({ reason: "InvalidValue", field, detail: "timestamps are non-negative, valid dates" })
        }
        return { _tag: "Timestamp", seconds: BigInt(Math.floor(ms / 1000)) }
      }
      if (u instanceof Uint8Array) return { _tag: "Bytes", value: u }
      if (Array.isArray(u)) {
        const out: Array<FieldValue> = []
        for (let i = 0; i < u.length; i++) {
          const v = plainValue(u[i], `${field}[${i}]`, depth + 1)
          if (v instanceof AmqpError) return v
          out.push(v)
        }
        return { _tag: "Array", value: out }
      }
      if (isFieldValue(u)) return u
      if (isPlainObject(u)) {
        const t = plainRecord(u, field, depth + 1)
        return t instanceof AmqpError ? t : { _tag: "Table", value: t }
      }
      return new AmqpError({ reason: "InvalidValue", field, detail: "only plain objects, arrays, Date and Uint8Array" })
    }
    default:
      return new AmqpError({ reason: "InvalidValue", field, detail: `a ${typeof u} has no field type` })
  }
}

const plainRecord = (record: PlainRecord, prefix: string | undefined, depth: number): FieldTable | AmqpError => {
  const out: Array<readonly [string, FieldValue]> = []
  for (const key of Object.keys(record)) {
    const u = record[key]
    if (u === undefined) continue
    const v = plainValue(u, prefix === undefined ? key : `${prefix}.${key}`, depth)
    if (v instanceof AmqpError) return v
    out.push([key, v])
  }
  return out
}

/**
 * Types a plain object's values by the rules in the module docs.
 *
 * @since 0.1.0
 * @category plain values
 */
export const fromRecord = (record: PlainRecord): Either.Either<FieldTable, AmqpError> => {
  const t = plainRecord(record, undefined, 0)
  return t instanceof AmqpError ? Either.left(t) : Either.right(t)
}

/**
 * A plain view of a tagged value: integers to `number` (Int64 to `bigint`), long strings to text, timestamps to
 * `Date`, byte arrays to `Uint8Array`, void to `null`; decimals stay tagged (JS has no decimal type).
 *
 * @since 0.1.0
 * @category plain values
 */
export const toPlain = (v: FieldValue): PlainValue => {
  switch (v._tag) {
    case "LongString":
      return Utf8.decodeLossy(v.value)
    case "Timestamp":
      return new Date(Number(v.seconds) * 1000)
    case "Array":
      return v.value.map(toPlain)
    case "Table":
      return toRecord(v.value)
    case "Void":
      return null
    case "Decimal":
      return v
    default:
      return v.value
  }
}

/**
 * A plain object view of a table (the last entry wins for a repeated name).
 *
 * @since 0.1.0
 * @category plain values
 */
export const toRecord = (t: FieldTable): PlainRecord => {
  const out: Record<string, PlainValue> = {}
  for (const [name, value] of t) out[name] = toPlain(value)
  return out
}

// ---------------------------------------------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------------------------------------------

/**
 * Encodes a table with its 4-byte length prefix.
 *
 * @since 0.1.0
 * @category codec
 */
export const encode = (t: FieldTable): Either.Either<Uint8Array, AmqpError> => {
  const size = Wire.tableSize(t, undefined)
  if (typeof size !== "number") return Either.left(size)
  const w = new Wire.Writer(new Uint8Array(size))
  Wire.wTable(w, t)
  return Either.right(w.buf)
}

/**
 * Decodes one table (length prefix included) that must span all of `bytes`. Long strings and byte arrays are
 * views into `bytes`.
 *
 * @since 0.1.0
 * @category codec
 */
export const decode = (bytes: Uint8Array): Either.Either<FieldTable, AmqpError> => {
  const r = new Wire.Reader(bytes, 0, bytes.length)
  const t = Wire.table(r)
  if (r.error === undefined && r.pos !== bytes.length) {
    Wire.fail(r, "Malformed", `${bytes.length - r.pos} bytes after the table`)
  }
  return r.error === undefined ? Either.right(t) : Either.left(r.error)
}

// ---------------------------------------------------------------------------------------------------------------
// Schemas
// ---------------------------------------------------------------------------------------------------------------

/**
 * A short string: at most 255 bytes of UTF-8.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ShortString: Schema.Schema<string> = Schema.String.pipe(
  Schema.filter((s) => Utf8.byteLength(s) <= 255, { message: () => "a short string holds at most 255 bytes of UTF-8" }),
  Schema.annotations({
    identifier: "ShortString",
    arbitrary: () => (fc) => fc.oneof(fc.string({ maxLength: 40 }), fc.fullUnicodeString({ maxLength: 60 }))
  })
)

const int = (identifier: string, min: number, max: number): Schema.Schema<number> =>
  Schema.Int.pipe(Schema.between(min, max), Schema.annotations({ identifier }))

/**
 * @since 0.1.0
 * @category schemas
 */
export const Octet: Schema.Schema<number> = int("Octet", 0, 255)
/**
 * @since 0.1.0
 * @category schemas
 */
export const Short: Schema.Schema<number> = int("Short", 0, 65535)
/**
 * @since 0.1.0
 * @category schemas
 */
export const Long: Schema.Schema<number> = int("Long", 0, 4294967295)
/**
 * @since 0.1.0
 * @category schemas
 */
export const LongLong: Schema.Schema<bigint> = Schema.BigIntFromSelf.pipe(
  Schema.betweenBigInt(0n, 2n ** 64n - 1n),
  Schema.annotations({ identifier: "LongLong" })
)

const Bytes = Schema.Uint8ArrayFromSelf

const Float32Number: Schema.Schema<number> = Schema.Number.pipe(
  Schema.filter((n) => Number.isNaN(n) || Object.is(Math.fround(n), n), { message: () => "not a float32 value" }),
  Schema.annotations({ arbitrary: () => (fc) => fc.float() })
)

/**
 * The tagged value Schema (validates ranges; generates values of every tag).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FieldValue: Schema.Schema<FieldValue> = Schema.Union(
  Schema.TaggedStruct("Bool", { value: Schema.Boolean }),
  Schema.TaggedStruct("Int8", { value: int("Int8", -128, 127) }),
  Schema.TaggedStruct("UInt8", { value: int("UInt8", 0, 255) }),
  Schema.TaggedStruct("Int16", { value: int("Int16", -32768, 32767) }),
  Schema.TaggedStruct("UInt16", { value: int("UInt16", 0, 65535) }),
  Schema.TaggedStruct("Int32", { value: int("Int32", -2147483648, 2147483647) }),
  Schema.TaggedStruct("UInt32", { value: int("UInt32", 0, 4294967295) }),
  Schema.TaggedStruct("Int64", { value: Schema.BigIntFromSelf.pipe(Schema.betweenBigInt(INT64_MIN, INT64_MAX)) }),
  Schema.TaggedStruct("Float32", { value: Float32Number }),
  Schema.TaggedStruct("Float64", { value: Schema.Number }),
  Schema.TaggedStruct("Decimal", { scale: int("Scale", 0, 255), value: int("UInt32", 0, 4294967295) }),
  Schema.TaggedStruct("LongString", { value: Bytes }),
  Schema.TaggedStruct("Timestamp", { seconds: LongLong }),
  Schema.TaggedStruct("Array", { value: Schema.Array(Schema.suspend((): Schema.Schema<FieldValue> => FieldValue)) }),
  Schema.TaggedStruct("Table", { value: Schema.suspend((): Schema.Schema<FieldTable> => FieldTable) }),
  Schema.TaggedStruct("Bytes", { value: Bytes }),
  Schema.TaggedStruct("Void", {})
).annotations({ identifier: "FieldValue" })

/**
 * The table Schema in its tagged, lossless form.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FieldTable: Schema.Schema<FieldTable> = Schema.Array(Schema.Tuple(ShortString, FieldValue)).annotations({
  identifier: "FieldTable"
})

/**
 * A table from its wire bytes (length prefix included), with the same encoder and decoder as the frame codec.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FieldTableFromBytes: Schema.Schema<FieldTable, Uint8Array> = Schema.transformOrFail(
  Schema.Uint8ArrayFromSelf,
  FieldTable,
  {
    strict: true,
    decode: (bytes, _, ast) =>
      Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.message)),
    encode: (t, _, ast) => Either.mapLeft(encode(t), (e) => new ParseResult.Type(ast, t, e.message))
  }
).annotations({ identifier: "FieldTableFromBytes" })

const PlainRecordSchema: Schema.Schema<PlainRecord> = Schema.declare((u): u is PlainRecord => isPlainObject(u), {
  identifier: "PlainRecord"
})

/**
 * A table from plain JS values (and back), by the rules in the module docs.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FieldTableFromRecord: Schema.Schema<FieldTable, PlainRecord> = Schema.transformOrFail(
  PlainRecordSchema,
  FieldTable,
  {
    strict: true,
    decode: (record, _, ast) =>
      Either.mapLeft(fromRecord(record), (e) => new ParseResult.Type(ast, record, e.message)),
    encode: (t) => ParseResult.succeed(toRecord(t))
  }
)
