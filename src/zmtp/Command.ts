/**
 * ZMTP commands: `READY`, `ERROR`, `SUBSCRIBE`, `CANCEL`, `PING`, `PONG`, and any other command by name.
 *
 * A command body is a length-prefixed name followed by data. The security handshakes (`HELLO`, `WELCOME`,
 * `INITIATE`, `MESSAGE`) are parsed by their mechanisms from the `Unknown` form.
 *
 * @since 0.1.0
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Metadata from "./Metadata.js"
import { ZmtpError } from "./ZmtpError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type Command = Ready | Error | Subscribe | Cancel | Ping | Pong | Unknown

/**
 * @since 0.1.0
 * @category models
 */
export interface Ready {
  readonly _tag: "Ready"
  readonly metadata: Metadata.Metadata
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Error {
  readonly _tag: "Error"
  readonly reason: string
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Subscribe {
  readonly _tag: "Subscribe"
  readonly topic: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Cancel {
  readonly _tag: "Cancel"
  readonly topic: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Ping {
  readonly _tag: "Ping"
  /** Time to live in deciseconds (0: none). */
  readonly ttl: number
  /** 0..16 octets, echoed by the PONG. */
  readonly context: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Pong {
  readonly _tag: "Pong"
  readonly context: Uint8Array
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Unknown {
  readonly _tag: "Unknown"
  readonly name: string
  readonly data: Uint8Array
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const ready = (metadata: Metadata.Metadata): Ready => ({ _tag: "Ready", metadata })

/**
 * @since 0.1.0
 * @category constructors
 */
export const error = (reason: string): Error => ({ _tag: "Error", reason })

/**
 * @since 0.1.0
 * @category constructors
 */
export const subscribe = (topic: Uint8Array): Subscribe => ({ _tag: "Subscribe", topic })

/**
 * @since 0.1.0
 * @category constructors
 */
export const cancel = (topic: Uint8Array): Cancel => ({ _tag: "Cancel", topic })

/**
 * @since 0.1.0
 * @category constructors
 */
export const ping = (ttl: number, context: Uint8Array = new Uint8Array(0)): Ping => ({ _tag: "Ping", ttl, context })

/**
 * @since 0.1.0
 * @category constructors
 */
export const pong = (context: Uint8Array): Pong => ({ _tag: "Pong", context })

/**
 * @since 0.1.0
 * @category constructors
 */
export const unknown = (name: string, data: Uint8Array): Unknown => ({ _tag: "Unknown", name, data })

const latin1 = new TextDecoder("latin1")
const validName = /^[A-Za-z]{1,255}$/

/** Writes a length-prefixed name into `out`; returns the offset after it. */
const writeName = (out: Uint8Array, name: string): number => {
  out[0] = name.length
  for (let i = 0; i < name.length; i++) out[1 + i] = name.charCodeAt(i)
  return 1 + name.length
}

/**
 * A command body from a name and raw data.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRaw = (name: string, ...data: ReadonlyArray<Uint8Array>): Uint8Array => {
  let size = 1 + name.length
  for (const part of data) size += part.length
  const out = new Uint8Array(size)
  let offset = writeName(out, name)
  for (const part of data) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

/**
 * Encodes a command body (without the frame header; see `Frame.encodeCommand`).
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (command: Command): Uint8Array => {
  switch (command._tag) {
    case "Ready": {
      const out = new Uint8Array(6 + Metadata.encodedSize(command.metadata))
      Metadata.encodeInto(command.metadata, out, writeName(out, "READY"))
      return out
    }
    case "Error": {
      const reason = new TextEncoder().encode(command.reason).subarray(0, 255)
      return encodeRaw("ERROR", Uint8Array.of(reason.length), reason)
    }
    case "Subscribe":
      return encodeRaw("SUBSCRIBE", command.topic)
    case "Cancel":
      return encodeRaw("CANCEL", command.topic)
    case "Ping":
      return encodeRaw("PING", Uint8Array.of(command.ttl >>> 8, command.ttl & 0xff), command.context.subarray(0, 16))
    case "Pong":
      return encodeRaw("PONG", command.context.subarray(0, 16))
    case "Unknown":
      return encodeRaw(command.name, command.data)
  }
}

/**
 * libzmq 4.3.5 sends the ERROR that follows a refused PLAIN or CURVE handshake (ZAP status 400) as
 * `04 09 5e 52 52 4f 52 03 34 30 30`: name length 0x5e, then `"RROR"` — what a C literal `"\x05ERROR"` gives, its
 * hex escape swallowing the `E`. A name length of 0x5e cannot fit such a short body, so reading it as ERROR is
 * unambiguous.
 */
const isLibzmqError = (body: Uint8Array): boolean =>
  body.length >= 5 && body.length < 0x5f && body[0] === 0x5e && body[1] === 0x52 && body[2] === 0x52 &&
  body[3] === 0x4f && body[4] === 0x52

/**
 * Splits a command body into its name and data (a view).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeRaw = (body: Uint8Array): Either.Either<Unknown, ZmtpError> => {
  const nameLength = body[0]
  if (isLibzmqError(body)) return Either.right(unknown("ERROR", body.subarray(5)))
  if (nameLength === undefined || nameLength === 0 || nameLength + 1 > body.length) {
    return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "invalid command name length" }))
  }
  const name = latin1.decode(body.subarray(1, 1 + nameLength))
  if (!validName.test(name)) {
    return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: `invalid command name ${JSON.stringify(name)}` }))
  }
  return Either.right(unknown(name, body.subarray(1 + nameLength)))
}

/**
 * Decodes a command body. Names are compared byte-exactly, as libzmq does; unknown names come back as `Unknown`.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (body: Uint8Array): Either.Either<Command, ZmtpError> =>
  Either.flatMap(decodeRaw(body), (raw): Either.Either<Command, ZmtpError> => {
    const data = raw.data
    switch (raw.name) {
      case "READY":
        return Either.map(Metadata.decode(data), ready)
      case "ERROR": {
        const length = data[0]
        if (length === undefined || length + 1 > data.length) {
          return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "truncated ERROR reason" }))
        }
        return Either.right(error(latin1.decode(data.subarray(1, 1 + length))))
      }
      case "SUBSCRIBE":
        return Either.right(subscribe(data))
      case "CANCEL":
        return Either.right(cancel(data))
      case "PING": {
        if (data.length < 2 || data.length > 18) {
          return Either.left(new ZmtpError({ reason: "MalformedCommand", detail: "PING must carry 2..18 bytes" }))
        }
        return Either.right(ping((data[0]! << 8) | data[1]!, data.subarray(2)))
      }
      case "PONG":
        return Either.right(pong(data.subarray(0, 16)))
      default:
        return Either.right(raw)
    }
  })

const Bytes = Schema.Uint8ArrayFromSelf

/**
 * The in-memory form of a command.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandFromSelf: Schema.Schema<Command> = Schema.Union(
  Schema.TaggedStruct("Ready", { metadata: Metadata.MetadataFromSelf }),
  Schema.TaggedStruct("Error", { reason: Schema.String.pipe(Schema.pattern(/^[\x21-\x7e ]{0,255}$/)) }),
  Schema.TaggedStruct("Subscribe", { topic: Bytes }),
  Schema.TaggedStruct("Cancel", { topic: Bytes }),
  Schema.TaggedStruct("Ping", {
    ttl: Schema.Int.pipe(Schema.between(0, 0xffff)),
    context: Bytes.pipe(Schema.filter((b) => b.length <= 16 || "at most 16 bytes"))
  }),
  Schema.TaggedStruct("Pong", { context: Bytes.pipe(Schema.filter((b) => b.length <= 16 || "at most 16 bytes")) }),
  Schema.TaggedStruct("Unknown", {
    name: Schema.String.pipe(
      Schema.pattern(validName),
      Schema.filter((n) => !["READY", "ERROR", "SUBSCRIBE", "CANCEL", "PING", "PONG"].includes(n) || "a known name")
    ),
    data: Bytes
  })
)

/**
 * `Schema<Command, Uint8Array>` (a command body) over the same codec the connections use.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CommandFromBytes: Schema.Schema<Command, Uint8Array> = Schema.transformOrFail(Bytes, CommandFromSelf, {
  strict: true,
  decode: (bytes, _, ast) => Either.mapLeft(decode(bytes), (e) => new ParseResult.Type(ast, bytes, e.detail)),
  encode: (command) => ParseResult.succeed(encode(command))
})
