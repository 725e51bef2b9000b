/**
 * The writer fiber: drains a bounded queue of jobs, encodes everything pending into one slab (`Frame.Encoder`)
 * and hands it to the transport in one `writeAll`.
 *
 * A publish is one job, encoded as method, header and body frames in one go, so a message's frames are contiguous
 * on the wire by construction. Before encoding, each job is checked against its channel's state: nothing is
 * written on a channel the broker has closed (RabbitMQ would close the whole connection with 504), except the
 * `close-ok` that acknowledges the close. Encoding errors (a short string over 255 bytes, a header over
 * frame_max) fail only their job, before any of its bytes are written.
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { Transport } from "../../../transport/Transport.js"
import { type ClientError, ClientRefused } from "../../ClientError.js"
import * as Frame from "../../Frame.js"
import type { Activity } from "./heartbeat.js"

export interface Job {
  readonly channel: number
  readonly frame?: Frame.Frame | undefined
  readonly publish?: Frame.Publish | undefined
  /** Completed once the bytes are handed to the transport; `undefined` for fire-and-forget frames. */
  readonly done?: Deferred.Deferred<void, ClientError> | undefined
  /** Leave `done` open after the write: a publisher confirm settles it. It still fails if the job does. */
  readonly awaitConfirm?: boolean | undefined
  /** Runs in wire order once the job is encoded (assigns confirm delivery tags). */
  readonly onWrite?: (() => void) | undefined
  /** Written even on a channel the broker closed (`channel.close-ok`). */
  readonly force?: boolean | undefined
}

export interface Writer {
  /** Queues a job (waits only while the queue is full). */
  readonly offer: (job: Job) => Effect.Effect<void, ClientError>
  /** Queues a job and waits until it is written (or, with `awaitConfirm`, confirmed). */
  readonly send: (job: Omit<Job, "done">) => Effect.Effect<void, ClientError>
  /** Jobs waiting to be written. */
  readonly pending: Effect.Effect<number>
  /** Fails every queued and future job; called when the connection ends. */
  readonly fail: (error: ClientError) => Effect.Effect<void>
  readonly encoder: Frame.Encoder
}

export const make = (options: {
  readonly transport: Transport
  readonly capacity: number
  readonly frameMax: number
  readonly activity: Activity
  /** The error a job for this channel fails with, or `undefined` when it may be written. */
  readonly check: (job: Job) => ClientError | undefined
  /** The transport failed: the connection is lost (the callee calls `fail`). */
  readonly onWriteError: (cause: unknown) => Effect.Effect<void>
}): Effect.Effect<Writer, never, Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* Queue.bounded<Job>(options.capacity)
    const encoder = new Frame.Encoder({ frameMax: options.frameMax })
    let failure: ClientError | undefined = undefined

    const offer = (job: Job): Effect.Effect<void, ClientError> =>
      failure !== undefined ? Effect.fail(failure) : Queue.offer(queue, job)

    const failJob = (job: Job, error: ClientError) => {
      if (job.done !== undefined) Deferred.unsafeDone(job.done, Effect.fail(error))
    }

    const loop = Effect.gen(function*() {
      while (true) {
        const jobs = yield* Queue.takeBetween(queue, 1, 1024)
        const written: Array<Job> = []
        for (const job of jobs) {
          const refused = failure ?? options.check(job)
          if (refused !== undefined) {
            failJob(job, refused)
            continue
          }
          const error = job.publish !== undefined
            ? encoder.publish(job.publish)
            : job.frame !== undefined
            ? encoder.frame(job.frame)
            : undefined
          if (error !== undefined) {
            failJob(job, new ClientRefused({ reason: "InvalidArgument", detail: error.message }))
            continue
          }
          job.onWrite?.()
          written.push(job)
        }
        if (written.length === 0) continue
        const result = yield* Effect.either(options.transport.write(encoder.take()))
        if (result._tag === "Left") {
          // The connection fails everything through `fail`; the loop keeps refusing jobs so no sender hangs.
          yield* options.onWriteError(result.left)
          if (failure !== undefined) for (const job of written) failJob(job, failure)
          continue
        }
        options.activity.lastWrite = yield* Clock.currentTimeMillis
        for (const job of written) {
          if (job.done !== undefined && job.awaitConfirm !== true) Deferred.unsafeDone(job.done, Effect.void)
        }
      }
    })
    yield* Effect.forkScoped(loop)

    return {
      offer,
      send: (job) =>
        Effect.flatMap(Deferred.make<void, ClientError>(), (done) =>
          Effect.zipRight(offer({ ...job, done }), Deferred.await(done))),
      pending: Queue.size(queue),
      fail: (error) =>
        Effect.flatMap(Queue.takeAll(queue), (rest) =>
          Effect.sync(() => {
            failure ??= error
            for (const job of rest) failJob(job, failure)
          })),
      encoder
    } satisfies Writer
  })
