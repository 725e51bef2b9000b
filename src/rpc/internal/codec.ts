/**
 * One connection's codec: an `RpcSerialization` parser, behind a framing when the serialization does not delimit
 * messages itself. Parsers of `@effect/rpc` throw on bad input; this is where that is turned into values.
 */
import type * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as Either from "effect/Either"
import * as Framing from "../../transport/Framing.js"
import { RpcProtocolError } from "../RpcProtocolError.js"

/** How a byte-stream protocol delimits messages. */
export type FramingOption = "serialization" | Framing.Codec

export interface WireCodec {
  /** The messages completed by `chunks`; a failure leaves the codec unusable (the connection must end). */
  readonly decode: (chunks: ReadonlyArray<Uint8Array>) => Either.Either<ReadonlyArray<unknown>, RpcProtocolError>
  /** The chunks to write for one message, or none when the serialization has nothing to send. */
  readonly encode: (message: unknown) => Either.Either<ReadonlyArray<Uint8Array>, RpcProtocolError>
}

const encoder = new TextEncoder()
const none: ReadonlyArray<never> = []

const toBytes = (data: Uint8Array | string): Uint8Array => typeof data === "string" ? encoder.encode(data) : data

const decodeError = (cause: unknown) =>
  new RpcProtocolError({ reason: "Decode", detail: cause instanceof Error ? cause.message : String(cause), cause })

const encodeError = (cause: unknown) =>
  new RpcProtocolError({ reason: "Encode", detail: cause instanceof Error ? cause.message : String(cause), cause })

/**
 * Chooses the framing for a byte stream: the serialization's own when it has one, else 4-byte big-endian length
 * prefixes, so `json` and `jsonRpc` work over TCP as well as `ndjson` and `msgPack` do.
 */
export const resolveFraming = (
  serialization: RpcSerialization.RpcSerialization["Type"],
  framing: FramingOption | undefined
): Framing.Codec | undefined => {
  if (framing === undefined) return serialization.includesFraming ? undefined : Framing.lengthPrefixed()
  return framing === "serialization" ? undefined : framing
}

/** A codec for a byte stream; `framing` undefined means the serialization's parser cuts the stream itself. */
export const make = (
  serialization: RpcSerialization.RpcSerialization["Type"],
  framing: Framing.Codec | undefined
): WireCodec => {
  const parser = serialization.unsafeMake()
  if (framing === undefined) {
    return {
      decode: (chunks) => {
        try {
          if (chunks.length === 1) return Either.right(parser.decode(chunks[0]!))
          const out: Array<unknown> = []
          for (const chunk of chunks) {
            const messages = parser.decode(chunk)
            for (let i = 0; i < messages.length; i++) out.push(messages[i])
          }
          return Either.right(out)
        } catch (cause) {
          return Either.left(decodeError(cause))
        }
      },
      encode: (message) => {
        try {
          const data = parser.encode(message)
          return Either.right(data === undefined ? none : [toBytes(data)])
        } catch (cause) {
          return Either.left(encodeError(cause))
        }
      }
    }
  }
  const decoder = framing.decoder()
  return {
    decode: (chunks) => {
      const frames = decoder.pushAll(chunks)
      if (Either.isLeft(frames)) return Either.left(decodeError(frames.left))
      try {
        const out: Array<unknown> = []
        for (const frame of frames.right) {
          const messages = parser.decode(frame)
          for (let i = 0; i < messages.length; i++) out.push(messages[i])
        }
        // Past a framing error the stream cannot be resynchronised: the connection ends, whatever came before.
        return decoder.error === undefined ? Either.right(out) : Either.left(decodeError(decoder.error))
      } catch (cause) {
        return Either.left(decodeError(cause))
      }
    },
    encode: (message) => {
      try {
        const data = parser.encode(message)
        if (data === undefined) return Either.right(none)
        return Either.mapLeft(framing.encodeChunks(toBytes(data)), encodeError)
      } catch (cause) {
        return Either.left(encodeError(cause))
      }
    }
  }
}

/** A codec for transports that delimit messages (one frame, one message): no framing, no buffering. */
export const makeMessage = (serialization: RpcSerialization.RpcSerialization["Type"]): WireCodec => make(serialization, undefined)
