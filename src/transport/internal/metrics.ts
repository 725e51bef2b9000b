import * as MetricLabel from "effect/MetricLabel"
import type { TransportError } from "../TransportError.js"
import * as TransportMetrics from "../TransportMetrics.js"

/** The `transport` tag of the socket transports' metrics. */
export type Kind = "tcp" | "unix" | "tls"

/**
 * One label array per kind, made once: a counter finds its series by the identity of the array it is given, so
 * an update with these is a property lookup and an add.
 */
export type Tags = ReadonlyArray<MetricLabel.MetricLabel>

const tagsByKind: Record<Kind, Tags> = {
  tcp: [MetricLabel.make("transport", "tcp")],
  unix: [MetricLabel.make("transport", "unix")],
  tls: [MetricLabel.make("transport", "tls")]
}

export const tagsOf = (kind: Kind): Tags => tagsByKind[kind]

export const opened = (tags: Tags): void => TransportMetrics.connectionsOpened.unsafeUpdate(1, tags)

export const closed = (tags: Tags): void => TransportMetrics.connectionsClosed.unsafeUpdate(1, tags)

export const read = (tags: Tags, bytes: number): void => TransportMetrics.bytesRead.unsafeUpdate(bytes, tags)

export const written = (tags: Tags, bytes: number): void => TransportMetrics.bytesWritten.unsafeUpdate(bytes, tags)

/** Errors are rare: their labels are made per error. */
export const failed = (kind: Kind, error: TransportError): void => {
  const labels = [...tagsByKind[kind], MetricLabel.make("reason", error.reason)]
  if (error.code !== undefined) labels.push(MetricLabel.make("code", error.code))
  TransportMetrics.errors.unsafeUpdate(1, labels)
}
