/**
 * `@effect/rpc` protocols over effect-wire's transports and protocols.
 *
 * @since 0.1.0
 */
export * as AmqpProtocol from "./AmqpProtocol.js"
export * as MuxProtocol from "./MuxProtocol.js"
export * as RpcProtocolError from "./RpcProtocolError.js"
export * as TransportProtocol from "./TransportProtocol.js"
export * as ZmtpProtocol from "./ZmtpProtocol.js"
