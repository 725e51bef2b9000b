/**
 * The AMQP client's metrics, as Effect `Metric` counters (read them with `Metric.value` or export them with an
 * OpenTelemetry metrics layer). Every counter is tagged with `messaging.system = rabbitmq`.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"

const tagged = <A extends Metric.Metric.Counter<number>>(metric: A): A =>
  Metric.tagged(metric, "messaging.system", "rabbitmq") as A

/**
 * Messages handed to the writer by `publish`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const published = tagged(Metric.counter("amqp_client_messages_published", { description: "messages published" }))

/**
 * Publishes acked by the broker on confirm channels.
 *
 * @since 0.1.0
 * @category metrics
 */
export const confirmed = tagged(Metric.counter("amqp_client_messages_confirmed", { description: "publishes acked" }))

/**
 * Publishes nacked or returned on confirm channels.
 *
 * @since 0.1.0
 * @category metrics
 */
export const refused = tagged(Metric.counter("amqp_client_messages_refused", { description: "publishes nacked or returned" }))

/**
 * Messages delivered to consumers or fetched with `basic.get`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const delivered = tagged(Metric.counter("amqp_client_messages_delivered", { description: "messages received" }))

/**
 * Frames read from the broker.
 *
 * @since 0.1.0
 * @category metrics
 */
export const framesIn = tagged(Metric.counter("amqp_client_frames_in", { description: "frames read" }))

/**
 * Bytes written to the broker.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesOut = tagged(Metric.counter("amqp_client_bytes_out", { description: "bytes written" }))

/**
 * Channels closed by the broker (404, 406, …).
 *
 * @since 0.1.0
 * @category metrics
 */
export const channelsClosedByBroker = tagged(
  Metric.counter("amqp_client_channels_closed_by_broker", { description: "channels the broker closed" })
)
