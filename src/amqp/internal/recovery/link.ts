import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Scope from "effect/Scope"
import type { AmqpChannel, ChannelOptions } from "../../Channel.js"
import type { ClientError } from "../../ClientError.js"
import type { AmqpConnection } from "../../Connection.js"

/** One underlying connection of a recovering connection. @internal */
export interface Generation {
  readonly id: number
  readonly host: string
  readonly connection: AmqpConnection
  readonly scope: Scope.CloseableScope
}

/** @internal */
export type Status =
  | { readonly _tag: "Up"; readonly generation: Generation }
  | { readonly _tag: "Down" }
  | { readonly _tag: "Ended"; readonly error: ClientError | undefined }

/**
 * The current generation, and a signal for every change of it. Waiting costs nothing while connected: the hot
 * path reads a field.
 *
 * @internal
 */
export class Link {
  status: Status = { _tag: "Down" }
  private changed = Deferred.unsafeMake<void>(FiberId.none)

  set(status: Status): void {
    this.status = status
    const changed = this.changed
    this.changed = Deferred.unsafeMake<void>(FiberId.none)
    Deferred.unsafeDone(changed, Exit.void)
  }

  /** The first live generation newer than `after`, or `undefined` once the connection has ended for good. */
  readonly await = (after: number): Effect.Effect<Generation | undefined> =>
    Effect.suspend(() => {
      const status = this.status
      if (status._tag === "Up" && status.generation.id > after) return Effect.succeed(status.generation)
      if (status._tag === "Ended") return Effect.succeed(undefined)
      return Effect.zipRight(Deferred.await(this.changed), this.await(after))
    })
}

/**
 * A recovering channel's state: what to restore (confirm mode, prefetch) and the channel of the current
 * generation.
 *
 * @internal
 */
export class Slot {
  confirm: boolean
  prefetch: { readonly count: number; readonly global: boolean } | undefined
  current: { readonly generation: number; readonly channel: AmqpChannel; readonly scope: Scope.CloseableScope } | undefined
  /** The broker closed the current channel: open a new one on next use. */
  broken = false
  closed = false

  constructor(options: ChannelOptions | undefined) {
    this.confirm = options?.confirm === true
    this.prefetch = options?.prefetch === undefined ? undefined : { count: options.prefetch, global: false }
  }

  /** Opens the channel on `generation` with the recorded confirm mode and prefetch, replacing the previous one. */
  open(generation: Generation): Effect.Effect<AmqpChannel, ClientError> {
    const self = this
    return Effect.gen(function*() {
      yield* self.release
      const scope = yield* Scope.fork(generation.scope, ExecutionStrategy.sequential)
      const channel = yield* Scope.extend(generation.connection.channel({ confirm: self.confirm }), scope).pipe(
        Effect.tap((channel) =>
          self.prefetch === undefined ? Effect.void : channel.qos(self.prefetch.count, { global: self.prefetch.global })
        ),
        Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause)))
      )
      self.current = { generation: generation.id, channel, scope }
      self.broken = false
      return channel
    }).pipe(Effect.uninterruptible)
  }

  readonly release: Effect.Effect<void> = Effect.suspend(() => {
    const current = this.current
    this.current = undefined
    return current === undefined ? Effect.void : Scope.close(current.scope, Exit.void)
  })
}

/** Errors after which the same operation may succeed on the next connection. @internal */
export const isConnectionError = (error: ClientError): boolean =>
  error._tag === "ConnectionLost" || (error._tag === "ConnectionClosed" && error.byBroker)
