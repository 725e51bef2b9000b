import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import type * as Net from "node:net"
import * as Tls from "node:tls"
import * as Address from "../Address.js"
import * as Transport from "../Transport.js"
import { fromNodeError, TransportError } from "../TransportError.js"
import * as Metrics from "./metrics.js"

/** Inbound bytes buffered before the socket is paused, unless the caller says otherwise. */
export const defaultReadHighWaterMark = 256 * 1024

const defaultCloseTimeout = Duration.seconds(5)

const noop = () => {}

/** @internal */
export interface SocketOptions {
  /** Pause the socket once this many bytes wait for a reader. */
  readonly readHighWaterMark?: number | undefined
  /** The socket that carries the bytes on the wire: the TCP socket under a TLS socket, used for resets. */
  readonly raw?: Net.Socket | undefined
  /** Whether the raw socket is TCP, so that `abort` can reset it (Unix sockets have no reset). */
  readonly resettable?: boolean | undefined
  readonly local?: Address.Address | undefined
  readonly remote?: Address.Address | undefined
  /** Close the connection after this long without reads or writes. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  readonly onIdle?: (() => void) | undefined
}

type Resume<A> = (effect: Effect.Effect<A, TransportError>) => void

type State = "open" | "closing" | "closed"

interface WriteWaiter {
  readonly seq: number
  readonly resume: Resume<void>
}

const tcpAddress = (host: string | undefined, port: number | undefined): Address.Address =>
  Address.tcp(host ?? "", port ?? 0)

const toStrings = (value: unknown): Readonly<Record<string, string | ReadonlyArray<string>>> => {
  const out: Record<string, string | ReadonlyArray<string>> = {}
  if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (typeof v === "string") out[k] = v
      else if (Array.isArray(v)) out[k] = v.map(String)
    }
  }
  return out
}

const tlsInfo = (socket: Tls.TLSSocket, servername: string | undefined): Transport.TlsInfo => {
  const cert = socket.getPeerCertificate(false)
  const hasCert = cert !== null && typeof cert === "object" && Object.keys(cert).length > 0
  const alpn = socket.alpnProtocol
  const error = socket.authorizationError as unknown
  const sni = (socket as { readonly servername?: unknown }).servername
  return {
    protocol: socket.getProtocol() ?? undefined,
    cipher: socket.getCipher()?.name,
    alpnProtocol: typeof alpn === "string" ? alpn : undefined,
    servername: typeof sni === "string" ? sni : servername,
    authorized: socket.authorized,
    authorizationError: error === null || error === undefined ? undefined : String(error),
    peerCertificate: hasCert
      ? {
        subject: toStrings(cert.subject),
        issuer: toStrings(cert.issuer),
        subjectAltName: cert.subjectaltname,
        validFrom: cert.valid_from,
        validTo: cert.valid_to,
        fingerprint256: cert.fingerprint256,
        raw: new Uint8Array(cert.raw)
      }
      : undefined
  }
}

const emptyChunk = new Uint8Array(0)

const transports = new WeakMap<Transport.Transport, SocketTransport>()

/**
 * The socket adapter behind a transport made by this module, for operations that need the Node socket
 * (`Tls.upgrade`, tests that look at backpressure).
 *
 * @internal
 */
export const adapterOf = (transport: Transport.Transport): SocketTransport | undefined => transports.get(transport)

/**
 * Runs a protocol's read loop with `inline` taking the bytes that arrive while the loop is parked in `read` (see
 * `SocketTransport.setInlineReader`); on a transport that is not a socket the loop runs as it is.
 *
 * @internal
 */
export const withInlineReader = <A, E, R>(
  transport: Transport.Transport,
  inline: (chunk: Uint8Array) => boolean,
  loop: Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    const socket = transports.get(transport)
    if (socket === undefined) return loop
    socket.setInlineReader(inline)
    return Effect.ensuring(loop, Effect.sync(() => socket.setInlineReader(undefined)))
  })

/**
 * A connected `net.Socket` (or `tls.TLSSocket`) as a `Transport`.
 *
 * Reads are pulled from a buffer filled by `data` events: above the read high-water mark the socket is paused,
 * so the kernel's window closes and the peer's writes wait. A write is complete once its bytes are in the kernel:
 * at once when Node could hand them over synchronously, else on Node's write callback. Writers wait for `drain`
 * while Node's own buffer is above its mark, so concurrent writers cannot grow it either.
 *
 * @internal
 */
export class SocketTransport {
  private state: State = "open"
  private chunks: Array<Uint8Array> = []
  private bytes = 0
  private eof = false
  private paused = false
  private writeEnded = false
  /** Why the socket went away, when it was not a clean close or our own abort. */
  private failure: TransportError | undefined
  private aborted = false
  /** The parked reader: resumed with `take`, so that bytes only ever leave the buffer into a live fiber. */
  private reader: Resume<Transport.ReadResult> | undefined
  private readerFiber: Fiber.RuntimeFiber<unknown, unknown> | undefined
  private drainWaiters: Array<() => void> = []
  /** Writes handed to Node with our callback, and callbacks received: write n is done once `writesDone >= n`. */
  private writesIssued = 0
  private writesDone = 0
  private writeFailure: TransportError | undefined
  private writeWaiters: Array<WriteWaiter> = []
  private readonly closedSignal = Deferred.unsafeMake<void, TransportError>(FiberId.none)
  private readonly highWaterMark: number
  private readonly raw: Net.Socket
  private readonly addressText: string
  private readonly local: Address.Address
  private readonly remote: Address.Address
  private readonly kind: Metrics.Kind
  private readonly tags: Metrics.Tags
  readonly transport: Transport.Transport

  constructor(readonly socket: Net.Socket, private readonly options: SocketOptions = {}) {
    this.highWaterMark = Math.max(1, options.readHighWaterMark ?? defaultReadHighWaterMark)
    this.raw = options.raw ?? socket
    this.local = options.local ?? tcpAddress(socket.localAddress, socket.localPort)
    this.remote = options.remote ?? tcpAddress(socket.remoteAddress, socket.remotePort)
    this.addressText = Address.format(this.remote)
    this.kind = socket instanceof Tls.TLSSocket ? "tls" : this.remote._tag === "UnixAddress" ? "unix" : "tcp"
    this.tags = Metrics.tagsOf(this.kind)
    Metrics.opened(this.tags)
    socket.on("data", this.onData)
    socket.on("end", this.onEnd)
    socket.on("error", this.onError)
    socket.on("close", this.onClose)
    socket.on("drain", this.onDrain)
    if (options.idleTimeout !== undefined) {
      socket.setTimeout(Duration.toMillis(options.idleTimeout))
      socket.on("timeout", this.onTimeout)
    }
    this.transport = {
      [Transport.TypeId]: Transport.TypeId,
      read: this.take,
      write: (chunk) => this.writeAll([chunk]),
      writeAll: (chunks) => this.writeAll(chunks),
      shutdownWrite: Effect.suspend(() => this.shutdownWrite()),
      close: (closeOptions) => Effect.suspend(() => this.close(closeOptions)),
      abort: () => Effect.suspend(() => this.abort()),
      closed: Deferred.await(this.closedSignal),
      info: Effect.sync(() => this.info())
    }
    transports.set(this.transport, this)
    // The socket may have died between its opening and this adapter (an error in that gap went unobserved).
    if (socket.destroyed) {
      this.fail(new TransportError({ reason: "Read", address: this.addressText, detail: "socket closed before use" }))
      this.onClose()
    }
  }

  /** Bytes received and not yet read: in our buffer and in Node's readable buffer. */
  get bufferedBytes(): number {
    return this.bytes + this.socket.readableLength
  }

  get isPaused(): boolean {
    return this.paused
  }

  get isOpen(): boolean {
    return this.state === "open"
  }

  /** Open both ways, with no error and no FIN from the peer: fit to be reused for another request. */
  get isReusable(): boolean {
    return this.state === "open" && !this.eof && !this.writeEnded && this.failure === undefined &&
      !this.socket.destroyed
  }

  /** Completes once the socket has closed and its handle is released. */
  readonly awaitClosed: Effect.Effect<void> = Effect.ignore(Deferred.await(this.closedSignal))

  /**
   * Stops listening to the socket without closing it, for a protocol upgrade. Fails if bytes were received and
   * not read: they belong to whoever takes the socket over.
   */
  detach(): Effect.Effect<Net.Socket, TransportError> {
    return Effect.suspend(() => {
      if (this.state !== "open" || this.writeEnded) return Effect.fail(this.closedError())
      if (this.bytes > 0 || this.eof) {
        return Effect.fail(
          new TransportError({ reason: "Unsupported", address: this.addressText, detail: "unread bytes before upgrade" })
        )
      }
      this.removeListeners()
      // Until the new owner listens, a stray error must not crash the process.
      this.socket.on("error", noop)
      this.state = "closed"
      this.socket.pause()
      this.failReader()
      Metrics.closed(this.tags)
      Deferred.unsafeDone(this.closedSignal, Effect.void)
      return Effect.succeed(this.socket)
    })
  }

  /**
   * Takes bytes as they arrive, synchronously, while the reader is parked and nothing is buffered: a protocol whose
   * reader handles most reads without waiting skips a fiber wake-up per read. It returns `false` when the reader
   * must run now for what it left (the reader then gets an empty read); if it throws, the parked read dies with
   * what it threw. Set and cleared around a read loop by `withInlineReader`.
   */
  private inline: ((chunk: Uint8Array) => boolean) | undefined = undefined

  setInlineReader(inline: ((chunk: Uint8Array) => boolean) | undefined): void {
    this.inline = inline
  }

  private readonly onData = (chunk: Uint8Array): void => {
    if (this.state === "closed") return
    if (this.inline !== undefined && this.reader !== undefined && this.chunks.length === 0 && this.state === "open") {
      Metrics.read(this.tags, chunk.length)
      let done: boolean
      try {
        done = this.inline(chunk)
      } catch (defect) {
        const reader = this.reader
        this.reader = undefined
        this.readerFiber = undefined
        return reader(Effect.die(defect))
      }
      if (done) return
      this.chunks.push(emptyChunk)
      this.wakeReader()
      return
    }
    // While closing nobody may read any more: keep what fits, drop the rest, never pause (we wait for the FIN).
    if (this.state === "closing" && this.bytes >= this.highWaterMark) return
    this.chunks.push(chunk)
    this.bytes += chunk.length
    if (this.bytes >= this.highWaterMark && this.state === "open" && !this.paused) {
      this.paused = true
      this.socket.pause()
    }
    this.wakeReader()
  }

  private readonly onEnd = (): void => {
    this.eof = true
    this.wakeReader()
  }

  private readonly onError = (error: Error): void => {
    if (this.failure !== undefined || this.aborted) return
    const code = (error as { readonly code?: unknown }).code
    const reason = code === "EPIPE" ? "Write" : typeof code === "string" && code.startsWith("ERR_SSL") ? "Tls" : "Read"
    this.fail(fromNodeError(reason, error, this.addressText))
  }

  /** Records what ended the connection (the first failure only) and counts it. */
  private fail(error: TransportError): void {
    this.failure = error
    Metrics.failed(this.kind, error)
  }

  private readonly onTimeout = (): void => {
    if (this.state === "closed" || this.failure !== undefined) return
    this.fail(
      new TransportError({
        reason: "IdleTimeout",
        address: this.addressText,
        detail: `no reads or writes for ${Duration.format(this.options.idleTimeout ?? 0)}`
      })
    )
    this.options.onIdle?.()
    this.destroy(false)
  }

  private readonly onDrain = (): void => {
    const waiters = this.drainWaiters
    this.drainWaiters = []
    for (const waiter of waiters) waiter()
  }

  private readonly onClose = (): void => {
    if (this.state === "closed") return
    this.state = "closed"
    this.removeListeners()
    Metrics.closed(this.tags)
    if (!this.eof) {
      // Unread bytes are lost with the connection unless the peer finished cleanly.
      this.chunks = []
      this.bytes = 0
    }
    this.onDrain()
    this.wakeReader()
    Deferred.unsafeDone(this.closedSignal, this.failure === undefined ? Effect.void : Effect.fail(this.failure))
  }

  private removeListeners(): void {
    const socket = this.socket
    socket.off("data", this.onData)
    socket.off("end", this.onEnd)
    socket.off("error", this.onError)
    socket.off("close", this.onClose)
    socket.off("drain", this.onDrain)
    if (this.options.idleTimeout !== undefined) {
      socket.setTimeout(0)
      socket.off("timeout", this.onTimeout)
    }
  }

  private closedError(): TransportError {
    return this.failure ?? new TransportError({ reason: "Closed", address: this.addressText, detail: "transport is closed" })
  }

  private takeNow(): Effect.Effect<Transport.ReadResult, TransportError> | undefined {
    if (this.chunks.length > 0) {
      const chunks = this.chunks as unknown as readonly [Uint8Array, ...Array<Uint8Array>]
      Metrics.read(this.tags, this.bytes)
      this.chunks = []
      this.bytes = 0
      if (this.paused) {
        this.paused = false
        if (this.state === "open") this.socket.resume()
      }
      return Effect.succeed(chunks)
    }
    if (this.eof) return Effect.succeed(Transport.Eof)
    if (this.state !== "open") return Effect.fail(this.closedError())
    return undefined
  }

  /**
   * A read: what is buffered, at once, else park until the socket has news.
   *
   * A parked reader has no canceler (an interruptible `Effect.async` with one costs more than the rest of the
   * read). An interrupted reader leaves a stale resume behind that does nothing when called: nothing is lost,
   * because the resumed fiber takes the bytes itself.
   */
  private readonly take: Effect.Effect<Transport.ReadResult, TransportError> = Effect.suspend(() =>
    this.takeNow() ?? this.park
  )

  private readonly park: Effect.Effect<Transport.ReadResult, TransportError> = Effect.withFiberRuntime((fiber) => {
    const other = this.readerFiber
    // Another fiber parked and still alive is a second reader, unless it is this one after an interruption.
    if (this.reader !== undefined && other !== undefined && other !== fiber && other.unsafePoll() === null) {
      return Effect.dieMessage("Transport: concurrent reads")
    }
    this.readerFiber = fiber
    return this.parked
  })

  private readonly parked = Effect.async<Transport.ReadResult, TransportError>((resume) => {
    this.reader = resume
  })

  private wakeReader(): void {
    const reader = this.reader
    if (reader === undefined) return
    this.reader = undefined
    this.readerFiber = undefined
    reader(this.take)
  }

  private writeAll(chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void, TransportError> {
    return Effect.suspend(() => {
      const blocked = this.writeBlocked()
      if (blocked !== undefined) return Effect.fail(blocked)
      if (!this.socket.writableNeedDrain) return this.writeNow(chunks)
      return this.awaitDrain.pipe(Effect.zipRight(Effect.suspend(() => this.writeAll(chunks))))
    })
  }

  private readonly awaitDrain: Effect.Effect<void> = Effect.async<void>((resume) => {
    const waiter = () => resume(Effect.void)
    this.drainWaiters.push(waiter)
    return Effect.sync(() => {
      const index = this.drainWaiters.indexOf(waiter)
      if (index >= 0) this.drainWaiters.splice(index, 1)
    })
  })

  private writeBlocked(): TransportError | undefined {
    if (this.state === "open" && !this.writeEnded && !this.socket.destroyed) return undefined
    return this.closedError()
  }

  /**
   * Hands the chunks to Node. When the kernel took them all at once (Node's buffer is empty again) the write is
   * complete right away; otherwise it completes on Node's write callback.
   */
  private writeNow(chunks: ReadonlyArray<Uint8Array>): Effect.Effect<void, TransportError> {
    const socket = this.socket
    const last = chunks.length - 1
    if (last < 0) return Effect.void
    const seq = ++this.writesIssued
    if (last === 0) {
      socket.write(chunks[0]!, this.onWritten)
      Metrics.written(this.tags, chunks[0]!.length)
    } else {
      // Corked writes leave as one writev.
      let bytes = chunks[last]!.length
      socket.cork()
      for (let i = 0; i < last; i++) {
        socket.write(chunks[i]!)
        bytes += chunks[i]!.length
      }
      socket.write(chunks[last]!, this.onWritten)
      socket.uncork()
      Metrics.written(this.tags, bytes)
    }
    if (socket.writableLength === 0 && !socket.destroyed) return Effect.void
    return this.awaitWrite(seq)
  }

  /** Whether `tryWrite` would take a chunk now. */
  get canWriteNow(): boolean {
    return this.writeBlocked() === undefined && !this.socket.writableNeedDrain
  }

  /**
   * Hands a chunk to Node now if that needs no wait (open, and Node's buffer below its mark); `false` when the
   * caller must use `write`. Ordered with every other write: Node keeps its buffer in order.
   */
  tryWrite(chunk: Uint8Array): boolean {
    if (!this.canWriteNow) return false
    // Writes made in the same run of microtasks (many fibers publishing at once) leave in one writev.
    if (!this.corked) {
      this.corked = true
      this.socket.cork()
      process.nextTick(this.uncork)
    }
    ++this.writesIssued
    this.socket.write(chunk, this.onWritten)
    Metrics.written(this.tags, chunk.length)
    return true
  }

  private corked = false
  private readonly uncork = (): void => {
    this.corked = false
    this.socket.uncork()
  }

  /** Node calls write callbacks in order: the n-th call completes our n-th write. */
  private readonly onWritten = (error: Error | null | undefined): void => {
    this.writesDone++
    if (error !== null && error !== undefined && this.writeFailure === undefined) {
      const code = (error as { readonly code?: unknown }).code
      this.writeFailure = this.failure ??
        (code === "ERR_STREAM_DESTROYED" ? this.closedError() : fromNodeError("Write", error, this.addressText))
    }
    const waiters = this.writeWaiters
    while (waiters.length > 0 && waiters[0]!.seq <= this.writesDone) {
      waiters.shift()!.resume(this.writeFailure === undefined ? Effect.void : Effect.fail(this.writeFailure))
    }
  }

  /**
   * Waits for write `seq`. No canceler, as for reads: an interrupted writer's waiter stays until its write's
   * callback, which Node always calls (with an error if the socket is destroyed), so there are never more
   * waiters than writes in flight.
   */
  private awaitWrite(seq: number): Effect.Effect<void, TransportError> {
    return Effect.async<void, TransportError>((resume) => {
      if (this.writesDone >= seq) {
        return resume(this.writeFailure === undefined ? Effect.void : Effect.fail(this.writeFailure))
      }
      this.writeWaiters.push({ seq, resume })
    })
  }

  private shutdownWrite(): Effect.Effect<void, TransportError> {
    if (this.state === "closed") return Effect.fail(this.closedError())
    if (!this.writeEnded) {
      this.writeEnded = true
      this.socket.end()
    }
    return Effect.void
  }

  private close(options: Transport.CloseOptions | undefined): Effect.Effect<void> {
    if (this.state === "open") {
      this.state = "closing"
      if (this.paused) {
        this.paused = false
        this.socket.resume()
      }
      this.failReader()
      if (!this.writeEnded) {
        this.writeEnded = true
        this.socket.end()
      }
    }
    // Graceful: Node flushes, sends our FIN and, once the peer's FIN came too, closes the socket.
    // Interruptible even when run as a finalizer, or the deadline could not cut the wait short.
    return Effect.interruptible(this.awaitClosed).pipe(
      Effect.timeoutTo({
        duration: options?.timeout ?? defaultCloseTimeout,
        onSuccess: () => Effect.void,
        onTimeout: () => this.abort()
      }),
      Effect.flatten
    )
  }

  private failReader(): void {
    const reader = this.reader
    if (reader === undefined) return
    this.reader = undefined
    this.readerFiber = undefined
    reader(Effect.fail(this.closedError()))
  }

  private abort(): Effect.Effect<void> {
    if (this.state !== "closed" && !this.socket.destroyed) {
      this.aborted = true
      this.destroy(true)
    }
    return this.awaitClosed
  }

  /** Destroys the socket; with `reset`, a TCP peer sees RST (ECONNRESET) instead of a FIN. */
  private destroy(reset: boolean): void {
    if (this.state === "open") this.state = "closing"
    this.chunks = []
    this.bytes = 0
    this.failReader()
    const raw = this.raw
    if (reset && this.options.resettable === true && !raw.destroyed && !this.finInFlight()) {
      // Under TLS the TLS socket shares the TCP handle: resetting it is enough, and destroying the TLS socket
      // as well would close the handle twice (a crash in Node 20). The TLS socket closes with its stream.
      raw.resetAndDestroy()
    } else {
      this.socket.destroy()
      if (raw !== this.socket) raw.destroy()
    }
  }

  /**
   * Whether our FIN may be on its way: libuv refuses to reset a TCP handle while its shutdown is pending
   * (`EINVAL`), and Node then drops the handle without closing it, so that no 'close' ever comes and the file
   * descriptor leaks. Node starts the shutdown once every write has reached the kernel after `end()`.
   */
  private finInFlight(): boolean {
    const socket = this.socket
    if (!socket.writableEnded) return false
    // Under TLS the TCP shutdown follows the close_notify on a schedule we cannot see.
    if (socket !== this.raw) return true
    return !socket.writableFinished && socket.writableLength === 0
  }

  private info(): Transport.ConnectionInfo {
    return {
      local: this.local,
      remote: this.remote,
      tls: this.socket instanceof Tls.TLSSocket ? tlsInfo(this.socket, undefined) : undefined
    }
  }
}
