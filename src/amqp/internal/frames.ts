/**
 * Frame encoding (sizes first, then one write into a preallocated buffer) and frame decoding at an offset.
 */
import { AmqpError } from "../AmqpError.js"
import * as C from "../Constants.js"
import type { BodyFrame, Frame, HeaderFrame, HeartbeatFrame, MethodFrame, Publish } from "../Frame.js"
import type { Method } from "../Methods.js"
import * as Methods from "./methods.js"
import * as Properties from "./properties.js"
import * as Wire from "./wire.js"

const BASIC = 60 as const

const tooLarge = (size: number, max: number, channel: number, frameType: number, detail: string) =>
  new AmqpError({ reason: "FrameTooLarge", size, max, channel, frameType, detail })

const badChannel = (channel: unknown) =>
  new AmqpError({ reason: "InvalidValue", field: "channel", detail: `channel must be an integer in [0, 65535]: ${String(channel)}` })

const isChannel = (c: unknown): c is number => typeof c === "number" && Number.isInteger(c) && c >= 0 && c <= 0xffff

/** Whole-frame size (8 bytes of overhead included) of any frame, checking it. */
export const frameSize = (frame: Frame, frameMax: number): number | AmqpError => {
  if (!isChannel(frame.channel)) return badChannel(frame.channel)
  let payload: number | AmqpError
  switch (frame._tag) {
    case "Method": {
      const c = Methods.byTag.get(frame.method?._tag)
      if (c === undefined) {
        return new AmqpError({ reason: "InvalidValue", field: "method", detail: `unknown method tag ${String(frame.method?._tag)}` })
      }
      payload = Methods.size(c, frame.method)
      break
    }
    case "Header":
      if (frame.classId !== BASIC) {
        return new AmqpError({ reason: "InvalidValue", field: "classId", detail: "only the basic class (60) carries content" })
      }
      if (!isChannel(frame.weight)) return new AmqpError({ reason: "InvalidValue", field: "weight", detail: "weight must be a short" })
      if (!Wire.isUint64(frame.bodySize)) {
        return new AmqpError({ reason: "InvalidValue", field: "bodySize", detail: "bodySize must be a bigint in [0, 2^64-1]" })
      }
      payload = Properties.size(frame.properties)
      if (typeof payload === "number") payload += 12
      break
    case "Body":
      if (!(frame.payload instanceof Uint8Array)) return new AmqpError({ reason: "InvalidValue", field: "payload", detail: "Uint8Array expected" })
      payload = frame.payload.length
      break
    case "Heartbeat":
      payload = 0
      break
    default:
      return new AmqpError({ reason: "InvalidValue", detail: `unknown frame tag ${String((frame as { readonly _tag: unknown })._tag)}` })
  }
  if (typeof payload !== "number") return payload
  const size = payload + C.FRAME_OVERHEAD
  if (frameMax > 0 && size > frameMax) {
    return tooLarge(size, frameMax, frame.channel, typeCode(frame), "frame exceeds frame_max")
  }
  return size
}

const typeCode = (frame: Frame): number =>
  frame._tag === "Method" ? C.FRAME_METHOD : frame._tag === "Header" ? C.FRAME_HEADER : frame._tag === "Body" ? C.FRAME_BODY : C.FRAME_HEARTBEAT

/** Writes a frame checked by `frameSize`. */
export const writeFrame = (w: Wire.Writer, frame: Frame): void => {
  const start = w.pos
  Wire.wU8(w, typeCode(frame))
  Wire.wU16(w, frame.channel)
  w.pos += 4
  switch (frame._tag) {
    case "Method":
      Methods.write(w, Methods.byTag.get(frame.method._tag)!, frame.method)
      break
    case "Header":
      Wire.wU16(w, frame.classId)
      Wire.wU16(w, frame.weight)
      Wire.wU64(w, frame.bodySize)
      Properties.write(w, frame.properties)
      break
    case "Body":
      Wire.wBytes(w, frame.payload)
      break
    case "Heartbeat":
      break
  }
  const end = w.pos
  w.pos = start + 3
  Wire.wU32(w, end - start - 7)
  w.pos = end
  Wire.wU8(w, C.FRAME_END)
}

const publishMethod = Methods.byTag.get("BasicPublish")!

/** Bytes of a whole publish: method frame, header frame, and the body in frames of at most `frameMax − 8` bytes. */
export const publishSize = (p: Publish, frameMax: number): number | AmqpError => {
  if (!isChannel(p.channel)) return badChannel(p.channel)
  const body = p.body
  if (!(body instanceof Uint8Array)) return new AmqpError({ reason: "InvalidValue", field: "body", detail: "Uint8Array expected" })
  const exchange = Wire.shortstrSize(p.exchange ?? "", "basic.publish.exchange")
  if (typeof exchange !== "number") return exchange
  const routingKey = Wire.shortstrSize(p.routingKey ?? "", "basic.publish.routingKey")
  if (typeof routingKey !== "number") return routingKey
  if (p.mandatory !== undefined && typeof p.mandatory !== "boolean") {
    return new AmqpError({ reason: "InvalidValue", field: "basic.publish.mandatory", detail: "boolean expected" })
  }
  if (p.immediate !== undefined && typeof p.immediate !== "boolean") {
    return new AmqpError({ reason: "InvalidValue", field: "basic.publish.immediate", detail: "boolean expected" })
  }
  // ids 4 + ticket 2 + strings + bits 1
  const method = 7 + exchange + routingKey + C.FRAME_OVERHEAD
  const props = Properties.size(p.properties)
  if (typeof props !== "number") return props
  const header = 12 + props + C.FRAME_OVERHEAD
  if (frameMax > 0) {
    if (frameMax <= C.FRAME_OVERHEAD) return tooLarge(0, frameMax, p.channel, C.FRAME_BODY, "frame_max leaves no room for a body")
    if (method > frameMax) return tooLarge(method, frameMax, p.channel, C.FRAME_METHOD, "basic.publish exceeds frame_max")
    if (header > frameMax) return tooLarge(header, frameMax, p.channel, C.FRAME_HEADER, "content header exceeds frame_max")
  }
  const chunk = frameMax > 0 ? frameMax - C.FRAME_OVERHEAD : 0xffffffff
  const frames = body.length === 0 ? 0 : Math.ceil(body.length / chunk)
  return method + header + body.length + frames * C.FRAME_OVERHEAD
}

/** Writes a publish checked by `publishSize`. */
export const writePublish = (w: Wire.Writer, p: Publish, frameMax: number): void => {
  const b = w.buf
  const channel = p.channel
  const chHi = channel >>> 8
  const chLo = channel & 0xff
  // method frame
  let start = w.pos
  b[start] = C.FRAME_METHOD
  b[start + 1] = chHi
  b[start + 2] = chLo
  w.pos = start + 7
  Wire.wU16(w, publishMethod.classId)
  Wire.wU16(w, publishMethod.methodId)
  Wire.wU16(w, 0)
  Wire.wShortstr(w, p.exchange ?? "")
  Wire.wShortstr(w, p.routingKey ?? "")
  b[w.pos++] = (p.mandatory === true ? 1 : 0) | (p.immediate === true ? 2 : 0)
  let end = w.pos
  w.pos = start + 3
  Wire.wU32(w, end - start - 7)
  b[end] = C.FRAME_END
  // header frame
  start = end + 1
  b[start] = C.FRAME_HEADER
  b[start + 1] = chHi
  b[start + 2] = chLo
  w.pos = start + 7
  Wire.wU16(w, BASIC)
  Wire.wU16(w, 0)
  const body = p.body
  const length = body.length
  // body-size as two 32-bit halves: no bigint on the hot path
  Wire.wU32(w, Math.floor(length / 0x100000000))
  Wire.wU32(w, length >>> 0)
  Properties.write(w, p.properties)
  end = w.pos
  w.pos = start + 3
  Wire.wU32(w, end - start - 7)
  b[end] = C.FRAME_END
  w.pos = end + 1
  // body frames
  const chunk = frameMax > 0 ? frameMax - C.FRAME_OVERHEAD : 0xffffffff
  for (let offset = 0; offset < length; offset += chunk) {
    const n = Math.min(chunk, length - offset)
    const at = w.pos
    b[at] = C.FRAME_BODY
    b[at + 1] = chHi
    b[at + 2] = chLo
    b[at + 3] = n >>> 24
    b[at + 4] = n >>> 16
    b[at + 5] = n >>> 8
    b[at + 6] = n
    if (n === 1) b[at + 7] = body[offset]!
    else b.set(n === length ? body : body.subarray(offset, offset + n), at + 7)
    b[at + 7 + n] = C.FRAME_END
    w.pos = at + 8 + n
  }
}

/**
 * Decodes the frame of type `type` on `channel` whose payload is `buf[start, start + size)` and whose frame-end
 * octet has been checked. Errors land in the returned reader's `error`.
 */
export const decodePayload = (
  r: Wire.Reader,
  type: number,
  channel: number
): Frame | undefined => {
  switch (type) {
    case C.FRAME_METHOD: {
      const method = Methods.decode(r)
      if (method === undefined) {
        Wire.annotate(r, { channel, frameType: type })
        return undefined
      }
      const frame: MethodFrame = { _tag: "Method", channel, method: method as Method }
      return frame
    }
    case C.FRAME_HEADER: {
      const classId = Wire.u16(r)
      const weight = Wire.u16(r)
      const bodySize = Wire.u64(r)
      if (r.error === undefined && classId !== BASIC) {
        r.pos -= 12
        Wire.fail(r, "Malformed", `content header for class ${classId}: only basic (60) carries content`)
      }
      const properties = Properties.decode(r)
      if (r.error === undefined && r.pos !== r.end) Wire.fail(r, "Malformed", `${r.end - r.pos} bytes after the properties`)
      if (r.error !== undefined) {
        Wire.annotate(r, { channel, frameType: type, classId })
        return undefined
      }
      const frame: HeaderFrame = { _tag: "Header", channel, classId: BASIC, weight, bodySize, properties }
      return frame
    }
    case C.FRAME_BODY: {
      const frame: BodyFrame = { _tag: "Body", channel, payload: r.buf.subarray(r.pos, r.end) }
      r.pos = r.end
      return frame
    }
    case C.FRAME_HEARTBEAT: {
      if (r.end !== r.pos) {
        Wire.fail(r, "Malformed", "heartbeat frames have an empty payload")
        Wire.annotate(r, { channel, frameType: type })
        return undefined
      }
      const frame: HeartbeatFrame = { _tag: "Heartbeat", channel }
      return frame
    }
    default:
      Wire.fail(r, "UnknownFrameType", `frame type ${type} is not 1, 2, 3 or 8`)
      Wire.annotate(r, { channel, frameType: type })
      return undefined
  }
}
