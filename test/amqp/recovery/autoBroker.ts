/**
 * A scripted broker that answers every synchronous method on its own, over memory transports, so recovery tests
 * can see the exact methods each connection received, refuse connection attempts, and cut connections.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Scope from "effect/Scope"
import * as Frame from "../../../src/amqp/Frame.js"
import * as Methods from "../../../src/amqp/Methods.js"
import * as Memory from "../../../src/transport/Memory.js"
import * as Transport from "../../../src/transport/Transport.js"
import { TransportError } from "../../../src/transport/TransportError.js"

export interface Received {
  readonly channel: number
  readonly method: Methods.Method
}

export interface BrokerConnection {
  readonly index: number
  /** Every method the client sent after the handshake, in order. */
  readonly received: Array<Received>
  /** Cuts the connection as a network failure would. */
  readonly kill: Effect.Effect<void>
  /** Closes it as an operator would (`connection.close 320`). */
  readonly force: Effect.Effect<void>
  /** `connection.blocked` (with a reason) or `connection.unblocked`. */
  readonly block: (reason: string | undefined) => Effect.Effect<void>
  /** Delivers a message to a consumer. */
  readonly deliver: (channel: number, consumerTag: string, deliveryTag: number, body: string, redelivered?: boolean) => Effect.Effect<void>
}

export interface AutoBroker {
  /** For `Connection.Options.transport`: each evaluation is one connection attempt. */
  readonly transport: Effect.Effect<Transport.Transport, TransportError, Scope.Scope>
  readonly connections: Array<BrokerConnection>
  /** Attempts so far, refused ones included. */
  readonly attempts: () => number
  /** Refuse the next `n` attempts. */
  readonly refuse: (n: number) => void
}

/** A reply with every argument at a zero value. */
const reply = (tag: Methods.Tag): Methods.Method => {
  const args: Record<string, unknown> = {}
  for (const [name, type, fallback] of Methods.definition(tag).args) {
    args[name] = type === "longstr"
      ? new Uint8Array(0)
      : fallback ?? (type === "longlong" ? 0n : type === "shortstr" ? "" : type === "bit" ? false : 0)
  }
  return Methods.make(tag, args as never)
}

const encode = (frame: Frame.Frame) => Either.getOrThrow(Frame.encode(frame, { frameMax: 0 }))

export const make: Effect.Effect<AutoBroker, never, Scope.Scope> = Effect.gen(function*() {
  const outer = yield* Effect.scope
  const connections: Array<BrokerConnection> = []
  let attempts = 0
  let refusals = 0

  const serve = (index: number, server: Memory.MemoryTransport, conn: { received: Array<Received> }) =>
    Effect.gen(function*() {
      const parser = new Frame.Parser({ maxFrameSize: 1 << 20 })
      let header = 8
      let handshake = true
      let generated = 0
      let consumers = 0
      const send = (channel: number, method: Methods.Method) => server.write(encode(Frame.method(channel, method)))
      yield* send(0, Methods.make("ConnectionStart", {
        serverProperties: [],
        mechanisms: new TextEncoder().encode("PLAIN"),
        locales: new TextEncoder().encode("en_US")
      }))
      while (true) {
        const read = yield* server.read
        if (Transport.isEof(read)) return
        const frames: Array<Frame.Frame> = []
        for (let chunk of read) {
          if (header > 0) {
            const n = Math.min(header, chunk.length)
            header -= n
            chunk = chunk.subarray(n)
          }
          if (chunk.length > 0) parser.feed(chunk, (f) => frames.push(f))
        }
        for (const frame of frames) {
          if (frame._tag !== "Method") continue
          const m = frame.method
          if (handshake) {
            if (m._tag === "ConnectionStartOk") {
              yield* send(0, Methods.make("ConnectionTune", { channelMax: 2047, frameMax: 131072, heartbeat: 0 }))
            } else if (m._tag === "ConnectionOpen") {
              handshake = false
              yield* send(0, Methods.make("ConnectionOpenOk", {}))
            }
            continue
          }
          conn.received.push({ channel: frame.channel, method: m })
          switch (m._tag) {
            case "ConnectionClose":
              yield* send(0, Methods.make("ConnectionCloseOk", {}))
              return yield* server.close()
            case "ConnectionCloseOk":
              // After a broker-initiated close, the broker closes the socket.
              return yield* server.close()
            case "QueueDeclare":
              yield* send(frame.channel, Methods.make("QueueDeclareOk", {
                queue: m.queue === "" ? `amq.gen-${index}-${++generated}` : m.queue,
                messageCount: 0,
                consumerCount: 0
              }))
              break
            case "BasicConsume":
              yield* send(frame.channel, Methods.make("BasicConsumeOk", { consumerTag: m.consumerTag || `ctag-${index}-${++consumers}` }))
              break
            default: {
              const replies = Methods.definition(m._tag).replies
              const nowait = "nowait" in m && m.nowait === true
              if (replies.length > 0 && !nowait) yield* send(frame.channel, reply(replies[0] as Methods.Tag))
            }
          }
        }
      }
    }).pipe(Effect.ignore)

  const transport: AutoBroker["transport"] = Effect.gen(function*() {
    attempts++
    if (refusals > 0) {
      refusals--
      return yield* new TransportError({ reason: "Connect", address: "memory:broker", code: "ECONNREFUSED", detail: "refused" })
    }
    const [client, server] = yield* Memory.pair({ highWaterMark: 1 << 20, names: ["client", "broker"] })
    const index = connections.length + 1
    const received: Array<Received> = []
    const writeFrames = (frames: ReadonlyArray<Frame.Frame>) =>
      Effect.orDie(server.write(new Uint8Array(frames.flatMap((f) => [...encode(f)]))))
    connections.push({
      index,
      received,
      kill: server.reset("killed by test"),
      force: writeFrames([
        Frame.method(0, Methods.make("ConnectionClose", { replyCode: 320, replyText: "CONNECTION_FORCED", classId: 0, methodId: 0 }))
      ]),
      block: (reason) =>
        writeFrames([
          Frame.method(0, reason === undefined ? Methods.make("ConnectionUnblocked", {}) : Methods.make("ConnectionBlocked", { reason }))
        ]),
      deliver: (channel, consumerTag, deliveryTag, body, redelivered = false) => {
        const payload = new TextEncoder().encode(body)
        return writeFrames([
          Frame.method(channel, Methods.make("BasicDeliver", { consumerTag, deliveryTag: BigInt(deliveryTag), redelivered, exchange: "", routingKey: "q" })),
          Frame.header(channel, BigInt(payload.length)),
          Frame.body(channel, payload)
        ])
      }
    })
    yield* Effect.forkIn(serve(index, server, { received }), outer)
    return client
  })

  return {
    transport,
    connections,
    attempts: () => attempts,
    refuse: (n) => {
      refusals = n
    }
  }
})

/** The tags of what a connection received, with the queue or exchange they name. */
export const summary = (received: ReadonlyArray<Received>): Array<string> =>
  received.map(({ channel, method: m }) => {
    switch (m._tag) {
      case "ExchangeDeclare":
        return `${channel} ExchangeDeclare ${m.exchange}`
      case "QueueDeclare":
        return `${channel} QueueDeclare ${m.queue}`
      case "QueueBind":
        return `${channel} QueueBind ${m.queue} ${m.exchange} ${m.routingKey}`
      case "BasicConsume":
        return `${channel} BasicConsume ${m.queue}`
      case "BasicQos":
        return `${channel} BasicQos ${m.prefetchCount}`
      default:
        return `${channel} ${m._tag}`
    }
  })
