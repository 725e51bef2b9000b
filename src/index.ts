/**
 * effect-wire: Effect-native wire protocols.
 *
 * The transport layer is exported at the top level (`Tcp`, `Tls`, `Server`, `Transport`, …); each protocol is a
 * namespace here and a subpath export of its own (`effect-wire/amqp`, `effect-wire/mux`, …).
 *
 * @since 0.1.0
 */

/**
 * AMQP 0-9-1 with RabbitMQ's extensions: codec, connections, channels, consumers, confirms.
 *
 * @since 0.1.0
 */
export * as Amqp from "./amqp/index.js"

/**
 * eMQP/1.0 (EventMQ): broker, workers, clients, scheduler and pub/sub on ZMTP.
 *
 * @since 0.1.0
 */
export * as Emqp from "./emqp/index.js"

/**
 * muxado v2 stream multiplexing, wire-compatible with Go's muxado.
 *
 * @since 0.1.0
 */
export * as Mux from "./mux/index.js"

/**
 * `@effect/rpc` protocols over transports, muxado, ZMTP and AMQP.
 *
 * @since 0.1.0
 */
export * as RpcProtocols from "./rpc/index.js"

/**
 * ZMTP 3.1 (ZeroMQ's wire protocol) with NULL, PLAIN and CURVE, interoperating with libzmq.
 *
 * @since 0.1.0
 */
export * as Zmtp from "./zmtp/index.js"

export * from "./transport/index.js"
