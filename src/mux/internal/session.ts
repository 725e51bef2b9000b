import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberId from "effect/FiberId"
import type * as Scope from "effect/Scope"
import type * as Transport from "../../transport/Transport.js"
import type { TransportError } from "../../transport/TransportError.js"
import * as Frame from "../Frame.js"
import { ErrorCode, MuxError } from "../MuxError.js"
import { Decoder } from "./decoder.js"
import { count, countReason, metrics } from "./metrics.js"
import { Outbox } from "./outbox.js"
import { ioScheduler } from "../../internal/ioScheduler.js"
import { withInlineReader } from "../../transport/internal/socket.js"
import { type Host, StreamCore } from "./stream.js"

type Resume<A, E> = (effect: Effect.Effect<A, E>) => void

export type Role = "client" | "server"

export interface ResolvedOptions {
  readonly role: Role
  readonly windowSize: number
  readonly receiveWindow: number
  readonly maxReceiveWindow: number
  /** What all of a session's streams together may grow their windows by (beyond `receiveWindow`). */
  readonly receiveBudget: number
  readonly acceptBacklog: number
  readonly frameCap: number
  readonly thresholdUpdates: boolean
  readonly streamWriteTimeout: Duration.Duration | undefined
  readonly writeTimeout: Duration.Duration
  readonly closeTimeout: Duration.Duration
  readonly drainTimeout: Duration.Duration
  readonly maxQueuedBytes: number
  readonly maxControlFrames: number
}

/** What a Go peer says when its transport reaches EOF; we say the same. */
const peerEofDebug = "read EOF from remote peer"
/** How long a reset stream's ID swallows late frames without an RST in return (Go: 5 s). */
const resetMemoryMillis = 5_000

/** The verdict on a DATA frame, taken when its header arrives (before its payload is read). */
const enum Verdict {
  Deliver,
  New,
  Ignore,
  Unknown,
  Overflow,
  Refuse,
  Duplicate,
  WrongParity
}

export interface SessionEnd {
  readonly local: MuxError
  readonly remote: Frame.GoAway | undefined
}

/**
 * The session engine: the stream table, the reader (frames in) and the writer (frames out). The reader handles
 * every frame synchronously: it never waits on a stream's consumer, on the writer or on the accept queue.
 */
export class SessionCore implements Host {
  readonly streams = new Map<number, StreamCore>()
  private readonly recentlyReset = new Map<number, number>()
  private nextId: number
  private highestRemote = 0
  private readonly pending: Array<StreamCore> = []
  private pendingHead = 0
  private acceptors: Array<Resume<StreamCore, MuxError>> = []
  private verdict = Verdict.Ignore
  private verdictStream: StreamCore | undefined
  dead: MuxError | undefined
  /** Set when the transport is broken or stuck: close it at once instead of flushing a GOAWAY. */
  private abortTransport = false
  remoteGoAway: Frame.GoAway | undefined
  readonly outbox: Outbox
  readonly decoder = new Decoder(true)
  readonly deadSignal = Deferred.unsafeMake<void>(FiberId.none)
  /** Completes with the peer's first GOAWAY: the drain deadline starts then. */
  readonly goneAwaySignal = Deferred.unsafeMake<void>(FiberId.none)
  readonly ended = Deferred.unsafeMake<SessionEnd>(FiberId.none)
  readonly windowSize: number
  readonly receiveWindow: number
  readonly maxReceiveWindow: number
  /** What is left of `receiveBudget`. */
  private receiveBudget: number
  readonly frameCap: number
  readonly thresholdUpdates: boolean
  readonly streamWriteTimeout: Duration.Duration | undefined

  constructor(
    readonly transport: Transport.Transport,
    readonly options: ResolvedOptions,
    /** The clock of the fiber that made the session (so `TestClock` drives the write watchdog in tests). */
    private readonly clock: Clock.Clock
  ) {
    this.nextId = options.role === "client" ? 1 : 0
    this.windowSize = options.windowSize
    this.receiveWindow = options.receiveWindow
    this.maxReceiveWindow = options.maxReceiveWindow
    this.receiveBudget = options.receiveBudget
    this.frameCap = options.frameCap
    this.thresholdUpdates = options.thresholdUpdates
    this.streamWriteTimeout = options.streamWriteTimeout
    this.outbox = new Outbox(
      options.maxQueuedBytes,
      options.frameCap * 4,
      options.maxControlFrames,
      Math.max(256 * 1024, options.frameCap * 4)
    )
  }

  // ---- Host ---------------------------------------------------------------------------------------------------

  // Methods, not per-session arrow functions: streams call them on every read and write, and optimised code that
  // saw one session's closures deoptimises ("wrong call target") when the next session's arrive.

  offer(entry: Parameters<Outbox["offer"]>[0]): Effect.Effect<void, MuxError> {
    return this.outbox.offer(entry)
  }

  tryOffer(entry: Parameters<Outbox["offer"]>[0]): boolean {
    return this.outbox.tryOffer(entry)
  }

  grant(streamId: number, increment: number): void {
    this.outbox.grant(streamId, increment)
  }

  sendRst(streamId: number, code: number): void {
    count(metrics.resetsSent, 1)
    if (!this.outbox.pushControl(Frame.u32Frame(Frame.FrameType.Rst, streamId, code))) {
      this.terminate(
        new MuxError({ reason: "InternalError", code: ErrorCode.InternalError, detail: "control queue overflow" }),
        ErrorCode.InternalError,
        "control queue overflow"
      )
    }
  }

  reserveWindow(bytes: number): number {
    const granted = Math.max(0, Math.min(bytes, this.receiveBudget))
    this.receiveBudget -= granted
    return granted
  }

  detach(stream: StreamCore, reset: boolean): void {
    if (this.streams.get(stream.id) === stream) this.forget(stream)
    if (reset) this.rememberReset(stream.id)
  }

  /** Removes a stream from the table and returns its grown window to the budget. */
  private forget(stream: StreamCore): void {
    this.streams.delete(stream.id)
    this.receiveBudget += stream.grown
    stream.grown = 0
  }

  // ---- opening and accepting ----------------------------------------------------------------------------------

  open(): Effect.Effect<StreamCore, MuxError> {
    return Effect.suspend(() => {
      if (this.dead !== undefined) return Effect.fail(this.dead)
      if (this.remoteGoAway !== undefined) return Effect.fail(this.goneAwayError(this.remoteGoAway))
      const id = this.nextId + 2
      if (id > Frame.MaxStreamId) {
        return Effect.fail(
          new MuxError({ reason: "StreamsExhausted", code: ErrorCode.StreamsExhausted, detail: "no stream id left" })
        )
      }
      this.nextId = id
      count(metrics.streamsOpened, 1)
      const stream = new StreamCore(id, true, this)
      this.streams.set(id, stream)
      return Effect.succeed(stream)
    })
  }

  readonly accept: Effect.Effect<StreamCore, MuxError> = Effect.async<StreamCore, MuxError>((resume) => {
    if (this.pendingHead < this.pending.length) return resume(Effect.succeed(this.shiftPending()))
    if (this.dead !== undefined) return resume(Effect.fail(this.dead))
    this.acceptors.push(resume)
    return Effect.sync(() => {
      const index = this.acceptors.indexOf(resume)
      if (index >= 0) this.acceptors.splice(index, 1)
    })
  })

  get pendingAccepts(): number {
    return this.pending.length - this.pendingHead
  }

  private shiftPending(): StreamCore {
    const stream = this.pending[this.pendingHead]!
    this.pendingHead++
    if (this.pendingHead === this.pending.length) {
      this.pending.length = 0
      this.pendingHead = 0
    }
    return stream
  }

  /** Bytes held in stream receive buffers (bounded by the window per stream). */
  get bufferedBytes(): number {
    let total = 0
    for (const stream of this.streams.values()) total += stream.buffered
    return total
  }

  // ---- the reader ---------------------------------------------------------------------------------------------

  private isRemoteParity(id: number): boolean {
    return (id & 1) === (this.options.role === "client" ? 0 : 1)
  }

  /** Decides a DATA frame's fate from its header, so skipped payloads are never buffered (the decoder's filter). */
  acceptData(streamId: number, flags: number, length: number): boolean {
    this.verdictStream = undefined
    if (this.dead !== undefined) {
      this.verdict = Verdict.Ignore
      return false
    }
    const stream = this.streams.get(streamId)
    if ((flags & Frame.Flag.Syn) !== 0) {
      if (!this.isRemoteParity(streamId)) {
        this.verdict = Verdict.WrongParity
        return false
      }
      if (stream !== undefined) {
        this.verdict = Verdict.Duplicate
        return false
      }
      if (streamId > this.highestRemote) this.highestRemote = streamId
      if (this.pendingAccepts >= this.options.acceptBacklog) {
        this.verdict = Verdict.Refuse
        return false
      }
      if (length > this.windowSize) {
        this.verdict = Verdict.Overflow
        return false
      }
      this.verdict = Verdict.New
      return true
    }
    if (stream === undefined) {
      // Go ignores an empty FIN for a stream it does not know, and RSTs anything else.
      this.verdict = (length === 0 && (flags & Frame.Flag.Fin) !== 0) || this.wasReset(streamId)
        ? Verdict.Ignore
        : Verdict.Unknown
      return false
    }
    this.verdictStream = stream
    if (stream.finReceived) {
      this.verdict = length === 0 ? Verdict.Ignore : Verdict.Unknown
      return false
    }
    if (stream.buffered + length > stream.receiveLimit) {
      this.verdict = Verdict.Overflow
      return false
    }
    this.verdict = Verdict.Deliver
    return true
  }

  /** Feeds one transport read to the decoder and handles every complete frame. */
  private handleChunks(chunks: ReadonlyArray<Uint8Array>): void {
    let bytes = 0
    for (let i = 0; i < chunks.length; i++) {
      const chunk = chunks[i]!
      this.decoder.push(chunk)
      bytes += chunk.length
    }
    count(metrics.bytesReceived, bytes)
    this.handleFrames()
  }

  /** Feeds one chunk, as the socket delivers it, and handles every complete frame. */
  private handleChunk(chunk: Uint8Array): void {
    this.decoder.push(chunk)
    count(metrics.bytesReceived, chunk.length)
    this.handleFrames()
  }

  private handleFrames(): void {
    let frames = 0
    for (;;) {
      const frame = this.decoder.next(this)
      if (frame === undefined) break
      if (frame instanceof MuxError) {
        if (this.dead === undefined) this.terminate(frame, frame.code, frame.detail ?? frame.reason)
        break
      }
      frames++
      if (this.dead === undefined) this.handleFrame(frame)
    }
    count(metrics.framesReceived, frames)
  }

  private handleFrame(frame: Frame.Frame): void {
    switch (frame._tag) {
      case "Data":
        return this.handleData(frame)
      case "WndInc": {
        this.streams.get(frame.streamId)?.addWindow(frame.increment)
        return
      }
      case "Rst": {
        const stream = this.streams.get(frame.streamId)
        if (stream === undefined) return
        const reason = frame.code === ErrorCode.StreamRefused
          ? "StreamRefused"
          : frame.code === ErrorCode.AcceptQueueFull
          ? "AcceptQueueFull"
          : frame.code === ErrorCode.FlowControlError
          ? "FlowControl"
          : "StreamReset"
        stream.fail(new MuxError({ reason, code: frame.code, streamId: frame.streamId, remote: true }), true)
        this.detach(stream, false)
        stream.attached = false
        return
      }
      case "GoAway": {
        // The first GOAWAY says why; a later one (Go's Close() after GoAway()) only narrows `last`.
        const goAway: Frame.GoAway = this.remoteGoAway === undefined
          ? { ...frame, debug: frame.debug.slice() }
          : { ...this.remoteGoAway, lastStreamId: Math.min(this.remoteGoAway.lastStreamId, frame.lastStreamId) }
        this.remoteGoAway = goAway
        Deferred.unsafeDone(this.goneAwaySignal, Effect.void)
        const error = this.goneAwayError(goAway)
        for (const stream of [...this.streams.values()]) {
          if (stream.local && stream.id > goAway.lastStreamId) {
            stream.fail(error, true)
            this.detach(stream, false)
            stream.attached = false
          }
        }
        return
      }
      case "Unknown":
        return
    }
  }

  private handleData(frame: Frame.Data): void {
    switch (this.verdict) {
      case Verdict.Deliver: {
        const stream = this.verdictStream!
        if (stream.attached) stream.deliver(frame.payload, frame.fin)
        else if (frame.payload.length > 0 && !this.wasReset(frame.streamId)) this.sendRst(frame.streamId, ErrorCode.StreamClosed)
        return
      }
      case Verdict.New: {
        const stream = new StreamCore(frame.streamId, false, this)
        this.streams.set(frame.streamId, stream)
        count(metrics.streamsAccepted, 1)
        // The rest of this frame's payload (if it comes in pieces) goes to the new stream.
        this.verdict = Verdict.Deliver
        this.verdictStream = stream
        stream.deliver(frame.payload, frame.fin)
        const acceptor = this.acceptors.shift()
        if (acceptor !== undefined) acceptor(Effect.succeed(stream))
        else this.pending.push(stream)
        return
      }
      case Verdict.Ignore:
        return
      case Verdict.Unknown:
        return this.sendRst(frame.streamId, ErrorCode.StreamClosed)
      case Verdict.Overflow: {
        this.sendRst(frame.streamId, ErrorCode.FlowControlError)
        const stream = this.verdictStream
        if (stream !== undefined) {
          stream.fail(
            new MuxError({
              reason: "FlowControl",
              code: ErrorCode.FlowControlError,
              streamId: frame.streamId,
              detail: "peer overran the receive window"
            }),
            true
          )
          stream.attached = false
          this.forget(stream)
        }
        this.rememberReset(frame.streamId)
        return
      }
      case Verdict.Refuse:
        this.rememberReset(frame.streamId)
        return this.sendRst(frame.streamId, ErrorCode.AcceptQueueFull)
      case Verdict.Duplicate:
        return this.terminate(
          new MuxError({ reason: "ProtocolError", code: ErrorCode.ProtocolError, streamId: frame.streamId, detail: "duplicate SYN" }),
          ErrorCode.ProtocolError,
          `duplicate SYN for stream 0x${frame.streamId.toString(16)}`
        )
      case Verdict.WrongParity: {
        const debug = `initiated stream id has wrong parity for remote endpoint: 0x${frame.streamId.toString(16)}`
        return this.terminate(
          new MuxError({ reason: "ProtocolError", code: ErrorCode.ProtocolError, streamId: frame.streamId, detail: debug }),
          ErrorCode.ProtocolError,
          debug
        )
      }
    }
  }

  private rememberReset(streamId: number): void {
    const now = Date.now()
    if (this.recentlyReset.size >= 4096) {
      for (const [id, at] of this.recentlyReset) {
        if (now - at > resetMemoryMillis || this.recentlyReset.size >= 4096) this.recentlyReset.delete(id)
        else break
      }
    }
    this.recentlyReset.set(streamId, now)
  }

  private wasReset(streamId: number): boolean {
    const at = this.recentlyReset.get(streamId)
    if (at === undefined) return false
    if (Date.now() - at <= resetMemoryMillis) return true
    this.recentlyReset.delete(streamId)
    return false
  }

  /**
   * Reads until the transport ends. Over a socket, what arrives while the reader is parked is handled in the
   * socket's data callback: the reader never waits on anything, so a fiber wake-up per socket read (and the
   * Effect values it allocates, most of the session's garbage in a bulk transfer) buys nothing.
   */
  readonly readLoop: Effect.Effect<void> = Effect.suspend(() => {
    const loop: Effect.Effect<void> = Effect.matchEffect(this.transport.read, {
      onFailure: (error: TransportError) => Effect.sync(() => this.lost(error)),
      onSuccess: (result) => {
        if (typeof result === "symbol") return Effect.sync(() => this.peerEof())
        this.handleChunks(result)
        return loop
      }
    })
    return withInlineReader(this.transport, (chunk) => {
      this.handleChunk(chunk)
      return true
    }, loop)
  })

  private peerEof(): void {
    if (this.dead !== undefined) return
    const truncated = this.decoder.midFrame ? " (mid-frame)" : ""
    this.terminate(
      new MuxError({ reason: "ConnectionLost", code: ErrorCode.PeerEOF, detail: `${peerEofDebug}${truncated}` }),
      ErrorCode.PeerEOF,
      peerEofDebug
    )
  }

  private lost(error: TransportError): void {
    if (this.dead !== undefined) return
    this.abortTransport = true
    this.terminate(
      new MuxError({ reason: "ConnectionLost", code: ErrorCode.ErrorUnknown, detail: error.message, cause: error }),
      undefined,
      undefined
    )
  }

  // ---- the writer ---------------------------------------------------------------------------------------------

  /** When the transport write in progress started (Clock millis), for the watchdog. */
  private writeStartedAt: number | undefined

  /** One transport write per batch; the handlers are made once, not per batch. */
  readonly writeLoop: Effect.Effect<void> = Effect.suspend(() =>
    Effect.flatMap(this.outbox.take, (batch) => batch === undefined ? Effect.void : this.writeBatch(batch))
  )

  private writeBatch(batch: ReadonlyArray<Uint8Array>): Effect.Effect<void> {
    this.writeStartedAt = this.clock.unsafeCurrentTimeMillis()
    let bytes = 0
    for (let i = 0; i < batch.length; i++) bytes += batch[i]!.length
    count(metrics.bytesSent, bytes)
    return Effect.matchEffect(this.transport.writeAll(batch), this.written)
  }

  private readonly written = {
    onFailure: (error: TransportError): Effect.Effect<void> =>
      Effect.sync(() => {
        this.writeStartedAt = undefined
        this.abortTransport = true
        this.terminate(
          new MuxError({ reason: "ConnectionLost", code: ErrorCode.ErrorUnknown, detail: error.message, cause: error }),
          undefined,
          undefined
        )
        this.outbox.clear()
      }),
    onSuccess: (): Effect.Effect<void> => {
      this.writeStartedAt = undefined
      return this.writeLoop
    }
  }

  /**
   * The connection-level write timeout, as one long-lived fiber rather than a timer per write: it wakes every
   * quarter of the timeout and kills the session if a write has been pending for longer than the timeout.
   */
  readonly watchdog: Effect.Effect<void> = Effect.suspend(() => {
    const timeout = Duration.toMillis(this.options.writeTimeout)
    const check = Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        const started = this.writeStartedAt
        if (started === undefined || now - started < timeout || this.abortTransport) return
        this.abortTransport = true
        this.terminate(
          new MuxError({ reason: "WriteTimeout", code: ErrorCode.WriteTimeout, detail: "transport write timed out" }),
          undefined,
          undefined
        )
        this.outbox.clear()
        // The closer aborts the transport, which fails the stuck write.
      }))
    return Effect.forever(Effect.zipRight(Effect.sleep(Duration.millis(Math.max(1, timeout / 4))), check))
  })

  /**
   * After the peer's GOAWAY the streams it still serves may finish, but not for ever: `drainTimeout` after it
   * the session closes (GOAWAY 0, then the transport), failing what is still open with RemoteGoneAway. Go peers
   * cannot tell a fixed reader from a buggy one, so a session a peer has left is best not kept (spec §7).
   */
  readonly drainer: Effect.Effect<void> = Effect.suspend(() => {
    const timeout = this.options.drainTimeout
    if (!Duration.isFinite(timeout)) return Effect.void
    return Deferred.await(this.goneAwaySignal).pipe(
      Effect.zipRight(Effect.sleep(timeout)),
      Effect.zipRight(Effect.sync(() => this.drainExpired())),
      Effect.raceFirst(Deferred.await(this.deadSignal))
    )
  })

  private drainExpired(): void {
    const goAway = this.remoteGoAway
    if (this.dead !== undefined || goAway === undefined) return
    const open = this.streams.size
    this.terminate(
      new MuxError({
        reason: "RemoteGoneAway",
        code: goAway.code,
        remote: true,
        lastStreamId: goAway.lastStreamId,
        debug: Frame.debugText(goAway),
        detail: `drain timeout: ${open} stream${open === 1 ? "" : "s"} still open ${
          Duration.format(this.options.drainTimeout)
        } after the peer's GOAWAY`
      }),
      ErrorCode.NoError,
      "drain timeout"
    )
  }

  // ---- the end ------------------------------------------------------------------------------------------------

  /** The GOAWAY `last` field: the highest remote stream seen, or Go's initial values (server 1, client 0). */
  get lastRemoteId(): number {
    return this.highestRemote !== 0 ? this.highestRemote : this.options.role === "server" ? 1 : 0
  }

  /**
   * Ends the session: every stream and acceptor fails with `error`; a GOAWAY with `code` and `debug` (if given)
   * goes out after what is queued; then the closer fiber closes the transport.
   */
  terminate(error: MuxError, code: number | undefined, debug: string | undefined): void {
    if (this.dead !== undefined) return
    this.dead = error
    countReason(error.reason)
    const last = code === undefined ? undefined : Frame.unsafeEncode(Frame.goAway(this.lastRemoteId, code, debug ?? ""))
    this.outbox.finish(error, last)
    for (const stream of this.streams.values()) {
      stream.fail(error, false)
      stream.attached = false
    }
    this.streams.clear()
    const acceptors = this.acceptors
    this.acceptors = []
    for (const acceptor of acceptors) acceptor(Effect.fail(error))
    // Streams nobody accepted are closed with the session.
    for (let i = this.pendingHead; i < this.pending.length; i++) this.pending[i]!.fail(error, false)
    this.pending.length = 0
    this.pendingHead = 0
    Deferred.unsafeDone(this.deadSignal, Effect.void)
  }

  /** Waits for the end, flushes the GOAWAY (bounded), closes the transport and publishes the outcome. */
  readonly closer = (writer: Effect.Effect<void>): Effect.Effect<void> =>
    Effect.gen(this, function*() {
      yield* Deferred.await(this.deadSignal)
      if (!this.abortTransport) {
        yield* Effect.timeout(writer, this.options.closeTimeout).pipe(Effect.ignore)
        yield* this.transport.close({ timeout: this.options.closeTimeout })
      } else {
        yield* this.transport.abort(this.dead)
      }
      yield* Deferred.succeed(this.ended, { local: this.dead!, remote: this.remoteGoAway })
    })

  goneAwayError(goAway: Frame.GoAway): MuxError {
    return new MuxError({
      reason: "RemoteGoneAway",
      code: goAway.code,
      remote: true,
      lastStreamId: goAway.lastStreamId,
      debug: Frame.debugText(goAway)
    })
  }
}

/** Runs a session engine in the current scope: reader, writer, closer; the scope's end closes the session. */
export const run = (core: SessionCore): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const own = <A>(effect: Effect.Effect<A>) => Effect.forkScoped(Effect.withScheduler(effect, ioScheduler))
    const writer = yield* own(core.writeLoop)
    yield* own(core.readLoop)
    yield* own(core.watchdog)
    yield* own(core.drainer)
    const closer = yield* own(core.closer(Effect.asVoid(writer.await)))
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        core.terminate(
          new MuxError({ reason: "SessionClosed", code: ErrorCode.SessionClosed, detail: "session closed" }),
          ErrorCode.NoError,
          "no error"
        )
        // The closer is bounded by closeTimeout twice; this bound covers a transport that hangs anyway.
        yield* closer.await.pipe(
          Effect.timeout(Duration.sum(core.options.closeTimeout, core.options.closeTimeout)),
          Effect.ignore
        )
      })
    )
  })
