/**
 * The method codec: one interpreter over the data in `Spec.methods` (no per-method code).
 */
import { AmqpError } from "../AmqpError.js"
import * as Spec from "../Spec.js"
import type { FieldTable } from "../Table.js"
import * as Utf8 from "./utf8.js"
import * as Wire from "./wire.js"

const OCTET = 0
const SHORT = 1
const LONG = 2
const LONGLONG = 3
const SHORTSTR = 4
const LONGSTR = 5
const BIT = 6
const TABLE = 7

const codes: Record<Spec.ArgType, number> = {
  octet: OCTET,
  short: SHORT,
  long: LONG,
  longlong: LONGLONG,
  shortstr: SHORTSTR,
  longstr: LONGSTR,
  bit: BIT,
  table: TABLE
}

/** A method definition prepared for the interpreter. */
export interface Compiled {
  readonly definition: Spec.MethodDefinition
  readonly tag: string
  readonly classId: number
  readonly methodId: number
  readonly names: ReadonlyArray<string>
  readonly types: ReadonlyArray<number>
  /** `field` names for errors: `basic.publish.routingKey`. */
  readonly fields: ReadonlyArray<string>
  /** Defaults in their in-memory form; `undefined` where the argument is required. */
  readonly defaults: ReadonlyArray<unknown>
  /** Bytes of the ids and of every fixed-size argument, bits packed. */
  readonly fixedSize: number
}

const defaultValue = (type: Spec.ArgType, value: number | string | boolean | undefined): unknown => {
  if (value === undefined) return undefined
  switch (type) {
    case "longlong":
      return BigInt(value)
    case "longstr":
      return Utf8.encode(String(value))
    case "table":
      return []
    default:
      return value
  }
}

export const compile = (definition: Spec.MethodDefinition): Compiled => {
  let fixedSize = 4
  let bitRun = 0
  for (const [, type] of definition.args) {
    if (type === "bit") {
      if (bitRun % 8 === 0) fixedSize += 1
      bitRun++
      continue
    }
    bitRun = 0
    fixedSize += type === "octet" ? 1 : type === "short" ? 2 : type === "long" ? 4 : type === "longlong" ? 8 : 0
  }
  return {
    definition,
    tag: definition.tag,
    classId: definition.classId,
    methodId: definition.methodId,
    names: definition.args.map((a) => a[0]),
    types: definition.args.map((a) => codes[a[1]]),
    fields: definition.args.map((a) => `${definition.name}.${a[0]}`),
    defaults: definition.args.map((a) => defaultValue(a[1], a[2])),
    fixedSize
  }
}

export const all: ReadonlyArray<Compiled> = Spec.methods.map(compile)

export const byTag: ReadonlyMap<string, Compiled> = new Map(all.map((c) => [c.tag, c]))

const byId: ReadonlyMap<number, Compiled> = new Map(all.map((c) => [c.classId * 65536 + c.methodId, c]))

export const lookup = (classId: number, methodId: number): Compiled | undefined => byId.get(classId * 65536 + methodId)

/** The in-memory shape of any method: its `_tag` plus its arguments by name. */
export type AnyMethod = { readonly _tag: string } & { readonly [arg: string]: unknown }

/**
 * Decodes a method payload (class id and method id included) spanning `r.pos` to `r.end`. Errors land in `r`.
 */
export const decode = (r: Wire.Reader): AnyMethod | undefined => {
  const start = r.pos
  const classId = Wire.u16(r)
  const methodId = Wire.u16(r)
  if (r.error !== undefined) return undefined
  const c = lookup(classId, methodId)
  if (c === undefined) {
    r.pos = start
    Wire.fail(r, "UnknownMethod", `no method ${classId}.${methodId} in AMQP 0-9-1 or RabbitMQ's extensions`)
    Wire.annotate(r, { classId, methodId })
    return undefined
  }
  const out = decodeArgs(r, c)
  if (r.error !== undefined) {
    Wire.annotate(r, { classId, methodId })
    return undefined
  }
  return out
}

/** Decodes the arguments of method `c` from `r.pos` to `r.end` (all of it). Errors land in `r`. */
export const decodeArgs = (r: Wire.Reader, c: Compiled): AnyMethod => {
  const out: Record<string, unknown> = { _tag: c.tag }
  const { names, types, fields } = c
  let bits = 0
  let bit = 8
  for (let i = 0; i < types.length; i++) {
    const type = types[i]
    if (type === BIT) {
      if (bit === 8) {
        bits = Wire.u8(r)
        bit = 0
      }
      out[names[i]!] = (bits & (1 << bit)) !== 0
      bit++
      continue
    }
    bit = 8
    r.field = fields[i]
    switch (type) {
      case OCTET:
        out[names[i]!] = Wire.u8(r)
        break
      case SHORT:
        out[names[i]!] = Wire.u16(r)
        break
      case LONG:
        out[names[i]!] = Wire.u32(r)
        break
      case LONGLONG:
        out[names[i]!] = Wire.u64(r)
        break
      case SHORTSTR:
        out[names[i]!] = Wire.shortstr(r)
        break
      case LONGSTR:
        out[names[i]!] = Wire.longstr(r)
        break
      case TABLE:
        out[names[i]!] = Wire.table(r)
        break
    }
  }
  r.field = undefined
  if (r.error === undefined && r.pos !== r.end) {
    Wire.fail(r, "Malformed", `${r.end - r.pos} bytes after the arguments of ${c.definition.name}`)
  }
  return out as AnyMethod
}

const invalid = (field: string, detail: string) => new AmqpError({ reason: "InvalidValue", field, detail })

const isInt = (v: unknown, max: number): boolean => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= max

/**
 * The payload size of a method (ids included), checking every argument; missing arguments take their defaults.
 */
export const size = (c: Compiled, m: AnyMethod): number | AmqpError => {
  let n = c.fixedSize
  const { names, types, fields, defaults } = c
  for (let i = 0; i < types.length; i++) {
    const value = m[names[i]!] ?? defaults[i]
    switch (types[i]) {
      case OCTET:
        if (!isInt(value, 0xff)) return invalid(fields[i]!, `octet expected, got ${String(value)}`)
        break
      case SHORT:
        if (!isInt(value, 0xffff)) return invalid(fields[i]!, `short expected, got ${String(value)}`)
        break
      case LONG:
        if (!isInt(value, 0xffffffff)) return invalid(fields[i]!, `long expected, got ${String(value)}`)
        break
      case LONGLONG:
        if (!Wire.isUint64(value)) return invalid(fields[i]!, `longlong (bigint) expected, got ${String(value)}`)
        break
      case BIT:
        if (typeof value !== "boolean") return invalid(fields[i]!, `bit (boolean) expected, got ${String(value)}`)
        break
      case SHORTSTR: {
        const s = Wire.shortstrSize(value as string, fields[i])
        if (typeof s !== "number") return s
        n += s
        break
      }
      case LONGSTR:
        if (!(value instanceof Uint8Array)) return invalid(fields[i]!, "longstr (Uint8Array) expected")
        n += 4 + value.length
        break
      case TABLE: {
        const s = Wire.tableSize(value as FieldTable, fields[i])
        if (typeof s !== "number") return s
        n += s
        break
      }
    }
  }
  return n
}

/** Writes a method payload already checked by `size`. */
export const write = (w: Wire.Writer, c: Compiled, m: AnyMethod): void => {
  Wire.wU16(w, c.classId)
  Wire.wU16(w, c.methodId)
  const { names, types, defaults } = c
  let bits = 0
  let bit = 0
  let bitPos = -1
  for (let i = 0; i < types.length; i++) {
    const value = m[names[i]!] ?? defaults[i]
    const type = types[i]
    if (type === BIT) {
      if (bitPos < 0 || bit === 8) {
        if (bitPos >= 0) w.buf[bitPos] = bits
        bitPos = w.pos++
        bits = 0
        bit = 0
      }
      if (value === true) bits |= 1 << bit
      bit++
      continue
    }
    if (bitPos >= 0) {
      w.buf[bitPos] = bits
      bitPos = -1
    }
    switch (type) {
      case OCTET:
        Wire.wU8(w, value as number)
        break
      case SHORT:
        Wire.wU16(w, value as number)
        break
      case LONG:
        Wire.wU32(w, value as number)
        break
      case LONGLONG:
        Wire.wU64(w, value as bigint)
        break
      case SHORTSTR:
        Wire.wShortstr(w, value as string)
        break
      case LONGSTR:
        Wire.wLongstr(w, value as Uint8Array)
        break
      case TABLE:
        Wire.wTable(w, value as FieldTable)
        break
    }
  }
  if (bitPos >= 0) w.buf[bitPos] = bits
}
