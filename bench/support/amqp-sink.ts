/**
 * A small AMQP 0-9-1 server for benchmarks, built on effect-wire's codec: it does the connection handshake,
 * opens channels, answers the synchronous methods clients send, counts publishes (acking each one on a channel in
 * confirm mode), and on `basic.consume` pushes a
 * configured number of deliveries as fast as the socket takes them.
 *
 * It runs in a child process (`startSink`) so that its work does not share an event loop with the client under
 * measurement.
 */
import { fork, type ChildProcess } from "node:child_process"
import * as Net from "node:net"
import { fileURLToPath } from "node:url"
import * as Either from "effect/Either"
import * as Frame from "../../src/amqp/Frame.js"
import * as Methods from "../../src/amqp/Methods.js"
import type * as Properties from "../../src/amqp/Properties.js"
import * as Table from "../../src/amqp/Table.js"

export interface DeliveryConfig {
  /** Deliveries pushed after each `basic.consume`. */
  readonly count: number
  readonly bodySize: number
  readonly properties: Properties.BasicProperties
}

type ToSink =
  | { readonly type: "deliveries"; readonly config: Omit<DeliveryConfig, "properties"> & { readonly allProperties: boolean } }
  | { readonly type: "expect"; readonly publishes: number }
type FromSink = { readonly type: "listening"; readonly port: number } | { readonly type: "reached" }

const FRAME_MAX = 131072
const BATCH = 512

/** The properties of the "all properties and headers" rows. */
export const allProperties: Properties.BasicProperties = {
  contentType: "application/json",
  contentEncoding: "identity",
  headers: [
    ["x-trace", Table.string("0af7651916cd43dd8448eb211c80319c")],
    ["x-attempt", Table.int32(1)],
    ["x-origin", Table.string("bench")]
  ],
  deliveryMode: 2,
  priority: 5,
  correlationId: "c-00000000",
  replyTo: "amq.rabbitmq.reply-to",
  expiration: "60000",
  messageId: "m-00000000",
  timestamp: new Date(1704067200000),
  type: "bench.event",
  userId: "guest",
  appId: "bench"
}

const serverProperties: Table.FieldTable = [
  ["product", Table.string("effect-wire bench sink")],
  ["capabilities", Table.table([
    ["publisher_confirms", Table.bool(true)],
    ["basic.nack", Table.bool(true)],
    ["consumer_cancel_notify", Table.bool(true)],
    ["connection.blocked", Table.bool(true)],
    ["per_consumer_qos", Table.bool(true)]
  ])]
]

const serve = (onPublish: () => void, deliveries: () => DeliveryConfig) => (socket: Net.Socket) => {
  socket.setNoDelay(true)
  const encoder = new Frame.Encoder({ frameMax: FRAME_MAX })
  let header: Buffer | undefined = Buffer.alloc(0)
  let consumers = 0
  // Confirm channels: the next delivery tag, and the body bytes still due of the message being received.
  const confirmTags = new Map<number, number>()
  const bodyDue = new Map<number, number>()

  const send = (channel: number, method: Methods.Method) => {
    encoder.frame(Frame.method(channel, method))
    socket.write(encoder.take())
  }

  // Deliveries are encoded once per batch shape, then copied and stamped with fresh delivery tags (and, with
  // properties, a fresh message id and correlation id each, as real traffic has), so the sink pushes far faster
  // than any client can take them.
  const deliver = async (channel: number, consumerTag: string) => {
    const config = deliveries()
    const body = new Uint8Array(config.bodySize).fill(0x61)
    const tagOffsets: Array<number> = []
    const ends: Array<number> = []
    for (let i = 0; i < BATCH; i++) {
      tagOffsets.push(encoder.pending + 7 + 4 + 1 + consumerTag.length)
      encoder.frame(Frame.method(channel, {
        _tag: "BasicDeliver", consumerTag, deliveryTag: 0n, redelivered: false, exchange: "", routingKey: "bench"
      }))
      encoder.frame(Frame.header(channel, BigInt(body.length), config.properties))
      encoder.frame(Frame.body(channel, body))
      ends.push(encoder.pending)
    }
    const template = Buffer.from(encoder.take())
    const idOffsets: Array<number> = []
    if (config.properties.messageId !== undefined) {
      for (let i = 0, from = 0; i < BATCH; i++) {
        const m = template.indexOf(config.properties.messageId, from)
        const c = template.indexOf(config.properties.correlationId!, from)
        idOffsets.push(m + 2, c + 2)
        from = ends[i]!
      }
    }
    let sent = 0
    while (sent < config.count && !socket.destroyed) {
      const n = Math.min(BATCH, config.count - sent)
      const batch = Buffer.from(template.subarray(0, ends[n - 1]))
      for (let i = 0; i < n; i++) {
        const tag = sent + i + 1
        batch.writeUInt32BE(Math.floor(tag / 0x100000000), tagOffsets[i]!)
        batch.writeUInt32BE(tag >>> 0, tagOffsets[i]! + 4)
        if (idOffsets.length > 0) {
          const id = String(tag % 100_000_000).padStart(8, "0")
          batch.write(id, idOffsets[2 * i]!, "latin1")
          batch.write(id, idOffsets[2 * i + 1]!, "latin1")
        }
      }
      sent += n
      if (!socket.write(batch)) await new Promise((resolve) => socket.once("drain", resolve))
    }
  }

  const onFrame = (frame: Frame.Frame) => {
    if (frame._tag !== "Method") return
    const m = frame.method
    switch (m._tag) {
      case "ConnectionStartOk":
        return send(0, Methods.make("ConnectionTune", { channelMax: 2047, frameMax: FRAME_MAX, heartbeat: 0 }))
      case "ConnectionOpen":
        return send(0, Methods.make("ConnectionOpenOk", {}))
      case "ConnectionClose":
        send(0, Methods.make("ConnectionCloseOk", {}))
        socket.end()
        return
      case "ChannelOpen":
        return send(frame.channel, Methods.make("ChannelOpenOk", {}))
      case "ChannelClose":
        return send(frame.channel, Methods.make("ChannelCloseOk", {}))
      case "BasicQos":
        return send(frame.channel, Methods.make("BasicQosOk", {}))
      case "ConfirmSelect":
        confirmTags.set(frame.channel, 1)
        return m.nowait ? undefined : send(frame.channel, Methods.make("ConfirmSelectOk", {}))
      case "QueueDeclare":
        return send(frame.channel, Methods.make("QueueDeclareOk", { queue: m.queue || "bench", messageCount: 0, consumerCount: 0 }))
      case "BasicConsume": {
        const consumerTag = m.consumerTag || `ctag-${++consumers}`
        if (!m.nowait) send(frame.channel, Methods.make("BasicConsumeOk", { consumerTag }))
        void deliver(frame.channel, consumerTag)
        return
      }
      case "BasicCancel":
        return m.nowait ? undefined : send(frame.channel, Methods.make("BasicCancelOk", { consumerTag: m.consumerTag }))
    }
  }

  /** A message on a confirm channel is complete: ack it. */
  const confirm = (channel: number) => {
    const tag = confirmTags.get(channel)!
    confirmTags.set(channel, tag + 1)
    send(channel, Methods.make("BasicAck", { deliveryTag: BigInt(tag), multiple: false }))
  }

  /** Content frames matter only on confirm channels, where the ack follows the message's last body byte. */
  const onContent = (buf: Buffer, pos: number, total: number) => {
    const channel = buf.readUInt16BE(pos + 1)
    if (!confirmTags.has(channel)) return
    if (buf[pos] === 2) {
      const size = Number(buf.readBigUInt64BE(pos + 11))
      if (size === 0) confirm(channel)
      else bodyDue.set(channel, size)
    } else if (buf[pos] === 3) {
      const due = (bodyDue.get(channel) ?? 0) - (total - 8)
      if (due > 0) bodyDue.set(channel, due)
      else {
        bodyDue.delete(channel)
        confirm(channel)
      }
    }
  }

  // Publishes are counted from the frame header and method ids alone (content frames are skipped unparsed unless
  // the channel confirms); every other method frame is decoded and answered.
  let pending: Buffer | undefined
  const onData = (data: Buffer) => {
    const buf = pending === undefined ? data : Buffer.concat([pending, data])
    let pos = 0
    while (buf.length - pos >= 7) {
      const total = buf.readUInt32BE(pos + 3) + 8
      if (buf.length - pos < total) break
      if (buf[pos] === 1) {
        if (buf.readUInt32BE(pos + 7) === 0x003c0028) onPublish()
        else {
          const frame = Frame.decode(buf.subarray(pos, pos + total), { maxFrameSize: FRAME_MAX })
          if (Either.isLeft(frame)) return socket.destroy(frame.left)
          onFrame(frame.right)
        }
      } else onContent(buf, pos, total)
      pos += total
    }
    pending = pos < buf.length ? buf.subarray(pos) : undefined
  }

  socket.on("data", (chunk: Buffer) => {
    if (header === undefined) return onData(chunk)
    header = Buffer.concat([header, chunk])
    if (header.length < 8) return
    const version = Frame.decodeProtocolHeader(header.subarray(0, 8))
    if (Either.isLeft(version) || !Frame.isAmqp091(version.right)) {
      socket.end(Uint8Array.of(0x41, 0x4d, 0x51, 0x50, 0, 0, 9, 1))
      return
    }
    const rest = header.subarray(8)
    header = undefined
    send(0, Methods.make("ConnectionStart", {
      serverProperties,
      mechanisms: new TextEncoder().encode("PLAIN AMQPLAIN"),
      locales: new TextEncoder().encode("en_US")
    }))
    if (rest.length > 0) onData(rest)
  })
  socket.on("error", () => socket.destroy())
}

/** The child process: listens on 127.0.0.1, reports its port, and answers the parent's requests. */
const child = () => {
  let publishes = 0
  let waitingFor = Infinity
  let config: DeliveryConfig = { count: 0, bodySize: 1, properties: {} }
  const reply = (message: FromSink) => process.send!(message)
  const server = Net.createServer(serve(() => {
    if (++publishes >= waitingFor) {
      waitingFor = Infinity
      reply({ type: "reached" })
    }
  }, () => config))
  process.on("message", (message: ToSink) => {
    if (message.type === "deliveries") {
      config = {
        count: message.config.count,
        bodySize: message.config.bodySize,
        properties: message.config.allProperties ? allProperties : {}
      }
    } else {
      publishes = 0
      waitingFor = message.publishes
    }
  })
  process.on("disconnect", () => process.exit(0))
  server.listen(0, "127.0.0.1", () => reply({ type: "listening", port: (server.address() as Net.AddressInfo).port }))
}

export interface Sink {
  readonly port: number
  readonly url: string
  /** Resolves once the sink has counted `n` publishes (counting starts now). */
  readonly expectPublishes: (n: number) => Promise<void>
  /** What the next `basic.consume` gets. */
  readonly configureDeliveries: (config: { readonly count: number; readonly bodySize: number; readonly allProperties: boolean }) => void
  readonly stop: () => void
}

/** Forks the sink and waits until it listens. */
export const startSink = (): Promise<Sink> =>
  new Promise((resolve, reject) => {
    const process_: ChildProcess = fork(fileURLToPath(import.meta.url), ["--child"], { stdio: "inherit" })
    process_.once("error", reject)
    const waiters: Array<() => void> = []
    process_.on("message", (message: FromSink) => {
      if (message.type === "reached") waiters.shift()?.()
      else {
        const port = message.port
        resolve({
          port,
          url: `amqp://guest:guest@127.0.0.1:${port}/`,
          expectPublishes: (n) =>
            new Promise<void>((done) => {
              waiters.push(done)
              process_.send({ type: "expect", publishes: n } satisfies ToSink)
            }),
          configureDeliveries: (config) =>
            process_.send({ type: "deliveries", config: { ...config } } satisfies ToSink),
          stop: () => process_.kill()
        })
      }
    })
  })

if (process.argv.includes("--child") && process.send !== undefined) child()
