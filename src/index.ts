/**
 * effect-wire: Effect-native wire protocols.
 *
 * Each protocol is also a subpath export (`effect-wire/transport`, `effect-wire/amqp`, …).
 *
 * @since 0.1.0
 */
export * from "./transport/index.js"
