/**
 * AMQP 0-9-1 with RabbitMQ's extensions: the codec (frames, methods, properties, field tables) and its errors.
 *
 * @since 0.1.0
 */
export * as AmqpError from "./AmqpError.js"
export * as Constants from "./Constants.js"
export * as Frame from "./Frame.js"
export * as Methods from "./Methods.js"
export * as Properties from "./Properties.js"
export * as Spec from "./Spec.js"
export * as Table from "./Table.js"
