/**
 * The connection engine: the connection's state, everything the client sends (methods, synchronous requests,
 * publishes, channel opens and closes) and every way the connection ends. The reader, which handles what the
 * broker sends, is in `inbound.ts`; the per-channel state in `state.ts`.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type { Transport } from "../../../transport/Transport.js"
import { ChannelClosed, type ClientError, ClientRefused, ConnectionClosed, ConnectionLost } from "../../ClientError.js"
import * as Frame from "../../Frame.js"
import * as Methods from "../../Methods.js"
import { ChannelIds } from "./channelIds.js"
import { Completion } from "./completion.js"
import type { Outcome } from "./confirms.js"
import { settleExit } from "./counts.js"
import type { Gate } from "./gate.js"
import type { Activity } from "./heartbeat.js"
import * as Inbound from "./inbound.js"
import { spanName, spanOptions } from "./spans.js"
import { ChannelState, type ConfirmEntry, type EngineConfig, type PendingRpc, type Reply } from "./state.js"
import type { Job, Writer } from "./writer.js"

/** One connection's client side, shared by its channels, its reader, its writer and its heartbeat. */
export class Engine {
  state: "open" | "closing" | "closed" = "open"
  error: ClientError | undefined = undefined
  readonly channels = new Map<number, ChannelState>()
  readonly ids: ChannelIds
  /** Pending `update-secret` replies (channel 0). */
  readonly connectionRpc: Array<PendingRpc> = []
  readonly closed: Deferred.Deferred<void, ClientError> = Deferred.unsafeMake(FiberId.none)
  readonly closeOk: Deferred.Deferred<void> = Deferred.unsafeMake(FiberId.none)
  heartbeat: Fiber.RuntimeFiber<void, never> | undefined = undefined
  writer!: Writer

  constructor(
    readonly transport: Transport,
    readonly config: EngineConfig,
    readonly gate: Gate,
    readonly activity: Activity,
    readonly parser: Frame.Parser
  ) {
    this.ids = new ChannelIds(config.channelMax)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Writing
  // -------------------------------------------------------------------------------------------------------------

  /** The writer's admission check, run in wire order. */
  check = (job: { readonly channel: number; readonly force?: boolean | undefined }): ClientError | undefined => {
    if (job.force === true) return undefined
    if (this.state !== "open") return this.error ?? this.closingError()
    if (job.channel === 0) return undefined
    const ch = this.channels.get(job.channel)
    if (ch === undefined) return new ClientRefused({ reason: "Protocol", detail: `channel ${job.channel} is not open` })
    return ch.brokerClosed ? ch.error : undefined
  }

  closingError(): ClientError {
    return new ConnectionClosed({ replyCode: 200, replyText: "closing", classId: 0, methodId: 0, byBroker: false })
  }

  private usable(ch: ChannelState): ClientError | undefined {
    if (ch.error !== undefined) return ch.error
    if (this.state !== "open") return this.error ?? this.closingError()
    if (ch.status !== "open") {
      return new ChannelClosed({
        channel: ch.id,
        replyCode: 200,
        replyText: "channel is closing",
        classId: 0,
        methodId: 0,
        byBroker: false
      })
    }
    return undefined
  }

  /** An asynchronous method (ack, nack, reject, …): written at once when the writer is idle, else queued; not awaited. */
  post(ch: ChannelState, method: Methods.Method): Effect.Effect<void, ClientError> {
    return Effect.suspend(() => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      const job: Job = { channel: ch.id, frame: Frame.method(ch.id, method) }
      const written = this.writer.writeNow(job)
      if (written === true) return Effect.void
      if (written !== false) return Exit.fail(written)
      return this.writer.tryOffer(job) ? Effect.void : this.writer.offer(job)
    })
  }

  /**
   * `post` for the reader's replies (flow-ok, cancel-ok): queued at once when there is room, so that it keeps its
   * place before what the fibers the same frame resumed write next; else the Effect that waits for room.
   */
  postNow(ch: ChannelState, method: Methods.Method): Effect.Effect<void> | undefined {
    if (this.usable(ch) === undefined && this.writer.tryOffer({ channel: ch.id, frame: Frame.method(ch.id, method) })) {
      return undefined
    }
    return Effect.ignore(this.post(ch, method))
  }

  // Failures are `Exit.fail`, not `Effect.fail`: inside a span, `Effect.fail` hands the caller a proxy of the
  // error, and every waiter of a channel must see the same error (the one the channel closed with).

  /**
   * A synchronous request: one at a time per channel (later ones wait their turn), resolved by the reply the
   * broker sends for it. A reply that does not match is a protocol error that closes the connection. One span
   * per request (`amqp.queue.declare`, …), never per frame or per publish.
   */
  rpc(
    ch: ChannelState,
    method: Methods.Method,
    expect: ReadonlyArray<Methods.Tag>,
    onWrite?: () => void
  ): Effect.Effect<Reply, ClientError> {
    return ch.lock.withPermits(1)(Effect.suspend(() => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      return this.request(ch.id, ch.rpc, method, expect, onWrite)
    })).pipe(Effect.withSpan(spanName(method._tag), spanOptions(ch.id)))
  }

  request(
    channel: number,
    queue: Array<PendingRpc>,
    method: Methods.Method,
    expect: ReadonlyArray<Methods.Tag>,
    onWrite?: () => void
  ): Effect.Effect<Reply, ClientError> {
    const encoded = Frame.encode(Frame.method(channel, method), { frameMax: this.config.frameMax })
    if (encoded._tag === "Left") {
      return Exit.fail(new ClientRefused({ reason: "InvalidArgument", detail: encoded.left.message }))
    }
    const deferred = Deferred.unsafeMake<Reply, ClientError>(FiberId.none)
    const pending: PendingRpc = { expect, deferred }
    queue.push(pending)
    return this.writer.offer({ channel, frame: Frame.method(channel, method), onWrite }).pipe(
      Effect.tapError(() =>
        Effect.sync(() => {
          const i = queue.indexOf(pending)
          if (i >= 0) queue.splice(i, 1)
        })
      ),
      Effect.zipRight(Deferred.await(deferred))
    )
  }

  /**
   * One publish as one `Effect.async`, everything decided when it runs: while the connection is blocked or the
   * channel paused it waits first; when the writer is idle the message is handed to the socket from the caller,
   * synchronously; on a confirm channel the caller then parks once, until the broker settles it (a lone confirmed
   * publish costs no more than that).
   */
  publish(ch: ChannelState, publish: Frame.Publish): Effect.Effect<void, ClientError> {
    const self: Effect.Effect<void, ClientError> = Effect.async<void, ClientError>((resume) => {
      if (!this.gate.isOpen || ch.flowPaused !== undefined) return resume(this.whenPublishable(ch, self))
      const refused = this.usable(ch)
      if (refused !== undefined) return resume(Exit.fail(refused))
      const confirms = ch.confirms
      if (confirms === undefined) return this.writer.submitWith({ channel: ch.id, publish }, resume)
      const done = new Completion()
      const entry: ConfirmEntry = {
        mandatory: publish.mandatory === true,
        exchange: publish.exchange ?? "",
        routingKey: publish.routingKey ?? "",
        done,
        settle: (outcome) => done.done(settleExit(ch.id, outcome))
      }
      const job: Job = { channel: ch.id, publish, done, awaitConfirm: true, onWrite: () => confirms.register(entry) }
      const written = this.writer.writeNow(job)
      if (written !== true && written !== false) return resume(Exit.fail(written))
      if (written || this.writer.tryOffer(job)) return done.listen(resume)
      resume(Effect.zipRight(this.writer.offer(job), done.await))
    })
    return self
  }

  /**
   * Waits while the connection is blocked or the broker has paused the channel (decided before any frame of the
   * message is written), then publishes.
   */
  private whenPublishable<A>(ch: ChannelState, go: Effect.Effect<A, ClientError>): Effect.Effect<A, ClientError> {
    const flow: Effect.Effect<void, ClientError> = Effect.suspend(() =>
      ch.flowPaused === undefined ? Effect.void : Effect.zipRight(ch.flowPaused.await, flow)
    )
    const gated = Effect.zipRight(flow, go)
    return this.gate.isOpen ? gated : Effect.zipRight(this.gate.pass, gated)
  }

  /**
   * Publishes a batch in order with one completion for all: written (or, on a confirm channel, every message
   * acked); the first nack, return or refusal fails the whole batch.
   */
  publishAll(ch: ChannelState, publishes: ReadonlyArray<Frame.Publish>): Effect.Effect<void, ClientError> {
    const go = Effect.suspend((): Effect.Effect<void, ClientError> => {
      const refused = this.usable(ch)
      if (refused !== undefined) return Exit.fail(refused)
      if (publishes.length === 0) return Effect.void
      const confirms = ch.confirms
      const done = new Completion()
      const last = publishes.length - 1
      if (confirms === undefined) {
        // Jobs are written in order, so the last one written means all were; every job shares the completion so a
        // refused one fails the batch (only the last completes it on success). Queued at once while there is room.
        const job = (i: number): Job => ({ channel: ch.id, publish: publishes[i]!, done, awaitConfirm: i !== last })
        let i = 0
        while (i < publishes.length && this.writer.tryOffer(job(i))) i++
        if (i === publishes.length) return done.await
        return Effect.zipRight(
          Effect.forEach(publishes.slice(i), (_, k) => this.writer.offer(job(i + k)), { discard: true }),
          done.await
        )
      }
      let remaining = publishes.length
      const settle = (outcome: Outcome) => {
        const exit = settleExit(ch.id, outcome)
        if (exit._tag === "Failure") done.done(exit)
        else if (--remaining === 0) done.succeed()
      }
      const job = (publish: Frame.Publish): Job => {
        const entry: ConfirmEntry = {
          mandatory: publish.mandatory === true,
          exchange: publish.exchange ?? "",
          routingKey: publish.routingKey ?? "",
          done,
          settle
        }
        return { channel: ch.id, publish, done, awaitConfirm: true, onWrite: () => confirms.register(entry) }
      }
      let i = 0
      while (i < publishes.length && this.writer.tryOffer(job(publishes[i]!))) i++
      if (i === publishes.length) return done.await
      return Effect.zipRight(
        Effect.forEach(publishes.slice(i), (publish) => this.writer.offer(job(publish)), { discard: true }),
        done.await
      )
    })
    return this.gate.isOpen && ch.flowPaused === undefined ? go : this.whenPublishable(ch, go)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Channels
  // -------------------------------------------------------------------------------------------------------------

  openChannel: Effect.Effect<ChannelState, ClientError> = Effect.suspend(() => {
    if (this.state !== "open") return Exit.fail(this.error ?? this.closingError())
    const id = this.ids.allocate()
    if (id === undefined) {
      return Exit.fail(
        new ClientRefused({ reason: "ChannelsExhausted", detail: `all ${this.config.channelMax} channels are in use` })
      )
    }
    const ch = new ChannelState(id, Effect.unsafeMakeSemaphore(1), this)
    this.channels.set(id, ch)
    return this.rpc(ch, Methods.make("ChannelOpen", {}), ["ChannelOpenOk"]).pipe(
      Effect.as(ch),
      Effect.onError(() => Effect.sync(() => this.forget(ch)))
    )
  })

  forget(ch: ChannelState): void {
    if (this.channels.get(ch.id) === ch) {
      this.channels.delete(ch.id)
      this.ids.release(ch.id)
    }
  }

  /** Client-initiated close: queued behind what was already sent, waits for `close-ok` within the deadline. */
  closeChannel(ch: ChannelState): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (ch.status !== "open" || this.state !== "open") {
        this.failChannel(ch, ch.error ?? this.error ?? this.closingError())
        this.forget(ch)
        return Effect.void
      }
      ch.status = "closing"
      const closeOk = Deferred.unsafeMake<void>(FiberId.none)
      ch.closeOk = closeOk
      const close = Methods.make("ChannelClose", { replyCode: 200, replyText: "", classId: 0, methodId: 0 })
      return this.writer.offer({ channel: ch.id, frame: Frame.method(ch.id, close) }).pipe(
        Effect.zipRight(Deferred.await(closeOk)),
        this.withDeadline,
        Effect.withSpan(spanName("ChannelClose"), spanOptions(ch.id)),
        Effect.ensuring(Effect.sync(() => {
          this.failChannel(
            ch,
            new ChannelClosed({ channel: ch.id, replyCode: 200, replyText: "", classId: 0, methodId: 0, byBroker: false })
          )
          this.forget(ch)
        }))
      )
    })
  }

  /** Fails everything that waits on the channel. Idempotent; the first error wins. */
  failChannel(ch: ChannelState, error: ClientError): void {
    if (ch.error === undefined) ch.error = error
    const e = ch.error
    ch.status = "closed"
    ch.content = undefined
    for (const p of ch.rpc.splice(0)) Deferred.unsafeDone(p.deferred, Exit.fail(e))
    ch.confirms?.drain((_, entry) => entry.done.fail(e))
    for (const consumer of ch.consumers.values()) consumer.mailbox.unsafeDone(Exit.fail(e))
    ch.consumers.clear()
    for (const subscriber of ch.returnSubscribers) subscriber.unsafeDone(Exit.fail(e))
    ch.returnSubscribers.clear()
    if (ch.closeOk !== undefined) Deferred.unsafeDone(ch.closeOk, Effect.void)
    const paused = ch.flowPaused
    ch.flowPaused = undefined
    paused?.fail(e)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Reading (inbound.ts)
  // -------------------------------------------------------------------------------------------------------------

  /** The reader fiber: reads until EOF or error, feeding the parser and dispatching every frame. */
  readLoop(now: () => number): Effect.Effect<void> {
    return Inbound.readLoop(this, now)
  }

  /** Handles one frame synchronously; returns an Effect only when something must wait or be written. */
  dispatch(frame: Frame.Frame): Effect.Effect<void> | undefined {
    return Inbound.dispatch(this, frame)
  }

  // -------------------------------------------------------------------------------------------------------------
  // Ending
  // -------------------------------------------------------------------------------------------------------------

  /**
   * Bounds a close handshake by `closeTimeout`. Interruptible inside, because it usually runs in a finalizer
   * (uninterruptible), where a plain timeout would wait for the loser forever.
   */
  readonly withDeadline = <A, E>(self: Effect.Effect<A, E>): Effect.Effect<void> =>
    Effect.ignore(Effect.timeout(Effect.interruptible(self), this.config.closeTimeout))

  failAll(error: ClientError): void {
    for (const ch of this.channels.values()) this.failChannel(ch, error)
    this.channels.clear()
    for (const p of this.connectionRpc.splice(0)) Deferred.unsafeDone(p.deferred, Exit.fail(error))
  }

  /** Final teardown: fail everything, stop the writer and the heartbeat, close the transport. Idempotent. */
  finish(error: ClientError, graceful: boolean): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.state === "closed") return Effect.void
      this.state = "closed"
      this.error ??= error
      this.failAll(this.error)
      Deferred.unsafeDone(this.closeOk, Effect.void)
      const heartbeat = this.heartbeat
      // The heartbeat goes last: this may be running on the heartbeat fiber itself (a heartbeat timeout).
      return Effect.all([
        Deferred.done(this.closed, Exit.fail(this.error)),
        this.writer.fail(this.error),
        this.gate.unblock,
        // Interruptible: the transport's own deadline must be able to fire inside a finalizer.
        graceful ? Effect.interruptible(this.transport.close({ timeout: this.config.closeTimeout })) : this.transport.abort(),
        heartbeat === undefined ? Effect.void : Fiber.interruptFork(heartbeat)
      ], { discard: true })
    })
  }

  /** The connection died without a close handshake. */
  lost(reason: ConnectionLost["reason"], detail: string, cause?: unknown): Effect.Effect<void> {
    return this.finish(new ConnectionLost({ reason, detail, cause }), false)
  }

  /**
   * Closes the connection with the close handshake: `connection.close`, wait for `close-ok` (or a crossed
   * `close`) within the deadline, then close the socket. `code` 200 is a normal close; others report a protocol
   * violation by the broker.
   */
  close(code: number, text: string): Effect.Effect<void> {
    return Effect.suspend(() => {
      if (this.state !== "open") {
        // Another fiber is closing (a broker close being answered, a protocol error): wait for it within the
        // deadline, then end it ourselves; `finish` is idempotent.
        return Deferred.await(this.closed).pipe(
          this.withDeadline,
          Effect.zipRight(Effect.suspend(() => this.finish(this.error ?? this.closingError(), false)))
        )
      }
      this.state = "closing"
      const error = new ConnectionClosed({ replyCode: code, replyText: text, classId: 0, methodId: 0, byBroker: false })
      this.error = error
      this.failAll(error)
      const close = Methods.make("ConnectionClose", { replyCode: code, replyText: text.slice(0, 200), classId: 0, methodId: 0 })
      return this.writer.offer({ channel: 0, frame: Frame.method(0, close), force: true }).pipe(
        Effect.zipRight(Deferred.await(this.closeOk)),
        this.withDeadline,
        Effect.zipRight(this.finish(error, true)),
        Effect.withSpan(spanName("ConnectionClose"), spanOptions(0))
      )
    })
  }

  /** A protocol violation by the broker: close the connection with the matching code, in the background. */
  fatal(code: number, text: string): Effect.Effect<void> {
    return Effect.asVoid(Effect.forkDaemon(this.close(code, text)))
  }

  updateSecret(secret: Uint8Array, reason: string): Effect.Effect<void, ClientError> {
    return Effect.suspend(() => {
      if (this.state !== "open") return Exit.fail(this.error ?? this.closingError())
      return Effect.asVoid(
        this.request(0, this.connectionRpc, Methods.make("ConnectionUpdateSecret", { newSecret: secret, reason }), [
          "ConnectionUpdateSecretOk"
        ])
      )
    }).pipe(Effect.withSpan(spanName("ConnectionUpdateSecret"), spanOptions(0)))
  }
}
