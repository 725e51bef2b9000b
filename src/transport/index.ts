/**
 * The transport layer: scoped duplex byte pipes with pulled reads, over TCP, Unix sockets, TLS and memory.
 *
 * @since 0.1.0
 */
export * as Address from "./Address.js"
export * as Memory from "./Memory.js"
export * as Transport from "./Transport.js"
export * as TransportError from "./TransportError.js"
