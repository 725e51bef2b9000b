/**
 * The content header's basic properties: 16-bit flag words (bit 15 = first property, bit 0 = another word
 * follows), then the present properties in flag order.
 */
import { AmqpError } from "../AmqpError.js"
import type { BasicProperties } from "../Properties.js"
import type { FieldTable } from "../Table.js"
import * as Wire from "./wire.js"

const MAX_DATE_SECONDS = 8_640_000_000_000

const invalid = (field: string, detail: string) => new AmqpError({ reason: "InvalidValue", field, detail })

const str = (v: unknown, field: string): number | AmqpError => Wire.shortstrSize(v as string, field)

const octet = (v: unknown, field: string): number | AmqpError =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255 ? 1 : invalid(field, `octet expected, got ${String(v)}`)

/** Bytes of the flags word and the present properties, checking each value. */
export const size = (p: BasicProperties | undefined): number | AmqpError => {
  if (p === undefined) return 2
  let n = 2
  let s: number | AmqpError
  if (p.contentType !== undefined) {
    if (typeof (s = str(p.contentType, "contentType")) !== "number") return s
    n += s
  }
  if (p.contentEncoding !== undefined) {
    if (typeof (s = str(p.contentEncoding, "contentEncoding")) !== "number") return s
    n += s
  }
  if (p.headers !== undefined) {
    if (typeof (s = Wire.tableSize(p.headers, "headers")) !== "number") return s
    n += s
  }
  if (p.deliveryMode !== undefined) {
    if (typeof (s = octet(p.deliveryMode, "deliveryMode")) !== "number") return s
    n += 1
  }
  if (p.priority !== undefined) {
    if (typeof (s = octet(p.priority, "priority")) !== "number") return s
    n += 1
  }
  if (p.correlationId !== undefined) {
    if (typeof (s = str(p.correlationId, "correlationId")) !== "number") return s
    n += s
  }
  if (p.replyTo !== undefined) {
    if (typeof (s = str(p.replyTo, "replyTo")) !== "number") return s
    n += s
  }
  if (p.expiration !== undefined) {
    if (typeof (s = str(p.expiration, "expiration")) !== "number") return s
    n += s
  }
  if (p.messageId !== undefined) {
    if (typeof (s = str(p.messageId, "messageId")) !== "number") return s
    n += s
  }
  if (p.timestamp !== undefined) {
    const t = p.timestamp
    if (!(t instanceof Date) || !Number.isFinite(t.getTime()) || t.getTime() < 0) {
      return invalid("timestamp", "a valid Date at or after 1970-01-01 expected")
    }
    n += 8
  }
  if (p.type !== undefined) {
    if (typeof (s = str(p.type, "type")) !== "number") return s
    n += s
  }
  if (p.userId !== undefined) {
    if (typeof (s = str(p.userId, "userId")) !== "number") return s
    n += s
  }
  if (p.appId !== undefined) {
    if (typeof (s = str(p.appId, "appId")) !== "number") return s
    n += s
  }
  if (p.clusterId !== undefined) {
    if (typeof (s = str(p.clusterId, "clusterId")) !== "number") return s
    n += s
  }
  return n
}

/** Writes the flags word and the present properties (checked by `size`). */
export const write = (w: Wire.Writer, p: BasicProperties | undefined): void => {
  if (p === undefined) {
    Wire.wU16(w, 0)
    return
  }
  const flagsAt = w.pos
  w.pos += 2
  let flags = 0
  if (p.contentType !== undefined) {
    flags |= 0x8000
    Wire.wShortstr(w, p.contentType)
  }
  if (p.contentEncoding !== undefined) {
    flags |= 0x4000
    Wire.wShortstr(w, p.contentEncoding)
  }
  if (p.headers !== undefined) {
    flags |= 0x2000
    Wire.wTable(w, p.headers)
  }
  if (p.deliveryMode !== undefined) {
    flags |= 0x1000
    Wire.wU8(w, p.deliveryMode)
  }
  if (p.priority !== undefined) {
    flags |= 0x0800
    Wire.wU8(w, p.priority)
  }
  if (p.correlationId !== undefined) {
    flags |= 0x0400
    Wire.wShortstr(w, p.correlationId)
  }
  if (p.replyTo !== undefined) {
    flags |= 0x0200
    Wire.wShortstr(w, p.replyTo)
  }
  if (p.expiration !== undefined) {
    flags |= 0x0100
    Wire.wShortstr(w, p.expiration)
  }
  if (p.messageId !== undefined) {
    flags |= 0x0080
    Wire.wShortstr(w, p.messageId)
  }
  if (p.timestamp !== undefined) {
    flags |= 0x0040
    Wire.wU64(w, BigInt(Math.floor(p.timestamp.getTime() / 1000)))
  }
  if (p.type !== undefined) {
    flags |= 0x0020
    Wire.wShortstr(w, p.type)
  }
  if (p.userId !== undefined) {
    flags |= 0x0010
    Wire.wShortstr(w, p.userId)
  }
  if (p.appId !== undefined) {
    flags |= 0x0008
    Wire.wShortstr(w, p.appId)
  }
  if (p.clusterId !== undefined) {
    flags |= 0x0004
    Wire.wShortstr(w, p.clusterId)
  }
  w.buf[flagsAt] = flags >>> 8
  w.buf[flagsAt + 1] = flags & 0xff
}

const NONE: BasicProperties = {}

/** Decodes the flags word(s) and the properties they announce. Errors land in `r`. */
export const decode = (r: Wire.Reader): BasicProperties => {
  const flags = Wire.u16(r)
  if (flags & 0x0001) {
    // Continuation words: basic has 14 properties, so any further flag set is unknown.
    let more = 0x0001
    while (more & 0x0001 && r.error === undefined) {
      more = Wire.u16(r)
      if (more !== 0 && r.error === undefined) {
        Wire.fail(r, "Malformed", `unknown property flags 0x${more.toString(16)} in a continuation word`)
      }
    }
  }
  if (flags & 0x0002) Wire.fail(r, "Malformed", "unknown property flag 0x0002")
  if (flags === 0 || r.error !== undefined) return NONE
  const p: {
    -readonly [K in keyof BasicProperties]: BasicProperties[K]
  } = {}
  if (flags & 0x8000) p.contentType = field(r, "contentType")
  if (flags & 0x4000) p.contentEncoding = field(r, "contentEncoding")
  if (flags & 0x2000) {
    r.field = "headers"
    p.headers = Wire.table(r) as FieldTable
  }
  if (flags & 0x1000) p.deliveryMode = Wire.u8(r)
  if (flags & 0x0800) p.priority = Wire.u8(r)
  if (flags & 0x0400) p.correlationId = field(r, "correlationId")
  if (flags & 0x0200) p.replyTo = field(r, "replyTo")
  if (flags & 0x0100) p.expiration = field(r, "expiration")
  if (flags & 0x0080) p.messageId = field(r, "messageId")
  if (flags & 0x0040) {
    r.field = "timestamp"
    // Two 32-bit halves: no bigint on the delivery path.
    const seconds = Wire.u32(r) * 0x100000000 + Wire.u32(r)
    if (seconds > MAX_DATE_SECONDS) Wire.fail(r, "Malformed", `timestamp ${seconds} s is beyond the range of a Date`)
    p.timestamp = new Date(seconds * 1000)
  }
  if (flags & 0x0020) p.type = field(r, "type")
  if (flags & 0x0010) p.userId = field(r, "userId")
  if (flags & 0x0008) p.appId = field(r, "appId")
  if (flags & 0x0004) p.clusterId = field(r, "clusterId")
  r.field = undefined
  return p
}

const field = (r: Wire.Reader, name: string): string => {
  r.field = name
  return Wire.shortstr(r)
}
