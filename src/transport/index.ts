/**
 * The transport layer: scoped duplex byte pipes with pulled reads, over TCP, Unix sockets, TLS and memory;
 * UDP datagrams; framing; servers, connection strategies and pools.
 *
 * @since 0.1.0
 */
export * as Address from "./Address.js"
export * as Connect from "./Connect.js"
export * as Datagram from "./Datagram.js"
export * as Framing from "./Framing.js"
export * as Memory from "./Memory.js"
export * as Pool from "./Pool.js"
export * as Server from "./Server.js"
export * as Tcp from "./Tcp.js"
export * as Tls from "./Tls.js"
export * as Transport from "./Transport.js"
export * as TransportMetrics from "./TransportMetrics.js"
export * as TransportError from "./TransportError.js"
export * as Unix from "./Unix.js"
