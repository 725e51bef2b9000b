import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Ref from "effect/Ref"
import * as Transport from "../../transport/Transport.js"
import * as Command from "../Command.js"
import * as Frame from "../Frame.js"
import * as Greeting from "../Greeting.js"
import type { Cipher, Mechanism } from "../Mechanism.js"
import * as Metadata from "../Metadata.js"
import { ZmtpError } from "../ZmtpError.js"
import type { Counters } from "./counters.js"
import { loop } from "../../internal/loop.js"
import { plainBytes } from "../../internal/plainBytes.js"
import type { ControlFrame, Pipe } from "./pipe.js"

export interface HeartbeatConfig {
  readonly interval: Duration.Duration
  readonly timeout: Duration.Duration
  readonly ttl: Duration.Duration
}

export interface ConnectionConfig {
  readonly socketType: string
  readonly identity: Uint8Array | undefined
  readonly mechanism: Mechanism
  readonly maxMessageSize: number
  readonly handshakeTimeout: Duration.Duration
  readonly heartbeat: HeartbeatConfig | undefined
  /** Peer socket types this socket may talk to. */
  readonly compatible: ReadonlyArray<string>
  readonly endpoint: string
}

/** A connection whose greeting and handshake are done. */
export interface Connection {
  readonly transport: Transport.Transport
  readonly endpoint: string
  readonly peerAddress: string
  readonly minor: number
  readonly metadata: Metadata.Metadata
  readonly peerSocketType: string
  /** The peer's non-empty `Identity`, if it sent one. */
  readonly peerIdentity: Uint8Array | undefined
  readonly userId: string | undefined
  readonly cipher: Cipher | undefined
  readonly decoder: Frame.Decoder
  /** Frames that arrived with the end of the handshake. */
  readonly pending: Array<Frame.Frame>
  /** A decode error in the bytes that came after those frames. */
  readonly pendingError: ZmtpError | undefined
}

const sendsIdentity = (socketType: string) =>
  socketType === "REQ" || socketType === "DEALER" || socketType === "ROUTER"

const transportError = (endpoint: string) => (cause: unknown) =>
  new ZmtpError({ reason: "Transport", endpoint, detail: String((cause as { message?: unknown }).message ?? cause), cause })

const metadataOf = (config: ConnectionConfig): Metadata.Metadata => {
  const properties: Array<Metadata.Property> = [Metadata.property(Metadata.SocketType, config.socketType)]
  if (sendsIdentity(config.socketType)) {
    properties.push([Metadata.Identity, config.identity ?? new Uint8Array(0)])
  }
  return properties
}

/**
 * Frames one control item, through the cipher when there is one. Encrypted, every frame travels as a MESSAGE box
 * in a data frame, as libzmq 4.3 sends and expects it; the MORE and COMMAND flags inside the box are authoritative.
 */
const encodeControl = (cipher: Cipher | undefined, item: ControlFrame): Uint8Array =>
  cipher !== undefined
    ? Frame.encode({ more: false, command: false, body: cipher.encrypt(false, item.command, item.body) })
    : Frame.encode({ more: false, command: item.command, body: item.body })

/** A peer's address as events and authenticators show it: `host:port`, a path or `memory:name`. */
export const addressOf = (address: Transport.ConnectionInfo["remote"]): string =>
  address._tag === "TcpAddress"
    ? `${address.host}:${address.port}`
    : address._tag === "UnixAddress" ? address.path : `memory:${address.name}`

/**
 * Greeting and mechanism handshake, within the handshake deadline. The whole greeting goes out first, so a peer
 * that withholds its version until it has our signature (libzmq) never waits on us.
 */
export const handshake = (
  transport: Transport.Transport,
  config: ConnectionConfig
): Effect.Effect<Connection, ZmtpError> =>
  Effect.gen(function*() {
    const endpoint = config.endpoint
    const write = (bytes: Uint8Array) => Effect.mapError(transport.write(bytes), transportError(endpoint))
    const peerAddress = addressOf((yield* transport.info).remote)
    const mechanism = config.mechanism
    yield* write(Greeting.encode(Greeting.make(mechanism.name, mechanism.asServer)))

    const read = Effect.flatMap(
      Effect.mapError(transport.read, transportError(endpoint)),
      (result) =>
        Transport.isEof(result)
          ? Effect.fail(new ZmtpError({ reason: "HandshakeFailed", endpoint, detail: "peer closed during the handshake" }))
          : Effect.succeed(result)
    )

    // Greeting: check the signature as soon as 10 bytes are in, decode at 64.
    let buffered: Uint8Array = new Uint8Array(0)
    while (buffered.length < Greeting.size) {
      const chunks = yield* read
      buffered = Transport.concat([buffered, ...chunks])
      if (buffered.length >= Greeting.signatureSize) {
        const signature = Greeting.checkSignature(buffered)
        if (Either.isLeft(signature)) return yield* new ZmtpError({ ...signature.left, endpoint })
      }
    }
    const greeting = Greeting.decode(buffered.subarray(0, Greeting.size))
    if (Either.isLeft(greeting)) return yield* new ZmtpError({ ...greeting.left, endpoint })
    if (greeting.right.mechanism !== mechanism.name) {
      return yield* new ZmtpError({
        reason: "MechanismMismatch",
        endpoint,
        detail: `peer uses ${greeting.right.mechanism}, we use ${mechanism.name}`
      })
    }

    const decoder = new Frame.Decoder(config.maxMessageSize, Math.max(config.maxMessageSize + 64, 65536))
    const pending: Array<Frame.Frame> = []
    // A decode error is raised only when its frame is needed: bytes past the handshake belong to the connection.
    let pendingError: ZmtpError | undefined
    const feed = (chunk: Uint8Array) => {
      if (pendingError === undefined) {
        const error = decoder.decode(plainBytes(chunk), pending)
        if (error !== undefined) pendingError = new ZmtpError({ ...error, endpoint })
      }
      return Effect.void
    }
    if (buffered.length > Greeting.size) yield* feed(buffered.subarray(Greeting.size))

    const receive: Effect.Effect<Uint8Array, ZmtpError> = Effect.suspend(() => {
      const frame = pending.shift()
      if (frame === undefined && pendingError !== undefined) return Effect.fail(pendingError)
      if (frame !== undefined) {
        return frame.command
          ? Effect.succeed(frame.body)
          : Effect.fail(new ZmtpError({ reason: "HandshakeFailed", endpoint, detail: "message frame during the handshake" }))
      }
      return Effect.flatMap(
        Effect.flatMap(read, (chunks) => Effect.forEach(chunks, feed, { discard: true })),
        () => receive
      )
    })

    const result = yield* mechanism.handshake(
      { send: (body) => write(Frame.encodeCommand(body)), receive },
      { metadata: metadataOf(config), peerAddress }
    ).pipe(Effect.mapError((error) => error.endpoint === undefined ? new ZmtpError({ ...error, endpoint }) : error))

    const peerSocketType = Metadata.getString(result.metadata, Metadata.SocketType) ?? ""
    if (!config.compatible.includes(peerSocketType.toUpperCase())) {
      // RFC 37 asks for ERROR then close; libzmq closes silently. ERROR tells the peer why.
      yield* write(encodeControl(result.cipher, { command: true, body: Command.encode(Command.error("Invalid socket type")) }))
        .pipe(Effect.ignore)
      return yield* new ZmtpError({
        reason: "IncompatibleSocketType",
        endpoint,
        detail: `${config.socketType} cannot talk to ${peerSocketType || "a peer without Socket-Type"}`
      })
    }
    const identity = Metadata.get(result.metadata, Metadata.Identity)
    return {
      transport,
      endpoint,
      peerAddress,
      minor: greeting.right.minor,
      metadata: result.metadata,
      peerSocketType: peerSocketType.toUpperCase(),
      peerIdentity: identity !== undefined && identity.length > 0 ? identity : undefined,
      userId: result.userId,
      cipher: result.cipher,
      decoder,
      pending,
      pendingError
    }
  }).pipe(
    Effect.timeoutFail({
      duration: config.handshakeTimeout,
      onTimeout: () => new ZmtpError({ reason: "HandshakeTimeout", endpoint: config.endpoint })
    })
  )

/** What a running connection hands to its socket and takes from it. */
export interface Handlers {
  /** The outbound queue this connection drains. */
  readonly pipe: Pipe
  /** Offers a complete inbound message; `false` when the peer's inbound lane is full (the reader then waits). */
  readonly deliver: (message: Frame.Message) => boolean
  /** Waits until the peer's inbound lane has room. */
  readonly awaitRoom: Effect.Effect<void>
  /** SUBSCRIBE and CANCEL from the peer; `false` when it cannot be taken yet (the reader waits for room). */
  readonly onSubscription: (subscribe: boolean, topic: Uint8Array) => boolean
  readonly counters: Counters
}

/** Messages taken from the pipe per write (at most, and about `batchBytes` of them); coalesced into one buffer. */
const batchMessages = 1024
const batchBytes = 256 * 1024
/** Above this many bytes a batch is written as one buffer per message instead of one for the whole batch. */
const coalesceLimit = 1 << 20

const encodeBatch = (
  cipher: Cipher | undefined,
  control: ReadonlyArray<ControlFrame>,
  messages: ReadonlyArray<Frame.Message>
): Array<Uint8Array> => {
  if (cipher !== undefined) {
    const out: Array<Uint8Array> = []
    for (const item of control) out.push(encodeControl(cipher, item))
    for (const message of messages) {
      const last = message.length - 1
      for (let i = 0; i <= last; i++) {
        const more = i < last
        out.push(Frame.encode({ more, command: false, body: cipher.encrypt(more, false, message[i]!) }))
      }
    }
    return out
  }
  let size = 0
  for (const item of control) size += Frame.headerSize(item.body.length) + item.body.length
  for (const message of messages) size += Frame.messageSize(message)
  if (size > coalesceLimit) {
    const out = control.map((item) => encodeControl(undefined, item))
    for (const message of messages) out.push(Frame.encodeMessage(message))
    return out
  }
  const buffer = new Uint8Array(size)
  let offset = 0
  for (const item of control) {
    offset = Frame.writeHeader(buffer, offset, item.command ? Frame.COMMAND : 0, item.body.length)
    buffer.set(item.body, offset)
    offset += item.body.length
  }
  for (const message of messages) offset = Frame.encodeMessageInto(message, buffer, offset)
  return [buffer]
}

/**
 * Runs an established connection until it ends: one reader (decode, answer PINGs, deliver whole messages), one
 * writer (drain the pipe in coalesced batches) and, when configured, one heartbeat fiber. Fails with the reason
 * the connection ended; the caller closes the transport.
 */
export const run = (connection: Connection, config: ConnectionConfig, handlers: Handlers): Effect.Effect<never, ZmtpError> =>
  Effect.scoped(Effect.gen(function*() {
    const { cipher, decoder, endpoint, transport } = connection
    const pipe = handlers.pipe
    const fail = (reason: ZmtpError["reason"], detail?: string) => new ZmtpError({ reason, endpoint, detail })
    // Counts reads; heartbeat fibers watch it for silence.
    let received = 0
    const peerTtl = yield* Ref.make(0)

    const counters = handlers.counters
    const writer = loop(
      Effect.flatMap(pipe.take(batchMessages, batchBytes), (batch) => {
        const chunks = encodeBatch(cipher, batch.control, batch.messages)
        let bytes = 0
        for (const chunk of chunks) bytes += chunk.length
        counters.messagesOut += batch.messages.length
        counters.bytesOut += bytes
        counters.flush()
        return Effect.mapError(
          chunks.length === 1 ? transport.write(chunks[0]!) : transport.writeAll(chunks),
          transportError(endpoint)
        )
      })
    )

    let parts: Array<Uint8Array> = []
    const frames: Array<Frame.Frame> = connection.pending.splice(0)
    let ttlRequested = 0

    /** Handles decoded frames; returns an Effect only when the inbox is full and the reader must wait. */
    // Whether frames[0] is already decrypted: a frame kept while waiting for room must not be opened twice (its
    // nonce would then look replayed).
    let headOpened = false
    const waitForRoom = (): Effect.Effect<void, ZmtpError> => Effect.flatMap(handlers.awaitRoom, () => process() ?? Effect.void)
    const process = (): Effect.Effect<void, ZmtpError> | undefined => {
      while (frames.length > 0) {
        let frame = frames[0]!
        if (cipher !== undefined && !headOpened) {
          // libzmq 4.3 carries MESSAGE boxes in data frames (the flags inside the box are what count).
          const opened = cipher.decrypt(frame.body)
          if (Either.isLeft(opened)) return Effect.fail(new ZmtpError({ ...opened.left, endpoint }))
          frame = opened.right
          frames[0] = frame
          headOpened = true
        }
        if (frame.command) {
          const command = Command.decode(frame.body)
          if (Either.isLeft(command)) return Effect.fail(new ZmtpError({ ...command.left, endpoint }))
          const c = command.right
          if ((c._tag === "Subscribe" || c._tag === "Cancel") && !handlers.onSubscription(c._tag === "Subscribe", c.topic)) {
            return waitForRoom()
          }
          frames.shift()
          headOpened = false
          switch (c._tag) {
            case "Ping":
              pipe.offerControl({ command: true, body: Command.encode(Command.pong(c.context)) })
              if (c.ttl > 0) ttlRequested = c.ttl * 100
              break
            case "Error":
              return Effect.fail(new ZmtpError({ reason: "PeerError", endpoint, code: c.reason }))
            default:
              // PONG counts as traffic; anything else is ignored, as libzmq does.
              break
          }
          continue
        }
        if (frame.more) {
          frames.shift()
          headOpened = false
          parts.push(frame.body)
          continue
        }
        const message = parts.length === 0 ? [frame.body] : [...parts, frame.body]
        // Keep the frame; wait for room, then resume where we stopped.
        if (!handlers.deliver(message)) return waitForRoom()
        frames.shift()
        headOpened = false
        parts = []
        counters.messagesIn++
      }
      return undefined
    }

    const initial = process()
    const start: Effect.Effect<void, ZmtpError> = connection.pendingError !== undefined
      ? Effect.zipRight(initial ?? Effect.void, Effect.fail(connection.pendingError))
      : initial ?? Effect.void

    const reader = Effect.zipRight(start, loop(
      Effect.flatMap(Effect.mapError(transport.read, transportError(endpoint)), (result) => {
        if (Transport.isEof(result)) return Effect.fail(fail("Closed", "peer closed the connection"))
        received++
        for (const chunk of result) {
          counters.bytesIn += chunk.length
          const error = decoder.decode(plainBytes(chunk), frames)
          if (error !== undefined) return Effect.fail(new ZmtpError({ ...error, endpoint }))
        }
        const waiting = process()
        counters.flush()
        if (ttlRequested > 0) {
          const ttl = ttlRequested
          ttlRequested = 0
          return Effect.zipRight(Ref.set(peerTtl, ttl), waiting ?? Effect.void)
        }
        return waiting ?? Effect.void
      })
    ))

    const fibers: Array<Effect.Effect<never, ZmtpError>> = [reader, writer]
    const heartbeat = config.heartbeat
    if (heartbeat !== undefined && Duration.toMillis(heartbeat.interval) > 0) {
      // PING every interval; silence (no read at all) for the timeout ends the connection.
      const interval = Duration.toMillis(heartbeat.interval)
      const timeout = Math.max(interval, Duration.toMillis(heartbeat.timeout))
      const ttl = Math.min(0xffff, Math.round(Duration.toMillis(heartbeat.ttl) / 100))
      const ping: ControlFrame = { command: true, body: Command.encode(Command.ping(ttl)) }
      fibers.push(Effect.gen(function*() {
        let seen = received
        let silent = 0
        while (true) {
          yield* Effect.sleep(Duration.millis(interval))
          if (received !== seen) {
            seen = received
            silent = 0
          } else {
            silent += interval
          }
          if (silent >= timeout) return yield* fail("HeartbeatTimeout", "no traffic within the heartbeat timeout")
          pipe.offerControl(ping)
        }
      }))
    }
    // The peer's TTL: a PING with TTL > 0 asks us to drop the connection after that long without traffic.
    fibers.push(
      Effect.gen(function*() {
        let seen = received
        while (true) {
          const ttl = yield* Ref.get(peerTtl)
          if (ttl <= 0) {
            yield* Effect.sleep(Duration.seconds(1))
            seen = received
            continue
          }
          yield* Effect.sleep(Duration.millis(ttl))
          if (received === seen) return yield* fail("HeartbeatTimeout", "no traffic within the TTL the peer asked for")
          seen = received
        }
      })
    )
    // The first fiber to end ends the connection; closing the scope interrupts the others.
    const ended = yield* Deferred.make<never, ZmtpError>()
    yield* Effect.forEach(fibers, (fiber) => Effect.forkScoped(Effect.intoDeferred(fiber, ended)), { discard: true })
    return yield* Deferred.await(ended)
  }))
