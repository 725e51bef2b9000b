/**
 * ZMTP 3.1: ZeroMQ sockets in pure TypeScript that interoperate with libzmq, with NULL, PLAIN and CURVE.
 *
 * @since 0.1.0
 */
export * as Command from "./Command.js"
export * as Frame from "./Frame.js"
export * as Greeting from "./Greeting.js"
export * as Mechanism from "./Mechanism.js"
export * as Metadata from "./Metadata.js"
export * as Null from "./Null.js"
export * as Socket from "./Socket.js"
export * as Z85 from "./Z85.js"
export * as ZmtpError from "./ZmtpError.js"
export * as Plain from "./Plain.js"
export * as Curve from "./Curve.js"
