/**
 * The socket transports' metrics (TCP, Unix, TLS), as Effect `Metric` counters: read them with `Metric.value` or
 * export them with an OpenTelemetry metrics layer.
 *
 * Every counter carries a `transport` tag (`tcp`, `unix` or `tls`). Counting costs nothing a connection would
 * notice: bytes are counted once per read batch and once per write, never per byte or per chunk received.
 *
 * A STARTTLS upgrade (`Tls.upgrade`) closes the plain transport and opens a TLS one: it counts as one of each.
 *
 * @example
 * ```ts
 * import { Effect, Metric } from "effect"
 * import { TransportMetrics } from "effect-wire/transport"
 *
 * const tcpBytesRead = Metric.value(Metric.tagged(TransportMetrics.bytesRead, "transport", "tcp"))
 * const program = Effect.map(tcpBytesRead, (state) => state.count)
 * ```
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

/**
 * Connections opened: client connections once connected (and, for TLS, once the handshake is done), server
 * connections once accepted.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionsOpened: Metric.Metric.Counter<number> = Metric.counter("transport_connections_opened", {
  description: "connections opened (connected or accepted)",
  incremental: true
})

/**
 * Connections closed, whatever the way: graceful close, abort, peer reset, idle timeout.
 *
 * @since 0.1.0
 * @category metrics
 */
export const connectionsClosed: Metric.Metric.Counter<number> = Metric.counter("transport_connections_closed", {
  description: "connections closed, gracefully or not",
  incremental: true
})

/**
 * Bytes handed to readers.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesRead: Metric.Metric.Counter<number> = Metric.counter("transport_bytes_read", {
  description: "bytes received and read",
  incremental: true
})

/**
 * Bytes handed to the OS for sending.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesWritten: Metric.Metric.Counter<number> = Metric.counter("transport_bytes_written", {
  description: "bytes written",
  incremental: true
})

/**
 * Failures, tagged with the `TransportError` reason (`reason`) and, when known, the OS or TLS error code
 * (`code`): connects that failed or timed out, connections that ended in an error (reset by the peer, broken pipe,
 * idle timeout), servers that could not listen and connections they refused. Operations attempted on a transport
 * that is already closed do not count: the error that closed it did.
 *
 * @since 0.1.0
 * @category metrics
 */
export const errors: Metric.Metric.Counter<number> = Metric.counter("transport_errors", {
  description: "connect failures, connections ended by an error, listen failures, refused connections",
  incremental: true
})
