/**
 * One writer fiber per connection draining a bounded queue of encoded messages: senders never interleave, a
 * full queue makes them wait (backpressure), and messages that queued up while a write was in progress go out
 * together — in one write on byte streams, one by one on message transports.
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Transport from "../../transport/Transport.js"
import type { Connection } from "./connection.js"

export interface Writer {
  /** Queues one encoded message; waits while the queue is full. Nothing happens once the connection ended. */
  readonly offer: (message: ReadonlyArray<Uint8Array>) => Effect.Effect<void>
}

/** Messages handed to the connection in one write, at most. */
const batchSize = 128

/**
 * Starts the writer in the current scope. `run` is the writer loop: it fails with the connection's write error,
 * and the caller decides what that means (fork it, race it against the reader).
 */
export const make = <E>(
  connection: Connection<E>,
  capacity: number
): Effect.Effect<{ readonly writer: Writer; readonly run: Effect.Effect<never, E> }, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Effect.acquireRelease(
      Queue.bounded<ReadonlyArray<Uint8Array>>(capacity),
      (queue) => Effect.sync(() => {
        ended = true
      }).pipe(Effect.zipRight(Queue.shutdown(queue)))
    )
    let ended = false
    const writeBatch = (batch: ReadonlyArray<ReadonlyArray<Uint8Array>>): Effect.Effect<void, E> => {
      if (connection.stream) {
        if (batch.length === 1) return connection.write(batch[0]!)
        const chunks: Array<Uint8Array> = []
        for (const message of batch) for (const chunk of message) chunks.push(chunk)
        return connection.write(chunks)
      }
      return Effect.forEach(batch, connection.write, { discard: true })
    }
    const run = Effect.forever(
      Effect.flatMap(Queue.takeBetween(queue, 1, batchSize), (batch) => writeBatch(Array.from(batch)))
    )
    const writer: Writer = {
      offer: (message) => ended ? Effect.void : Effect.asVoid(Queue.offer(queue, message))
    }
    return { writer, run }
  })

export const concatChunks = (chunks: ReadonlyArray<Uint8Array>): Uint8Array =>
  chunks.length === 1 ? chunks[0]! : Transport.concat(chunks)
