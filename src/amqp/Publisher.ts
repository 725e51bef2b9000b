/**
 * What publishers send: options of `basic.publish`, returned messages, and Schema helpers that encode typed
 * values into bodies with their content type.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { BasicProperties } from "./Properties.js"

/**
 * Options of one publish. There is no `immediate`: RabbitMQ 3.0+ closes the connection for it (540).
 *
 * @since 0.1.0
 * @category models
 */
export interface PublishOptions {
  /** Return the message (`basic.return`, usually 312 NO_ROUTE) when no queue receives it. Default `false`. */
  readonly mandatory?: boolean | undefined
  readonly properties?: BasicProperties | undefined
}

/**
 * A message the broker could not route (`basic.return`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ReturnedMessage {
  readonly channel: number
  readonly replyCode: number
  readonly replyText: string
  readonly exchange: string
  readonly routingKey: string
  readonly properties: BasicProperties
  readonly body: Uint8Array
}

/**
 * A body with the properties that describe it.
 *
 * @since 0.1.0
 * @category models
 */
export interface EncodedBody {
  readonly body: Uint8Array
  readonly properties: BasicProperties
}

const encoder = new TextEncoder()

/**
 * Encodes a value as JSON with a Schema, with `content-type: application/json`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const encodeJson = <A, I, R>(schema: Schema.Schema<A, I, R>) => {
  const encode = Schema.encode(schema)
  return (value: A, properties?: BasicProperties): Effect.Effect<EncodedBody, ParseResult.ParseError, R> =>
    Effect.map(encode(value), (json) => ({
      body: encoder.encode(JSON.stringify(json)),
      properties: { contentType: "application/json", ...properties }
    }))
}

/**
 * UTF-8 bytes of a string.
 *
 * @since 0.1.0
 * @category utils
 */
export const text = (s: string): Uint8Array => encoder.encode(s)
