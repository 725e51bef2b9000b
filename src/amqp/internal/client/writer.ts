/**
 * The writer fiber: drains a bounded queue of jobs, encodes everything pending into one slab (`Frame.Encoder`)
 * and hands it to the transport in one `writeAll`.
 *
 * A publish is one job, encoded as method, header and body frames in one go, so a message's frames are contiguous
 * on the wire by construction. Before encoding, each job is checked against its channel's state: nothing is
 * written on a channel the broker has closed (RabbitMQ would close the whole connection with 504), except the
 * `close-ok` that acknowledges the close. Encoding errors (a short string over 255 bytes, a header over
 * frame_max) fail only their job, before any of its bytes are written.
 *
 * While the writer is idle and nothing is queued, a caller's job skips the queue: on a socket it is encoded
 * synchronously (`writeNow`, no Effect and no fiber hop) and everything so encoded during one run of microtasks
 * leaves in one write when the run ends; on other transports it is written from the caller's fiber (`tryDirect`).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Scope from "effect/Scope"
import type { Transport } from "../../../transport/Transport.js"
import { type ClientError, ClientRefused } from "../../ClientError.js"
import * as ClientMetrics from "../../ClientMetrics.js"
import * as Frame from "../../Frame.js"
import { Completion } from "./completion.js"
import type { Activity } from "./heartbeat.js"
import { ioScheduler } from "../../../internal/ioScheduler.js"
import { adapterOf } from "../../../transport/internal/socket.js"

/** Encoded bytes past which the slab is handed over. */
const sliceBytes = 128 * 1024
/** Bytes collected before a batch is written while more jobs are being encoded. */
const batchBytes = 4 * 1024 * 1024
/**
 * Batches written back to back before the writer lets the event loop turn. A write the kernel takes at once
 * completes without an I/O callback, so a publisher and the writer can resume each other in microtasks forever:
 * timers (heartbeats, deadlines) and reads (the broker's `connection.close`, confirms) would never run.
 */
const batchesPerTurn = 32

/**
 * Direct writes per event-loop turn. Measured on a confirm window of 1000 against RabbitMQ: 1 keeps the lone
 * publish's gain and loses nothing to per-message writes; more made windowed throughput ~15% worse.
 */
const directWritesPerTurn = 1

/** Bodies up to this size may be written from the publisher's own fiber. */
const directMaxBody = 64 * 1024

/** Waits for the event loop's check phase: timers and I/O callbacks have had their turn. */
const eventLoopTurn: Effect.Effect<void> = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

export interface Job {
  readonly channel: number
  readonly frame?: Frame.Frame | undefined
  readonly publish?: Frame.Publish | undefined
  /** Completed once the bytes are handed to the transport; `undefined` for fire-and-forget frames. */
  readonly done?: Completion | undefined
  /** Leave `done` open after the write: a publisher confirm settles it. It still fails if the job does. */
  readonly awaitConfirm?: boolean | undefined
  /** Runs in wire order once the job is encoded (assigns confirm delivery tags). */
  readonly onWrite?: (() => void) | undefined
  /** Written even on a channel the broker closed (`channel.close-ok`). */
  readonly force?: boolean | undefined
  /** The waiting caller of `submit`, resumed once the job is written or refused (instead of `done`). */
  resume?: ((exit: Exit.Exit<void, ClientError>) => void) | undefined
}

export interface Writer {
  /** Queues a job if there is room, at once; `false` when the queue is full or the writer has failed. */
  readonly tryOffer: (job: Job) => boolean
  /**
   * Writes the job from the caller's fiber if the writer is idle and nothing is queued; the Effect completes once
   * the bytes are handed over (or runs `queue` if the writer got busy before it ran). `undefined` when the job
   * must be queued instead.
   */
  readonly tryDirect: (job: Job, queue: () => Effect.Effect<void, ClientError>) => Effect.Effect<void, ClientError> | undefined
  /**
   * Writes the job from the caller and without an Effect, when the writer is idle, nothing is queued and the socket
   * takes bytes without waiting: `true` once it is encoded for the write that ends the current run of microtasks.
   * `false` when the caller must go through `submit` (nothing happened); the error when the job is refused (nothing
   * written).
   */
  readonly writeNow: (job: Job) => boolean | ClientError
  /** `submit` for a caller that is already inside an `Effect.async`: `resume` gets what to complete with. */
  readonly submitWith: (job: Job, resume: (effect: Effect.Effect<void, ClientError>) => void) => void
  /** Queues a job (waits only while the queue is full). */
  readonly offer: (job: Job) => Effect.Effect<void, ClientError>
  /**
   * When run, writes the job at once or queues it, and waits until it is written (or, with `awaitConfirm`,
   * confirmed). The job must be the caller's own object, one per run (it is marked while queued).
   */
  readonly submit: (job: Job) => Effect.Effect<void, ClientError>
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
  /** What jobs fail with when the writer is stopped (its scope closing) before `fail` was called. */
  readonly stopped: () => ClientError
}): Effect.Effect<Writer, never, Scope.Scope> =>
  Effect.gen(function*() {
    // A plain bounded buffer rather than a Queue: offering is a push and, at most, one wake-up.
    let buffer: Array<Job> = []
    let wake: Completion | undefined = undefined
    let space: Completion | undefined = undefined
    const encoder = new Frame.Encoder({ frameMax: options.frameMax })
    /** Appends the job's frames to the encoder, or says why it cannot be encoded. */
    const encode = (job: Job): ClientRefused | undefined => {
      const error = job.publish !== undefined
        ? encoder.publish(job.publish)
        : job.frame !== undefined
        ? encoder.frame(job.frame)
        : undefined
      return error === undefined ? undefined : new ClientRefused({ reason: "InvalidArgument", detail: error.message })
    }
    let failure: ClientError | undefined = undefined
    // Who may write: the writer fiber from `take` until its batch is written (`busy`), or a caller writing its own
    // job while the writer is idle (`direct`). Never both, so bytes leave in the order jobs were admitted.
    let busy = false
    let direct = false
    const clock = yield* Effect.clock

    const push = (job: Job): boolean => {
      if (buffer.length >= options.capacity) return false
      buffer.push(job)
      if (wake !== undefined) {
        const w = wake
        wake = undefined
        w.succeed()
      }
      return true
    }

    const offer = (job: Job): Effect.Effect<void, ClientError> =>
      Effect.suspend(() => {
        if (failure !== undefined) return Exit.fail(failure)
        if (push(job)) return Effect.void
        space ??= new Completion()
        return Effect.zipRight(Effect.ignore(space.await), offer(job))
      })

    let directSinceTurn = 0
    const resetDirectBudget = () => {
      directSinceTurn = 0
    }

    const wakeWriter = () => {
      if (wake !== undefined && buffer.length > 0) {
        const w = wake
        wake = undefined
        w.succeed()
      }
    }

    const release = Effect.sync(() => {
      direct = false
      wakeWriter()
    })

    /**
     * Writes a job from the caller's fiber when the writer is idle and nothing is queued: no hop to the writer
     * fiber and back (the larger part of a lone publish's latency). Jobs admitted meanwhile queue behind it and the
     * writer takes them once this write is done. `undefined` when the job must be queued instead.
     */
    /** Whether a caller may write `job` itself: the writer is idle, nothing is queued, and the body is small. */
    const idleFor = (job: Job): boolean =>
      !busy && !direct && buffer.length === 0 && failure === undefined &&
      // Large bodies go through the writer: they gain nothing here, and a write that waits on the peer stays
      // with the fiber the connection stops.
      (job.publish === undefined || job.publish.body.length <= directMaxBody)

    const canWriteDirect = (job: Job): boolean =>
      idleFor(job) &&
      // One direct write per event-loop turn: a lone publish skips the hop, while publishes that come together
      // (a window of concurrent ones) are coalesced by the writer into few writes.
      directSinceTurn < directWritesPerTurn

    const tryDirect = (
      job: Job,
      queue: () => Effect.Effect<void, ClientError>
    ): Effect.Effect<void, ClientError> | undefined =>
      canWriteDirect(job)
        // Uninterruptible from the check to the hand-over: a caller interrupted in between must not leave the
        // writer waiting for a write that never happens (or its bytes encoded and never sent).
        ? Effect.uninterruptibleMask((restore) =>
          Effect.suspend(() => {
            if (!canWriteDirect(job)) return restore(queue())
            if (directSinceTurn++ === 0) setImmediate(resetDirectBudget)
            const refused = options.check(job)
            if (refused !== undefined) return Exit.fail(refused)
            const invalid = encode(job)
            if (invalid !== undefined) return Exit.fail(invalid)
            job.onWrite?.()
            const bytes = encoder.take()
            direct = true
            ClientMetrics.bytesOut.unsafeUpdate(bytes.length, [])
            if (job.publish !== undefined) ClientMetrics.published.unsafeUpdate(1, [])
            return restore(options.transport.write(bytes)).pipe(
              Effect.matchEffect({
                onFailure: (cause) =>
                  Effect.zipRight(
                    options.onWriteError(cause),
                    Effect.suspend(() => Exit.fail(failure ?? options.stopped()))
                  ),
                onSuccess: () => {
                  options.activity.lastWrite = clock.unsafeCurrentTimeMillis()
                  return Effect.void
                }
              }),
              Effect.ensuring(release)
            )
          })
        )
        : undefined

    // Sockets can take a write synchronously; other transports (memory pairs, muxado streams) go through Effects.
    const socket = adapterOf(options.transport)

    // Jobs written by their callers during one run of microtasks are encoded back to back and handed to the socket
    // in one write once the run ends (`process.nextTick`): a window of publishers costs one write, not one each.
    let flushScheduled = false
    const flushDirect = (): void => {
      flushScheduled = false
      // A batch of the writer fiber that started meanwhile took these bytes along (it encodes after them).
      if (busy || encoder.pending === 0 || socket === undefined || failure !== undefined) return
      if (socket.canWriteNow) {
        const bytes = encoder.take()
        ClientMetrics.bytesOut.unsafeUpdate(bytes.length, [])
        socket.tryWrite(bytes)
        options.activity.lastWrite = clock.unsafeCurrentTimeMillis()
      } else {
        // Node's buffer filled up meanwhile: the writer fiber writes what is pending once the socket drains.
        push({ channel: 0 })
      }
    }

    const writeNow = (job: Job): boolean | ClientError => {
      if (socket === undefined || !idleFor(job) || encoder.pending >= sliceBytes || !socket.canWriteNow) return false
      const refused = options.check(job)
      if (refused !== undefined) return refused
      const invalid = encode(job)
      if (invalid !== undefined) return invalid
      job.onWrite?.()
      if (job.publish !== undefined) ClientMetrics.published.unsafeUpdate(1, [])
      if (!flushScheduled) {
        flushScheduled = true
        process.nextTick(flushDirect)
      }
      return true
    }

    const submitWith = (job: Job, resume: (effect: Effect.Effect<void, ClientError>) => void): void => {
      if (failure !== undefined) return resume(Exit.fail(failure))
      if (socket === undefined || job.awaitConfirm === true || job.done !== undefined) {
        return resume(tryDirect(job, () => enqueue(job)) ?? enqueue(job))
      }
      // The common cases without another Effect: written at once, or queued with the caller parked until written.
      const written = writeNow(job)
      if (written === true) return resume(Exit.void)
      if (written !== false) return resume(Exit.fail(written))
      job.resume = resume
      if (push(job)) return
      job.resume = undefined
      resume(waitForRoom(job))
    }

    const submit = (job: Job): Effect.Effect<void, ClientError> =>
      Effect.async<void, ClientError>((resume) => submitWith(job, resume))

    const enqueue = (job: Job): Effect.Effect<void, ClientError> => {
      if (failure !== undefined) return Exit.fail(failure)
      if (job.awaitConfirm !== true && job.done === undefined) {
        // The common case, a single step: queued at once, the caller resumed by the writer when it is written.
        return Effect.async<void, ClientError>((resume) => {
          job.resume = resume
          if (push(job)) return
          job.resume = undefined
          resume(waitForRoom(job))
        })
      }
      return waitForRoom(job)
    }

    const waitForRoom = (job: Job): Effect.Effect<void, ClientError> => {
      const done = new Completion()
      return Effect.zipRight(offer({ ...job, done }), done.await)
    }

    const send = (job: Omit<Job, "done">): Effect.Effect<void, ClientError> => Effect.suspend(() => submit({ ...job }))

    const take: Effect.Effect<Array<Job>> = Effect.suspend(() => {
      if (buffer.length === 0 || direct) {
        wake ??= new Completion()
        return Effect.zipRight(Effect.ignore(wake.await), take)
      }
      busy = true
      const jobs = buffer
      buffer = []
      if (space !== undefined) {
        const s = space
        space = undefined
        s.succeed()
      }
      return Effect.succeed(jobs)
    })

    const failJob = (job: Job, error: ClientError) => {
      job.done?.fail(error)
      job.resume?.(Exit.fail(error))
    }

    /** Writes what is encoded; `false` when the transport failed (the connection is then lost). */
    const flush = (chunks: Array<Uint8Array>, written: Array<Job>) =>
      Effect.gen(function*() {
        const pending = encoder.take()
        if (pending.length > 0) chunks.push(pending)
        if (chunks.length === 0) return true
        let size = 0
        for (const chunk of chunks) size += chunk.length
        ClientMetrics.bytesOut.unsafeUpdate(size, [])
        const result = yield* Effect.either(
          chunks.length === 1 ? options.transport.write(chunks[0]!) : options.transport.writeAll(chunks)
        )
        chunks.length = 0
        if (result._tag === "Left") {
          // The connection fails everything through `fail`; the loop keeps refusing jobs so no sender hangs.
          yield* options.onWriteError(result.left)
          const error = failure
          if (error !== undefined) for (const job of written) failJob(job, error)
          written.length = 0
          return false
        }
        options.activity.lastWrite = yield* Clock.currentTimeMillis
        for (const job of written) {
          if (job.resume !== undefined) job.resume(Exit.void)
          else if (job.done !== undefined && job.awaitConfirm !== true) job.done.succeed()
        }
        written.length = 0
        return true
      })

    // Jobs encoded but not yet written: failed, with everything queued, if the writer is stopped mid-write.
    const encoded: Array<Job> = []
    const stop = Effect.sync(() => {
      failure ??= options.stopped()
      const rest = [...encoded, ...buffer]
      encoded.length = 0
      buffer = []
      for (const job of rest) failJob(job, failure)
      space?.succeed()
    })

    const loop = Effect.gen(function*() {
      const chunks: Array<Uint8Array> = []
      let batches = 0
      while (true) {
        if (++batches >= batchesPerTurn) {
          batches = 0
          yield* eventLoopTurn
        }
        const jobs = yield* take
        let buffered = 0
        let published = 0
        for (const job of jobs) {
          const refused = failure ?? options.check(job)
          if (refused !== undefined) {
            failJob(job, refused)
            continue
          }
          const invalid = encode(job)
          if (invalid !== undefined) {
            failJob(job, invalid)
            continue
          }
          job.onWrite?.()
          if (job.publish !== undefined) published++
          encoded.push(job)
          // Past a slab, hand the bytes over: the encoder never copies a growing buffer, and a batch of large
          // messages is written as it is encoded instead of all at once.
          if (encoder.pending >= sliceBytes) {
            const slice = encoder.take()
            chunks.push(slice)
            buffered += slice.length
            if (buffered >= batchBytes) {
              yield* flush(chunks, encoded)
              buffered = 0
            }
          }
        }
        yield* flush(chunks, encoded)
        busy = false
        if (published > 0) ClientMetrics.published.unsafeUpdate(published, [])
      }
    })
    yield* Effect.forkScoped(Effect.withScheduler(Effect.onInterrupt(loop, () => stop), ioScheduler))

    return {
      tryOffer: (job) => failure === undefined && push(job),
      tryDirect,
      writeNow,
      submitWith,
      offer,
      submit,
      send,
      pending: Effect.sync(() => buffer.length),
      fail: (error) =>
        Effect.sync(() => {
          failure ??= error
          const rest = buffer
          buffer = []
          for (const job of rest) failJob(job, failure)
          space?.succeed()
        }),
      encoder
    } satisfies Writer
  })
