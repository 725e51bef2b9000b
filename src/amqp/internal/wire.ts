/**
 * Wire primitives: a bounds-checked reader that records the first error instead of throwing, a writer over a
 * preallocated buffer, and the field-table codec (size, write, read).
 */
import { AmqpError, type AmqpErrorReason } from "../AmqpError.js"
import type { FieldTable, FieldValue } from "../Table.js"
import * as Utf8 from "./utf8.js"

// ---------------------------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------------------------

/**
 * A cursor over `buf[pos, end)`. Reads past `end` record a `Malformed` error, jump to `end` and return zero
 * values, so a decoder runs straight through and checks `error` once at the end.
 */
export class Reader {
  view: DataView | undefined = undefined
  error: AmqpError | undefined = undefined
  field: string | undefined = undefined
  constructor(
    public buf: Uint8Array,
    public pos: number,
    public end: number,
    /** Added to positions in error offsets (the stream offset of `buf[0]`). */
    public base: number = 0
  ) {}

  /** Points the reader at new bytes (parsers reuse one reader for every frame). */
  reset(buf: Uint8Array, pos: number, end: number, base: number): void {
    if (buf !== this.buf) {
      this.buf = buf
      this.view = undefined
    }
    this.pos = pos
    this.end = end
    this.base = base
    this.error = undefined
    this.field = undefined
  }
}

export const fail = (r: Reader, reason: AmqpErrorReason, detail: string, extra?: { readonly bytes?: Uint8Array; readonly size?: number; readonly max?: number }): void => {
  if (r.error === undefined) {
    r.error = new AmqpError({ reason, offset: r.base + r.pos, field: r.field, detail, ...extra })
  }
  r.pos = r.end
}

const need = (r: Reader, n: number): boolean => {
  if (r.pos + n <= r.end) return true
  fail(r, "Malformed", `needs ${n} more bytes, ${r.end - r.pos} left`)
  return false
}

const viewOf = (r: Reader): DataView =>
  r.view ??= new DataView(r.buf.buffer, r.buf.byteOffset, r.buf.byteLength)

export const u8 = (r: Reader): number => {
  if (r.pos >= r.end) {
    need(r, 1)
    return 0
  }
  return r.buf[r.pos++]!
}

export const u16 = (r: Reader): number => {
  if (!need(r, 2)) return 0
  const b = r.buf
  const p = r.pos
  r.pos = p + 2
  return (b[p]! << 8) | b[p + 1]!
}

export const u32 = (r: Reader): number => {
  if (!need(r, 4)) return 0
  const b = r.buf
  const p = r.pos
  r.pos = p + 4
  return b[p]! * 0x1000000 + ((b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!)
}

export const u64 = (r: Reader): bigint => {
  if (!need(r, 8)) return 0n
  const v = viewOf(r).getBigUint64(r.pos)
  r.pos += 8
  return v
}

const i64 = (r: Reader): bigint => {
  if (!need(r, 8)) return 0n
  const v = viewOf(r).getBigInt64(r.pos)
  r.pos += 8
  return v
}

/** A short string, strictly UTF-8 (RabbitMQ answers malformed short strings with 501 FRAME_ERROR). */
export const shortstr = (r: Reader): string => {
  if (!need(r, 1)) return ""
  const len = r.buf[r.pos]!
  if (!need(r, 1 + len)) return ""
  const start = r.pos + 1
  const s = Utf8.read(r.buf, start, start + len)
  if (s === undefined) {
    fail(r, "Malformed", "short string is not valid UTF-8")
    return ""
  }
  r.pos = start + len
  return s
}

/** A long string as a zero-copy view of its bytes. */
export const longstr = (r: Reader): Uint8Array => {
  const len = u32(r)
  if (!need(r, len)) return empty
  const start = r.pos
  r.pos = start + len
  return r.buf.subarray(start, start + len)
}

const empty = new Uint8Array(0)

/** Nested tables and arrays deeper than this are rejected: a hostile peer must not exhaust the stack. */
const maxDepth = 64

export const table = (r: Reader, depth = 0): FieldTable => {
  const len = u32(r)
  if (!need(r, len)) return []
  if (depth > maxDepth) {
    fail(r, "Malformed", `field tables nested deeper than ${maxDepth}`)
    return []
  }
  const end = r.pos + len
  const saved = r.end
  r.end = end
  const out: Array<readonly [string, FieldValue]> = []
  while (r.pos < end) {
    const name = shortstr(r)
    const value = fieldValue(r, depth)
    if (r.error !== undefined) break
    out.push([name, value])
  }
  r.end = saved
  return out
}

const array = (r: Reader, depth: number): ReadonlyArray<FieldValue> => {
  const len = u32(r)
  if (!need(r, len)) return []
  if (depth > maxDepth) {
    fail(r, "Malformed", `field arrays nested deeper than ${maxDepth}`)
    return []
  }
  const end = r.pos + len
  const saved = r.end
  r.end = end
  const out: Array<FieldValue> = []
  while (r.pos < end) {
    const value = fieldValue(r, depth)
    if (r.error !== undefined) break
    out.push(value)
  }
  r.end = saved
  return out
}

const VOID: FieldValue = { _tag: "Void" }

const fieldValue = (r: Reader, depth: number): FieldValue => {
  const tag = u8(r)
  switch (tag) {
    case 0x74: // t
      return { _tag: "Bool", value: u8(r) !== 0 }
    case 0x62: // b
      return { _tag: "Int8", value: (u8(r) << 24) >> 24 }
    case 0x42: // B
      return { _tag: "UInt8", value: u8(r) }
    case 0x73: // s (RabbitMQ: int16, not the spec's short string)
      return { _tag: "Int16", value: (u16(r) << 16) >> 16 }
    case 0x75: // u
      return { _tag: "UInt16", value: u16(r) }
    case 0x49: // I
      return { _tag: "Int32", value: u32(r) | 0 }
    case 0x69: // i
      return { _tag: "UInt32", value: u32(r) }
    case 0x6c: // l
    case 0x4c: // L (0-9): read as signed 64 like RabbitMQ
      return { _tag: "Int64", value: i64(r) }
    case 0x66: {
      // f
      if (!need(r, 4)) return VOID
      const v = viewOf(r).getFloat32(r.pos)
      r.pos += 4
      return { _tag: "Float32", value: v }
    }
    case 0x64: {
      // d
      if (!need(r, 8)) return VOID
      const v = viewOf(r).getFloat64(r.pos)
      r.pos += 8
      return { _tag: "Float64", value: v }
    }
    case 0x44: {
      // D
      const scale = u8(r)
      return { _tag: "Decimal", scale, value: u32(r) }
    }
    case 0x53: // S
      return { _tag: "LongString", value: longstr(r) }
    case 0x41: // A
      return { _tag: "Array", value: array(r, depth + 1) }
    case 0x54: // T
      return { _tag: "Timestamp", seconds: u64(r) }
    case 0x46: // F
      return { _tag: "Table", value: table(r, depth + 1) }
    case 0x56: // V
      return VOID
    case 0x78: // x
      return { _tag: "Bytes", value: longstr(r) }
    default:
      if (r.error === undefined) {
        r.pos--
        fail(r, "UnknownFieldType", `unknown field type tag 0x${tag.toString(16).padStart(2, "0")}`, {
          bytes: Uint8Array.of(tag)
        })
      }
      return VOID
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Sizes (validate everything, so writing cannot fail)
// ---------------------------------------------------------------------------------------------------------------

const invalid = (field: string | undefined, detail: string) => new AmqpError({ reason: "InvalidValue", field, detail })

/** Bytes of a short string including its length octet, or an error past 255 bytes. */
export const shortstrSize = (s: string, field: string | undefined): number | AmqpError => {
  if (typeof s !== "string") return invalid(field, "short string expected")
  const n = Utf8.byteLength(s)
  if (n > 255) {
    return new AmqpError({ reason: "ShortStringTooLong", field, size: n, max: 255, detail: "short strings hold at most 255 bytes of UTF-8" })
  }
  return 1 + n
}

const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === "number" && Number.isInteger(v) && v >= min && v <= max

const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const UINT64_MAX = 2n ** 64n - 1n

export const isUint64 = (v: unknown): v is bigint => typeof v === "bigint" && v >= 0n && v <= UINT64_MAX

export const tableSize = (t: FieldTable, field: string | undefined, depth = 0): number | AmqpError => {
  if (!Array.isArray(t)) return invalid(field, "field table expected (an array of [name, value] entries)")
  if (depth > maxDepth) return invalid(field, `field tables nested deeper than ${maxDepth}`)
  let size = 4
  for (const entry of t) {
    if (!Array.isArray(entry) || entry.length !== 2) return invalid(field, "field table entries are [name, value] pairs")
    const name = entry[0]
    const key = shortstrSize(name, field === undefined ? name : `${field}.${name}`)
    if (typeof key !== "number") return key
    const value = valueSize(entry[1], field === undefined ? name : `${field}.${name}`, depth)
    if (typeof value !== "number") return value
    size += key + value
  }
  return size
}

/** Bytes of a tagged value including its tag octet. */
export const valueSize = (v: FieldValue, field: string | undefined, depth: number): number | AmqpError => {
  if (typeof v !== "object" || v === null) return invalid(field, "tagged field value expected")
  switch (v._tag) {
    case "Bool":
      return typeof v.value === "boolean" ? 2 : invalid(field, "Bool needs a boolean")
    case "Int8":
      return isInt(v.value, -128, 127) ? 2 : invalid(field, `Int8 out of range: ${v.value}`)
    case "UInt8":
      return isInt(v.value, 0, 255) ? 2 : invalid(field, `UInt8 out of range: ${v.value}`)
    case "Int16":
      return isInt(v.value, -32768, 32767) ? 3 : invalid(field, `Int16 out of range: ${v.value}`)
    case "UInt16":
      return isInt(v.value, 0, 65535) ? 3 : invalid(field, `UInt16 out of range: ${v.value}`)
    case "Int32":
      return isInt(v.value, -2147483648, 2147483647) ? 5 : invalid(field, `Int32 out of range: ${v.value}`)
    case "UInt32":
      return isInt(v.value, 0, 4294967295) ? 5 : invalid(field, `UInt32 out of range: ${v.value}`)
    case "Int64":
      return typeof v.value === "bigint" && v.value >= INT64_MIN && v.value <= INT64_MAX
        ? 9
        : invalid(field, `Int64 needs a bigint in [-2^63, 2^63-1]: ${String(v.value)}`)
    case "Float32":
      return typeof v.value === "number" ? 5 : invalid(field, "Float32 needs a number")
    case "Float64":
      return typeof v.value === "number" ? 9 : invalid(field, "Float64 needs a number")
    case "Decimal":
      return isInt(v.scale, 0, 255) && isInt(v.value, 0, 4294967295)
        ? 6
        : invalid(field, `Decimal needs scale in [0, 255] and value in [0, 2^32-1]: ${v.scale}, ${v.value}`)
    case "LongString":
    case "Bytes":
      return v.value instanceof Uint8Array ? 5 + v.value.length : invalid(field, `${v._tag} needs a Uint8Array`)
    case "Timestamp":
      return isUint64(v.seconds) ? 9 : invalid(field, "Timestamp needs a bigint of seconds in [0, 2^64-1]")
    case "Array": {
      if (!Array.isArray(v.value)) return invalid(field, "Array needs an array of tagged values")
      if (depth >= maxDepth) return invalid(field, `field arrays nested deeper than ${maxDepth}`)
      let size = 5
      for (const item of v.value) {
        const n = valueSize(item, field, depth + 1)
        if (typeof n !== "number") return n
        size += n
      }
      return size
    }
    case "Table": {
      const n = tableSize(v.value, field, depth + 1)
      return typeof n === "number" ? 1 + n : n
    }
    case "Void":
      return 1
    default:
      return invalid(field, `unknown field value tag ${String((v as { readonly _tag: unknown })._tag)}`)
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Writer (inputs are validated by the size functions first)
// ---------------------------------------------------------------------------------------------------------------

export class Writer {
  view: DataView
  constructor(
    public buf: Uint8Array,
    public pos: number = 0
  ) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  }
}

export const wU8 = (w: Writer, v: number): void => {
  w.buf[w.pos++] = v
}

export const wU16 = (w: Writer, v: number): void => {
  const b = w.buf
  const p = w.pos
  b[p] = v >>> 8
  b[p + 1] = v
  w.pos = p + 2
}

export const wU32 = (w: Writer, v: number): void => {
  const b = w.buf
  const p = w.pos
  b[p] = v >>> 24
  b[p + 1] = v >>> 16
  b[p + 2] = v >>> 8
  b[p + 3] = v
  w.pos = p + 4
}

export const wU64 = (w: Writer, v: bigint): void => {
  w.view.setBigUint64(w.pos, v)
  w.pos += 8
}

/** Writes a short string already measured by `shortstrSize`. */
export const wShortstr = (w: Writer, s: string): void => {
  const n = s.length
  const b = w.buf
  let p = w.pos + 1
  // ASCII fast path; falls back as soon as a non-ASCII unit shows up.
  let i = 0
  for (; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c >= 0x80) break
    b[p++] = c
  }
  if (i === n) {
    b[w.pos] = n
    w.pos = p
    return
  }
  const len = Utf8.byteLength(s)
  b[w.pos] = len
  w.pos = Utf8.write(b, w.pos + 1, s, len)
}

export const wBytes = (w: Writer, bytes: Uint8Array): void => {
  w.buf.set(bytes, w.pos)
  w.pos += bytes.length
}

export const wLongstr = (w: Writer, bytes: Uint8Array): void => {
  wU32(w, bytes.length)
  wBytes(w, bytes)
}

export const wTable = (w: Writer, t: FieldTable): void => {
  const start = w.pos
  w.pos += 4
  for (const [name, value] of t) {
    wShortstr(w, name)
    wValue(w, value)
  }
  const end = w.pos
  w.pos = start
  wU32(w, end - start - 4)
  w.pos = end
}

const wValue = (w: Writer, v: FieldValue): void => {
  switch (v._tag) {
    case "Bool":
      wU8(w, 0x74)
      wU8(w, v.value ? 1 : 0)
      return
    case "Int8":
      wU8(w, 0x62)
      wU8(w, v.value & 0xff)
      return
    case "UInt8":
      wU8(w, 0x42)
      wU8(w, v.value)
      return
    case "Int16":
      wU8(w, 0x73)
      wU16(w, v.value & 0xffff)
      return
    case "UInt16":
      wU8(w, 0x75)
      wU16(w, v.value)
      return
    case "Int32":
      wU8(w, 0x49)
      wU32(w, v.value >>> 0)
      return
    case "UInt32":
      wU8(w, 0x69)
      wU32(w, v.value)
      return
    case "Int64":
      wU8(w, 0x6c)
      w.view.setBigInt64(w.pos, v.value)
      w.pos += 8
      return
    case "Float32":
      wU8(w, 0x66)
      w.view.setFloat32(w.pos, v.value)
      w.pos += 4
      return
    case "Float64":
      wU8(w, 0x64)
      w.view.setFloat64(w.pos, v.value)
      w.pos += 8
      return
    case "Decimal":
      wU8(w, 0x44)
      wU8(w, v.scale)
      wU32(w, v.value)
      return
    case "LongString":
      wU8(w, 0x53)
      wLongstr(w, v.value)
      return
    case "Bytes":
      wU8(w, 0x78)
      wLongstr(w, v.value)
      return
    case "Timestamp":
      wU8(w, 0x54)
      wU64(w, v.seconds)
      return
    case "Array": {
      wU8(w, 0x41)
      const start = w.pos
      w.pos += 4
      for (const item of v.value) wValue(w, item)
      const end = w.pos
      w.pos = start
      wU32(w, end - start - 4)
      w.pos = end
      return
    }
    case "Table":
      wU8(w, 0x46)
      wTable(w, v.value)
      return
    case "Void":
      wU8(w, 0x56)
      return
  }
}

/** Adds ids to the error recorded in `r`, if any. */
export const annotate = (
  r: Reader,
  ids: { readonly channel?: number; readonly frameType?: number; readonly classId?: number; readonly methodId?: number }
): void => {
  const e = r.error
  if (e === undefined) return
  r.error = new AmqpError({
    reason: e.reason,
    offset: e.offset,
    channel: ids.channel ?? e.channel,
    frameType: ids.frameType ?? e.frameType,
    classId: ids.classId ?? e.classId,
    methodId: ids.methodId ?? e.methodId,
    size: e.size,
    max: e.max,
    bytes: e.bytes,
    field: e.field,
    detail: e.detail
  })
}
