/**
 * The life of a recovering connection as a sequence of states, for dashboards, health checks and logs:
 * `Connecting` → `Connected` ⇄ `Blocked` → `Disconnected` → `Reconnecting` (attempt 1, 2, …) → `Connected` → …
 * → `Closed`.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import type { ClientError } from "./ClientError.js"

/**
 * @since 0.1.0
 * @category models
 */
export type ConnectionState = Data.TaggedEnum<{
  /** The first connection is being opened; `attempt` counts from 1. */
  Connecting: { readonly attempt: number; readonly host: string }
  /** Open, with channels, topology and consumers restored; `generation` counts connections from 1. */
  Connected: { readonly host: string; readonly generation: number }
  /** The broker stopped reading from this connection (`connection.blocked`, a memory or disk alarm). */
  Blocked: { readonly host: string; readonly reason: string }
  /** The connection was lost; `error` says how. Recovery follows unless the error is fatal. */
  Disconnected: { readonly error: ClientError }
  /** Trying to connect again after a loss; `attempt` counts from 1 within one recovery. */
  Reconnecting: { readonly attempt: number; readonly host: string }
  /** Closed for good: by the program (no `error`), by a fatal error, or because the schedule gave up. */
  Closed: { readonly error: ClientError | undefined }
}>

/**
 * @since 0.1.0
 * @category constructors
 */
export const ConnectionState = Data.taggedEnum<ConnectionState>()

/**
 * @since 0.1.0
 * @category guards
 */
export const isConnected = (state: ConnectionState): boolean => state._tag === "Connected" || state._tag === "Blocked"
