/**
 * The writer fiber: drains a bounded queue of jobs and hands them to the transport in few `writeAll` calls.
 *
 * A job holds every frame of one unit that must not be interleaved (method, header and body frames of a message),
 * so a message's frames are contiguous on the wire by construction. Before writing, each job is checked against
 * its channel's state: nothing is written on a channel the broker has closed (RabbitMQ would close the whole
 * connection with 504), except the `close-ok` that acknowledges the close.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { Transport } from "../../../transport/Transport.js"
import type { ClientError } from "../../ClientError.js"
import type { Activity } from "./heartbeat.js"

export interface Job {
  readonly channel: number
  readonly chunks: ReadonlyArray<Uint8Array>
  /** Completed once the bytes are handed to the transport; `undefined` for fire-and-forget frames. */
  readonly done: Deferred.Deferred<void, ClientError> | undefined
  /** Written even on a closing channel (`channel.close` / `close-ok`). */
  readonly force: boolean
}

export interface Writer {
  /** Queues a job and waits until it is written. */
  readonly send: (channel: number, chunks: ReadonlyArray<Uint8Array>, force?: boolean) => Effect.Effect<void, ClientError>
  /** Queues a job without waiting for the write (waits only while the queue is full). */
  readonly post: (channel: number, chunks: ReadonlyArray<Uint8Array>, force?: boolean) => Effect.Effect<void, ClientError>
  /** Jobs waiting to be written. */
  readonly pending: Effect.Effect<number>
  /** Fails every queued and future job; called when the connection ends. */
  readonly fail: (error: ClientError) => Effect.Effect<void>
}

export const make = (options: {
  readonly transport: Transport
  readonly capacity: number
  readonly activity: Activity
  /** The error a job for this channel fails with, or `undefined` when it may be written. */
  readonly check: (job: Job) => ClientError | undefined
  /** The transport failed: the connection is lost. */
  readonly onWriteError: (cause: unknown) => Effect.Effect<void>
}): Effect.Effect<Writer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<Job>(options.capacity)
    let failure: ClientError | undefined = undefined

    const enqueue = (job: Job): Effect.Effect<void, ClientError> =>
      failure !== undefined ? Effect.fail(failure) : Queue.offer(queue, job)

    const failJobs = (jobs: Iterable<Job>, error: ClientError) => {
      for (const job of jobs) if (job.done !== undefined) Deferred.unsafeDone(job.done, Effect.fail(error))
    }

    const loop = Effect.gen(function*() {
      while (true) {
        const jobs = yield* Queue.takeBetween(queue, 1, 512)
        const chunks: Array<Uint8Array> = []
        const written: Array<Job> = []
        for (const job of jobs) {
          const refused = failure ?? options.check(job)
          if (refused !== undefined) {
            if (job.done !== undefined) Deferred.unsafeDone(job.done, Effect.fail(refused))
            continue
          }
          for (const chunk of job.chunks) chunks.push(chunk)
          written.push(job)
        }
        if (chunks.length === 0) continue
        const result = yield* Effect.either(options.transport.writeAll(chunks))
        if (result._tag === "Left") {
          // The connection fails everything (through `fail`); the loop keeps refusing jobs so no sender hangs.
          yield* options.onWriteError(result.left)
          if (failure !== undefined) failJobs(written, failure)
          continue
        }
        options.activity.lastWrite = yield* Clock.currentTimeMillis
        for (const job of written) if (job.done !== undefined) Deferred.unsafeDone(job.done, Effect.void)
      }
    })
    yield* Effect.forkScoped(loop)

    return {
      send: (channel, chunks, force = false) =>
        Effect.flatMap(Deferred.make<void, ClientError>(), (done) =>
          Effect.zipRight(enqueue({ channel, chunks, done, force }), Deferred.await(done))),
      post: (channel, chunks, force = false) => enqueue({ channel, chunks, done: undefined, force }),
      pending: Queue.size(queue),
      fail: (error) =>
        Effect.flatMap(Queue.takeAll(queue), (rest) =>
          Effect.sync(() => {
            failure ??= error
            failJobs(rest, failure)
          }))
    } satisfies Writer
  })
