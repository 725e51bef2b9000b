import * as Metric from "effect/Metric"

/** Process-wide counters of every ZMTP socket (`Socket.metrics` exports them). */
export const metrics = {
  messagesIn: Metric.counter("zmtp_messages_in", { description: "ZMTP messages received", incremental: true }),
  messagesOut: Metric.counter("zmtp_messages_out", { description: "ZMTP messages written", incremental: true }),
  bytesIn: Metric.counter("zmtp_bytes_in", { description: "ZMTP bytes read, framing included", incremental: true }),
  bytesOut: Metric.counter("zmtp_bytes_out", { description: "ZMTP bytes written, framing included", incremental: true }),
  dropped: Metric.counter("zmtp_messages_dropped", {
    description: "ZMTP messages dropped at a high-water mark or for lack of a route",
    incremental: true
  }),
  handshakeFailures: Metric.counter("zmtp_handshake_failures", {
    description: "ZMTP connections that failed their greeting or handshake",
    incremental: true
  })
} as const

type Field = keyof typeof metrics

/**
 * One socket's counters: plain numbers bumped on the hot path, pushed to the process-wide metrics in batches (once
 * per read, per written batch, per send call that dropped), so that a message costs an addition, not a metric update.
 */
export class Counters {
  messagesIn = 0
  messagesOut = 0
  bytesIn = 0
  bytesOut = 0
  dropped = 0
  handshakeFailures = 0
  private readonly flushed: Record<Field, number> = {
    messagesIn: 0,
    messagesOut: 0,
    bytesIn: 0,
    bytesOut: 0,
    dropped: 0,
    handshakeFailures: 0
  }

  flush(): void {
    this.push("messagesIn")
    this.push("messagesOut")
    this.push("bytesIn")
    this.push("bytesOut")
    this.push("dropped")
    this.push("handshakeFailures")
  }

  private push(field: Field): void {
    const delta = this[field] - this.flushed[field]
    if (delta === 0) return
    this.flushed[field] = this[field]
    metrics[field].unsafeUpdate(delta, [])
  }
}
