/**
 * A scripted broker on the other end of a memory transport or of a loopback TCP connection, for behaviour a real
 * broker cannot show on demand: exact frame orders, protocol violations, heartbeat timing under `TestClock`. Over
 * TCP the client takes its socket paths (synchronous writes, inline reads), which a memory transport does not have.
 */
import * as assert from "node:assert"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Connection from "../../../src/amqp/Connection.js"
import * as Frame from "../../../src/amqp/Frame.js"
import * as Methods from "../../../src/amqp/Methods.js"
import * as Table from "../../../src/amqp/Table.js"
import * as Memory from "../../../src/transport/Memory.js"
import * as Server from "../../../src/transport/Server.js"
import * as Tcp from "../../../src/transport/Tcp.js"
import * as Transport from "../../../src/transport/Transport.js"

export interface FakeBroker {
  readonly client: Transport.Transport
  /** The next frame the client sent. */
  readonly recv: Effect.Effect<Frame.Frame, string>
  /** The next frame, which must be a method with this tag. */
  readonly expect: <T extends Methods.Tag>(tag: T, channel?: number) => Effect.Effect<Methods.ByTag<T>, string>
  /** A frame within the (test) time, or none. */
  readonly poll: Effect.Effect<Option.Option<Frame.Frame>, string>
  readonly send: (channel: number, method: Methods.Method) => Effect.Effect<void>
  readonly sendRaw: (bytes: Uint8Array) => Effect.Effect<void>
  readonly sendFrame: (frame: Frame.Frame) => Effect.Effect<void>
  /** Answers the client's handshake with these tune values. */
  readonly accept: (tune?: { readonly channelMax?: number; readonly frameMax?: number; readonly heartbeat?: number }) => Effect.Effect<void, string>
  /** Opens the next channel the client opens, returning its id. */
  readonly acceptChannel: Effect.Effect<number, string>
}

/** What the client and the fake broker talk over. */
export type Over = "memory" | "tcp"

/** Two ends of a loopback TCP connection, both ours, open for the scope. */
const tcpPair = Effect.gen(function*() {
  const accepted = yield* Deferred.make<Transport.Transport>()
  const server = yield* Server.make({
    listen: Server.tcp({ host: "127.0.0.1", port: 0 }),
    handler: (transport) => Effect.zipRight(Deferred.succeed(accepted, transport), Effect.never)
  })
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  const client = yield* Effect.orDie(Tcp.connect({ host: "127.0.0.1", port }))
  return [client, yield* Deferred.await(accepted)] as const
})

export const makeOver = (over: Over) => Effect.gen(function*() {
  const [client, server] = over === "tcp"
    ? yield* tcpPair
    : yield* Memory.pair({ highWaterMark: 1 << 20, names: ["client", "broker"] })
  const parser = new Frame.Parser({ maxFrameSize: 1 << 20 })
  const inbox: Array<Frame.Frame> = []
  let header = 8

  const fill: Effect.Effect<void, string> = Effect.gen(function*() {
    const read = yield* Effect.mapError(server.read, (e) => e.message)
    if (Transport.isEof(read)) return yield* Effect.fail("client closed")
    for (let chunk of read) {
      if (header > 0) {
        // The protocol header is not a frame.
        const n = Math.min(header, chunk.length)
        header -= n
        chunk = chunk.subarray(n)
      }
      if (chunk.length > 0) {
        const error = parser.feed(chunk, (f) => inbox.push(f))
        if (error !== undefined) return yield* Effect.fail(error.message)
      }
    }
  })

  let head = 0
  const next = (): Frame.Frame => {
    const frame = inbox[head++]!
    if (head === inbox.length) {
      inbox.length = 0
      head = 0
    }
    return frame
  }
  const recv: Effect.Effect<Frame.Frame, string> = Effect.suspend(() =>
    head < inbox.length ? Effect.succeed(next()) : Effect.zipRight(fill, recv)
  )

  const sendRaw = (bytes: Uint8Array) => Effect.orDie(server.write(bytes))
  const sendFrame = (frame: Frame.Frame) => sendRaw(Either.getOrThrow(Frame.encode(frame, { frameMax: 0 })))
  const send = (channel: number, method: Methods.Method) => sendFrame(Frame.method(channel, method))

  const expect = <T extends Methods.Tag>(tag: T, channel?: number) =>
    Effect.flatMap(recv, (frame): Effect.Effect<Methods.ByTag<T>, string> => {
      if (frame._tag !== "Method" || frame.method._tag !== tag || (channel !== undefined && frame.channel !== channel)) {
        return Effect.fail(`expected ${tag}${channel === undefined ? "" : ` on ${channel}`}, got ${frame._tag === "Method" ? frame.method._tag : frame._tag} on ${frame.channel}`)
      }
      return Effect.succeed(frame.method as Methods.ByTag<T>)
    })

  const poll = Effect.suspend(() =>
    head < inbox.length ? Effect.succeed(Option.some(next())) : Effect.gen(function*() {
      const got = yield* Effect.timeoutOption(fill, "10 millis")
      return Option.isSome(got) && head < inbox.length ? Option.some(next()) : Option.none()
    })
  )

  const accept = (tune?: { readonly channelMax?: number; readonly frameMax?: number; readonly heartbeat?: number }) =>
    Effect.gen(function*() {
      yield* send(0, Methods.make("ConnectionStart", {
        serverProperties: [["product", Table.string("FakeMQ")]],
        mechanisms: new TextEncoder().encode("PLAIN AMQPLAIN"),
        locales: new TextEncoder().encode("en_US")
      }))
      const startOk = yield* expect("ConnectionStartOk", 0)
      assert.strictEqual(startOk.mechanism, "PLAIN")
      yield* send(0, Methods.make("ConnectionTune", {
        channelMax: tune?.channelMax ?? 2047,
        frameMax: tune?.frameMax ?? 131072,
        heartbeat: tune?.heartbeat ?? 0
      }))
      yield* expect("ConnectionTuneOk", 0)
      yield* expect("ConnectionOpen", 0)
      yield* send(0, Methods.make("ConnectionOpenOk", {}))
    })

  const acceptChannel = Effect.gen(function*() {
    const frame = yield* recv
    if (frame._tag !== "Method" || frame.method._tag !== "ChannelOpen") return yield* Effect.fail(`expected ChannelOpen, got ${frame._tag}`)
    yield* send(frame.channel, Methods.make("ChannelOpenOk", {}))
    return frame.channel
  })

  return { client, recv, expect, poll, send, sendRaw, sendFrame, accept, acceptChannel } satisfies FakeBroker
})

export const make = makeOver("memory")

/** A connection to a fresh fake broker that has accepted the handshake. */
export const connected = (tune?: Parameters<FakeBroker["accept"]>[0], options?: Connection.Options, over: Over = "memory") =>
  Effect.gen(function*() {
    const broker = yield* makeOver(over)
    const connecting = yield* Effect.fork(
      Connection.make({ transport: Effect.succeed(broker.client), connectionName: "fake", closeTimeout: "100 millis", ...options })
    )
    yield* broker.accept(tune)
    const connection = yield* Fiber.join(connecting)
    return { broker, connection }
  })

/** Opens a channel from the client and accepts it on the broker: the channel and its id. */
export const openChannel = (broker: FakeBroker, connection: Connection.AmqpConnection) =>
  Effect.gen(function*() {
    const opening = yield* Effect.fork(connection.channel())
    const id = yield* broker.acceptChannel
    return { channel: yield* Fiber.join(opening), id }
  })
