/**
 * What consumers receive: deliveries with their own `ack` / `nack` / `reject`, and Schema helpers that decode
 * bodies into typed values while keeping the delivery at hand for a `nack` when decoding fails.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { ClientError } from "./ClientError.js"
import type { BasicProperties } from "./Properties.js"
import type { FieldTable } from "./Table.js"

/**
 * Settles deliveries on the channel they came from.
 *
 * @since 0.1.0
 * @category models
 */
export interface Acker {
  readonly ack: (deliveryTag: bigint, multiple: boolean) => Effect.Effect<void, ClientError>
  readonly nack: (deliveryTag: bigint, multiple: boolean, requeue: boolean) => Effect.Effect<void, ClientError>
  readonly reject: (deliveryTag: bigint, requeue: boolean) => Effect.Effect<void, ClientError>
}

/**
 * A message delivered to a consumer (`basic.deliver`) or fetched with `basic.get` (then `consumerTag` is empty and
 * `messageCount` tells how many are left).
 *
 * @since 0.1.0
 * @category models
 */
export class Delivery {
  constructor(
    readonly channel: number,
    readonly consumerTag: string,
    readonly deliveryTag: bigint,
    readonly redelivered: boolean,
    readonly exchange: string,
    readonly routingKey: string,
    readonly properties: BasicProperties,
    readonly body: Uint8Array,
    /** Messages left in the queue, for `basic.get`; `undefined` for consumer deliveries. */
    readonly messageCount: number | undefined,
    private readonly acker: Acker
  ) {}

  /** Acknowledges this delivery (and, with `multiple`, every earlier unacknowledged one on the channel). */
  ack(options?: { readonly multiple?: boolean | undefined }): Effect.Effect<void, ClientError> {
    return this.acker.ack(this.deliveryTag, options?.multiple ?? false)
  }

  /** Negatively acknowledges; requeued unless `requeue: false` (then dead-lettered or dropped). */
  nack(options?: { readonly requeue?: boolean | undefined; readonly multiple?: boolean | undefined }): Effect.Effect<void, ClientError> {
    return this.acker.nack(this.deliveryTag, options?.multiple ?? false, options?.requeue ?? true)
  }

  /** Rejects this delivery; requeued unless `requeue: false`. */
  reject(options?: { readonly requeue?: boolean | undefined }): Effect.Effect<void, ClientError> {
    return this.acker.reject(this.deliveryTag, options?.requeue ?? true)
  }

  /** The body as UTF-8 text. */
  get text(): string {
    return decoder.decode(this.body)
  }
}

const decoder = new TextDecoder()

/**
 * Options of `basic.consume`.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConsumeOptions {
  /** Default: a broker-generated tag. */
  readonly consumerTag?: string | undefined
  /** Automatic acknowledgement: the broker forgets messages once sent. Default `false`. */
  readonly noAck?: boolean | undefined
  readonly exclusive?: boolean | undefined
  /** `x-priority`, `x-stream-offset`, … */
  readonly arguments?: FieldTable | undefined
  /**
   * Per-consumer prefetch, sent as `basic.qos` (global = false) right before `basic.consume`. The stream buffers
   * at most this many deliveries. Default: no qos is sent (the channel's setting applies).
   */
  readonly prefetch?: number | undefined
  /**
   * The stream's buffer when the broker is not bounded by a prefetch (`noAck`, or prefetch 0): when it is full,
   * the connection's reader waits, which pauses the socket for every channel. Default 2048.
   */
  readonly bufferSize?: number | undefined
}

/**
 * A body that did not decode with the consumer's Schema; the delivery is kept so it can be `nack`ed.
 *
 * @since 0.1.0
 * @category errors
 */
export class BodyDecodeError extends Data.TaggedError("BodyDecodeError")<{
  readonly delivery: Delivery
  readonly cause: ParseResult.ParseError | SyntaxError
}> {
  override get message(): string {
    return `delivery ${this.delivery.deliveryTag} on channel ${this.delivery.channel}: ${this.cause.message}`
  }
}

/**
 * Decodes a delivery's body as JSON with a Schema.
 *
 * @example
 * ```ts
 * import { Consumer } from "effect-wire/amqp"
 * import * as Schema from "effect/Schema"
 *
 * const Job = Schema.Struct({ id: Schema.Number })
 * const decodeJob = Consumer.decodeJson(Job)
 * // Stream.mapEffect(deliveries, (d) => decodeJob(d).pipe(Effect.catchTag("BodyDecodeError", (e) => e.delivery.nack({ requeue: false }))))
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const decodeJson = <A, I, R>(schema: Schema.Schema<A, I, R>) => {
  const decode = Schema.decodeUnknown(schema)
  return (delivery: Delivery): Effect.Effect<A, BodyDecodeError, R> =>
    Effect.try({
      try: () => JSON.parse(delivery.text) as unknown,
      catch: (cause) => new BodyDecodeError({ delivery, cause: cause as SyntaxError })
    }).pipe(Effect.flatMap((json) => Effect.mapError(decode(json), (cause) => new BodyDecodeError({ delivery, cause }))))
}

/**
 * Decodes a delivery's body with a Schema from bytes.
 *
 * @since 0.1.0
 * @category schemas
 */
export const decodeBytes = <A, R>(schema: Schema.Schema<A, Uint8Array, R>) => {
  const decode = Schema.decodeUnknown(schema)
  return (delivery: Delivery): Effect.Effect<A, BodyDecodeError, R> =>
    Effect.mapError(decode(delivery.body), (cause) => new BodyDecodeError({ delivery, cause }))
}
