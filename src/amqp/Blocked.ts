/**
 * `connection.blocked` / `connection.unblocked`: RabbitMQ stops reading from publishing connections while a
 * memory or disk alarm is on. The connection exposes the state as a `Stream`, and publishes wait (bounded in
 * number and time) while it is blocked instead of piling up in memory.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * @since 0.1.0
 * @category models
 */
export type BlockedState = Unblocked | Blocked

/**
 * @since 0.1.0
 * @category models
 */
export interface Unblocked {
  readonly _tag: "Unblocked"
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Blocked {
  readonly _tag: "Blocked"
  /** The broker's reason, such as "low on memory". */
  readonly reason: string
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const unblocked: BlockedState = Data.struct({ _tag: "Unblocked" })

/**
 * @since 0.1.0
 * @category constructors
 */
export const blocked = (reason: string): BlockedState => Data.struct({ _tag: "Blocked", reason })

/**
 * @since 0.1.0
 * @category guards
 */
export const isBlocked = (state: BlockedState): state is Blocked => state._tag === "Blocked"
