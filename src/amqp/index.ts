/**
 * AMQP 0-9-1 with RabbitMQ's extensions: the codec (frames, methods, properties, field tables) and the client
 * (connections, channels, publishers, consumers) built on it.
 *
 * @since 0.1.0
 */

// codec
export * as AmqpError from "./AmqpError.js"
export * as Constants from "./Constants.js"
export * as Frame from "./Frame.js"
export * as Methods from "./Methods.js"
export * as Properties from "./Properties.js"
export * as Spec from "./Spec.js"
export * as Table from "./Table.js"

// client
export * as Blocked from "./Blocked.js"
export * as Channel from "./Channel.js"
export * as ChannelPool from "./ChannelPool.js"
export * as ClientError from "./ClientError.js"
export * as ClientMetrics from "./ClientMetrics.js"
export * as ClientProperties from "./ClientProperties.js"
export * as Connection from "./Connection.js"
export * as ConnectionState from "./ConnectionState.js"
export * as Consumer from "./Consumer.js"
export * as DirectReplyTo from "./DirectReplyTo.js"
export * as Publisher from "./Publisher.js"
export * as Recovery from "./Recovery.js"
export * as Sasl from "./Sasl.js"
export * as Uri from "./Uri.js"
