/**
 * The errors of the AMQP client: every way a connection, channel, consumer or publish can end.
 *
 * Each error is its own tagged class so programs can `Effect.catchTag("ChannelClosed", …)`; `ClientError` is
 * their union. Closes initiated by the broker carry its reply code and text, and the class and method ids of the
 * method that caused them.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Predicate from "effect/Predicate"

/**
 * The broker's reason for closing a channel or connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface CloseReason {
  /** The AMQP reply code: 404 NOT_FOUND, 406 PRECONDITION_FAILED, 320 CONNECTION_FORCED, … */
  readonly replyCode: number
  readonly replyText: string
  /** The class of the method that caused the close, or 0. */
  readonly classId: number
  /** The method that caused the close, or 0. */
  readonly methodId: number
}

const describeClose = (what: string, r: CloseReason) =>
  `${what} closed: ${r.replyCode} ${r.replyText}` + (r.classId === 0 ? "" : ` (method ${r.classId}.${r.methodId})`)

/**
 * A channel was closed, by the broker (with its reply code) or by the client. Every pending request, unconfirmed
 * publish and consumer of that channel fails with it; other channels keep working.
 *
 * @since 0.1.0
 * @category errors
 */
export class ChannelClosed extends Data.TaggedError("ChannelClosed")<CloseReason & {
  readonly channel: number
  /** `true` when the broker closed the channel, `false` when this client did. */
  readonly byBroker: boolean
}> {
  override get message(): string {
    return describeClose(`channel ${this.channel}`, this)
  }
}

/**
 * The connection was closed with the AMQP close handshake, by the broker (with its reply code) or by the client.
 * Every channel and pending operation of the connection fails with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosed extends Data.TaggedError("ConnectionClosed")<CloseReason & {
  readonly byBroker: boolean
}> {
  override get message(): string {
    return describeClose("connection", this)
  }
}

/**
 * The connection ended without a close handshake: the socket failed or reached EOF, the heartbeat stopped, or
 * the broker closed the socket during the handshake.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionLost extends Data.TaggedError("ConnectionLost")<{
  readonly reason: "Transport" | "Eof" | "HeartbeatTimeout" | "HandshakeClosed"
  readonly detail: string
  readonly cause?: unknown
}> {
  override get message(): string {
    return `connection lost (${this.reason}): ${this.detail}`
  }
}

/**
 * The connection could not be established: the broker refused the login, the virtual host, the protocol version,
 * the SASL mechanism or the tuning parameters.
 *
 * - `Unreachable`: the TCP (or TLS) connection could not be opened.
 * - `AuthenticationFailed`: the broker refused the credentials (403 ACCESS_REFUSED during the handshake).
 * - `AccessRefused`: the virtual host is missing or not permitted (530 NOT_ALLOWED at `connection.open`).
 * - `MechanismNotSupported`: none of the requested SASL mechanisms is offered by the broker.
 * - `ProtocolVersionMismatch`: the broker answered with its own protocol header.
 * - `Negotiation`: the broker's tuning parameters cannot be accepted.
 * - `Timeout`: the handshake did not finish within `connectionTimeout`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionFailed extends Data.TaggedError("ConnectionFailed")<{
  readonly reason:
    | "Unreachable"
    | "AuthenticationFailed"
    | "AccessRefused"
    | "MechanismNotSupported"
    | "ProtocolVersionMismatch"
    | "Negotiation"
    | "Timeout"
  readonly detail: string
  /** The broker's reply code when it answered with `connection.close`. */
  readonly replyCode?: number | undefined
  readonly cause?: unknown
}> {
  override get message(): string {
    return `connection failed (${this.reason}): ${this.detail}`
  }
}

/**
 * The broker cancelled a consumer (its queue was deleted, its node failed, or a consumer timeout fired).
 *
 * @since 0.1.0
 * @category errors
 */
export class ConsumerCancelled extends Data.TaggedError("ConsumerCancelled")<{
  readonly channel: number
  readonly consumerTag: string
}> {
  override get message(): string {
    return `consumer ${this.consumerTag} on channel ${this.channel} was cancelled by the broker`
  }
}

/**
 * The broker refused a publish on a confirm channel with `basic.nack`.
 *
 * @since 0.1.0
 * @category errors
 */
export class PublishNacked extends Data.TaggedError("PublishNacked")<{
  readonly channel: number
  readonly deliveryTag: bigint
}> {
  override get message(): string {
    return `publish ${this.deliveryTag} on channel ${this.channel} was nacked by the broker`
  }
}

/**
 * A `mandatory` publish could not be routed and came back with `basic.return` (usually 312 NO_ROUTE).
 *
 * @since 0.1.0
 * @category errors
 */
export class PublishReturned extends Data.TaggedError("PublishReturned")<{
  readonly channel: number
  readonly replyCode: number
  readonly replyText: string
  readonly exchange: string
  readonly routingKey: string
}> {
  override get message(): string {
    return `publish to ${this.exchange || "(default)"}/${this.routingKey} was returned: ${this.replyCode} ${this.replyText}`
  }
}

/**
 * A client-side limit or precondition, detected before anything was written.
 *
 * - `ChannelsExhausted`: every channel id up to the negotiated `channel_max` is in use.
 * - `InvalidArgument`: an argument cannot be encoded (a short string over 255 bytes, a header over frame_max, …).
 * - `Blocked`: the connection is blocked by the broker and too many publishes are already waiting.
 * - `MessageTooLarge`: an inbound or outbound body is above `maxMessageSize`.
 * - `ReplyConsumerMissing` / `ReplyConsumerExists`: direct reply-to misuse.
 * - `Protocol`: the broker sent something this client cannot make sense of.
 * - `NotImplemented`: RabbitMQ would answer the request by closing the connection with 540 NOT_IMPLEMENTED
 *   (`channel.flow{active=false}`), so it is refused before it is sent.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientRefused extends Data.TaggedError("ClientRefused")<{
  readonly reason:
    | "ChannelsExhausted"
    | "InvalidArgument"
    | "Blocked"
    | "MessageTooLarge"
    | "ReplyConsumerMissing"
    | "ReplyConsumerExists"
    | "Protocol"
    | "NotImplemented"
  readonly detail: string
}> {
  override get message(): string {
    return `${this.reason}: ${this.detail}`
  }
}

/**
 * An operation did not complete in time: a synchronous request waiting for its reply, a publish waiting while the
 * connection is blocked, a close handshake.
 *
 * @since 0.1.0
 * @category errors
 */
export class Timeout extends Data.TaggedError("Timeout")<{
  readonly operation: string
  readonly millis: number
}> {
  override get message(): string {
    return `${this.operation} timed out after ${this.millis} ms`
  }
}

/**
 * Every error of the AMQP client.
 *
 * @since 0.1.0
 * @category errors
 */
export type ClientError =
  | ChannelClosed
  | ConnectionClosed
  | ConnectionLost
  | ConnectionFailed
  | ConsumerCancelled
  | PublishNacked
  | PublishReturned
  | ClientRefused
  | Timeout

const tags: ReadonlySet<string> = new Set([
  "ChannelClosed",
  "ConnectionClosed",
  "ConnectionLost",
  "ConnectionFailed",
  "ConsumerCancelled",
  "PublishNacked",
  "PublishReturned",
  "ClientRefused",
  "Timeout"
])

/**
 * @since 0.1.0
 * @category guards
 */
export const isClientError = (u: unknown): u is ClientError =>
  Predicate.hasProperty(u, "_tag") && typeof u._tag === "string" && tags.has(u._tag)

/**
 * Whether reconnecting could help: `false` for refused credentials, virtual hosts or mechanisms, and for the
 * client's own normal close (200).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isRecoverable = (error: ClientError): boolean => {
  switch (error._tag) {
    case "ConnectionLost":
      return true
    case "ConnectionClosed":
      return error.byBroker
    case "ConnectionFailed":
      return error.reason === "Timeout" || error.reason === "Unreachable"
    default:
      return false
  }
}
