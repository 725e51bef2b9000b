/**
 * The writes of one connection. Senders write in their own fiber under a lock, so an uncontended message costs
 * no hop to another fiber; messages that pile up while a write is in progress are written together by the next
 * sender that gets the lock (in one write on byte streams, one by one on message transports), in the order they
 * were sent. Waiting senders are the backpressure: nothing is buffered beyond one message per sender.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { Connection } from "./connection.js"

export interface Writer {
  /** Writes one encoded message, possibly with others; failures end the connection through `run`. */
  readonly offer: (message: ReadonlyArray<Uint8Array>) => Effect.Effect<void>
}

/**
 * A writer for `connection`, and `run`, which fails with the first write error (race it against the reader).
 */
export const make = <E>(
  connection: Connection<E>
): Effect.Effect<{ readonly writer: Writer; readonly run: Effect.Effect<never, E> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const lock = yield* Effect.makeSemaphore(1)
    const failed = yield* Deferred.make<never, E>()
    let ended = false
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        ended = true
      })
    )
    let pending: Array<ReadonlyArray<Uint8Array>> = []

    const writeBatch = (batch: ReadonlyArray<ReadonlyArray<Uint8Array>>): Effect.Effect<void, E> => {
      if (batch.length === 1) return connection.write(batch[0]!)
      if (connection.stream) {
        const chunks: Array<Uint8Array> = []
        for (const message of batch) for (const chunk of message) chunks.push(chunk)
        return connection.write(chunks)
      }
      return Effect.forEach(batch, connection.write, { discard: true })
    }

    // Whoever holds the lock writes everything sent so far; a sender whose message went out with an earlier
    // batch finds nothing left to do.
    const drain = Effect.suspend(() => {
      if (ended || pending.length === 0) return Effect.void
      const batch = pending
      pending = []
      return writeBatch(batch)
    })

    const writer: Writer = {
      offer: (message) =>
        Effect.suspend(() => {
          if (ended) return Effect.void
          pending.push(message)
          return lock.withPermits(1)(drain).pipe(
            // Interrupted before its turn: the message is withdrawn rather than left for a later sender.
            Effect.onInterrupt(() =>
              Effect.sync(() => {
                const at = pending.indexOf(message)
                if (at >= 0) pending.splice(at, 1)
              })
            ),
            Effect.catchAll((error) => Deferred.fail(failed, error)),
            Effect.asVoid
          )
        })
    }
    return { writer, run: Deferred.await(failed) }
  })
