/**
 * eMQP/1.0 (EventMQ): broker, workers, clients and scheduler, wire-compatible with EventMQ 0.3.13.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as Broker from "./Broker.js"

/**
 * @since 0.1.0
 */
export * as Client from "./Client.js"

/**
 * @since 0.1.0
 */
export * as Command from "./Command.js"

/**
 * @since 0.1.0
 */
export * as EmqpError from "./EmqpError.js"

/**
 * @since 0.1.0
 */
export * as Headers from "./Headers.js"

/**
 * @since 0.1.0
 */
export * as PubSub from "./PubSub.js"

/**
 * @since 0.1.0
 */
export * as ScheduleStore from "./ScheduleStore.js"

/**
 * @since 0.1.0
 */
export * as Scheduler from "./Scheduler.js"

/**
 * @since 0.1.0
 */
export * as Socket from "./Socket.js"

/**
 * @since 0.1.0
 */
export * as Worker from "./Worker.js"
