import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/** Counters of every session in the process (updated in batches: per transport read or write, not per byte). */
export const metrics = {
  bytesReceived: Metric.counter("mux_bytes_received", { description: "bytes read from muxado transports", incremental: true }),
  bytesSent: Metric.counter("mux_bytes_sent", { description: "bytes written to muxado transports", incremental: true }),
  framesReceived: Metric.counter("mux_frames_received", {
    description: "muxado frames decoded (a large DATA frame counts once per piece as it streams in)",
    incremental: true
  }),
  streamsOpened: Metric.counter("mux_streams_opened", { description: "streams opened locally", incremental: true }),
  streamsAccepted: Metric.counter("mux_streams_accepted", { description: "streams the peer opened", incremental: true }),
  resetsSent: Metric.counter("mux_resets_sent", { description: "RST frames sent", incremental: true }),
  sessionsEnded: Metric.counter("mux_sessions_ended", { description: "sessions ended, by reason", incremental: true })
} as const

const noTags: ReadonlyArray<MetricLabel.MetricLabel> = []

export const count = (metric: Metric.Metric.Counter<number>, n: number): void => {
  if (n > 0) metric.unsafeUpdate(n, noTags)
}

export const countReason = (reason: string): void =>
  metrics.sessionsEnded.unsafeUpdate(1, [MetricLabel.make("reason", reason)])
