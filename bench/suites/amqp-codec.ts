/**
 * AMQP codec throughput against the Node clients' own paths, in the same run.
 *
 * Every participant talks to the same local sink server (bench/support/amqp-sink.ts, a child process built on
 * our codec) over TCP on 127.0.0.1:
 *
 * - publish rows: the client publishes N messages (1-byte body) to the default exchange; the time runs until
 *   the sink has parsed all N `basic.publish` frames. amqplib waits for `drain` when `publish` returns false;
 *   amqp-client keeps up to 1024 publishes in flight; ours encodes batches of 1024 publishes with
 *   `Frame.Encoder` into one buffer per write (what the client's writer fiber does).
 * - deliver rows: the client sends `basic.consume` (no-ack) and the sink pushes N deliveries (`basic.deliver`
 *   + content header + 1-byte body) as fast as the socket takes them; the time runs until the client has
 *   assembled all N messages. Ours feeds `Frame.Parser` and assembles each message from its three frames.
 *
 * Two more rows measure the codecs alone, in memory, against amqplib's own codec functions as its
 * connection uses them (`encodeMethod` + `encodeProperties` + `makeBodyFrame` copied into one buffer, as
 * `sendMessage` does; `parseFrame` + `decodeFrame` over the read chunks, as `recvFrame` does). amqp-client's codec
 * is woven into its channel and socket code, so it only appears in the end-to-end rows.
 *
 * Ratios are ours / peer (higher is better).
 */
import { AMQPClient } from "@cloudamqp/amqp-client"
import type { AMQPProperties } from "@cloudamqp/amqp-client"
import amqplib from "amqplib"
import { createRequire } from "node:module"
import * as Frame from "../../src/amqp/Frame.js"
import * as Table from "../../src/amqp/Table.js"
import type { Row, Suite } from "../harness.js"
import * as Raw from "../support/amqp-raw-client.js"
import { allProperties, startSink, type Sink } from "../support/amqp-sink.js"

const require = createRequire(import.meta.url)
// amqplib's package exports hide its codec modules; load the files themselves.
const amqplibDefs: {
  readonly BasicPublish: number
  readonly BasicProperties: number
  readonly BasicDeliver: number
  encodeMethod: (id: number, channel: number, fields: Record<string, unknown>) => Buffer
  encodeProperties: (id: number, channel: number, size: number, fields: Record<string, unknown>) => Buffer
} = require("../../node_modules/amqplib/lib/defs.js")
const amqplibFrame: {
  makeBodyFrame: (channel: number, payload: Buffer) => Buffer
  parseFrame: (bin: Buffer, max: number) => { readonly type: number; readonly channel: number; readonly rest: Buffer; readonly payload: Buffer } | false
  decodeFrame: (frame: object) => { readonly id?: number; readonly fields?: unknown; readonly size?: number; readonly content?: Buffer }
} = require("../../node_modules/amqplib/lib/frame.js")

const N = 100_000
const RUNS = 5
const body = Buffer.from("a")

const amqplibOptions = (all: boolean): amqplib.Options.Publish =>
  all
    ? {
      contentType: allProperties.contentType!,
      contentEncoding: allProperties.contentEncoding!,
      headers: Table.toRecord(allProperties.headers!),
      deliveryMode: allProperties.deliveryMode!,
      priority: allProperties.priority!,
      correlationId: allProperties.correlationId!,
      replyTo: allProperties.replyTo!,
      expiration: allProperties.expiration!,
      messageId: allProperties.messageId!,
      timestamp: allProperties.timestamp!.getTime() / 1000,
      type: allProperties.type!,
      userId: allProperties.userId!,
      appId: allProperties.appId!
    }
    : {}

const amqpClientProperties = (all: boolean): AMQPProperties =>
  all
    ? {
      contentType: allProperties.contentType!,
      contentEncoding: allProperties.contentEncoding!,
      headers: Table.toRecord(allProperties.headers!) as Record<string, string | number>,
      deliveryMode: allProperties.deliveryMode!,
      priority: allProperties.priority!,
      correlationId: allProperties.correlationId!,
      replyTo: allProperties.replyTo!,
      expiration: allProperties.expiration!,
      messageId: allProperties.messageId!,
      timestamp: allProperties.timestamp!,
      type: allProperties.type!,
      userId: allProperties.userId!,
      appId: allProperties.appId!
    }
    : {}

const timed = async (work: () => Promise<unknown>): Promise<number> => {
  const start = process.hrtime.bigint()
  await work()
  return N / (Number(process.hrtime.bigint() - start) / 1e9)
}

interface Participant {
  readonly publish: (all: boolean) => Promise<number>
  readonly deliver: (all: boolean) => Promise<number>
  readonly close: () => Promise<void>
}

const ours = async (sink: Sink): Promise<Participant> => {
  const client = await Raw.connect(sink.port)
  return {
    publish: (all) =>
      timed(() =>
        Promise.all([
          sink.expectPublishes(N),
          client.publish(N, { channel: 1, routingKey: "bench", properties: all ? allProperties : undefined, body })
        ])
      ),
    deliver: () => timed(() => client.consume(N)),
    close: async () => client.close()
  }
}

const withAmqplib = async (sink: Sink): Promise<Participant> => {
  const connection = await amqplib.connect(sink.url)
  const channel = await connection.createChannel()
  return {
    publish: (all) => {
      const options = amqplibOptions(all)
      return timed(() =>
        Promise.all([
          sink.expectPublishes(N),
          (async () => {
            for (let i = 0; i < N; i++) {
              if (!channel.publish("", "bench", body, options)) {
                await new Promise((resolve) => channel.once("drain", resolve))
              }
            }
          })()
        ])
      )
    },
    deliver: () =>
      timed(() =>
        new Promise<void>((done) => {
          let received = 0
          void channel.consume("bench", () => {
            if (++received === N) done()
          }, { noAck: true })
        })
      ),
    close: () => connection.close()
  }
}

const withAmqpClient = async (sink: Sink): Promise<Participant> => {
  const client = new AMQPClient(sink.url)
  const connection = await client.connect()
  const channel = await connection.channel()
  return {
    publish: (all) => {
      const properties = amqpClientProperties(all)
      return timed(() =>
        Promise.all([
          sink.expectPublishes(N),
          (async () => {
            for (let i = 0; i < N; i += 1024) {
              const batch: Array<Promise<number>> = []
              for (let j = i; j < Math.min(N, i + 1024); j++) batch.push(channel.basicPublish("", "bench", body, properties))
              await Promise.all(batch)
            }
          })()
        ])
      )
    },
    deliver: () =>
      timed(() =>
        new Promise<void>((done) => {
          let received = 0
          void channel.basicConsume("bench", { noAck: true }, () => {
            if (++received === N) done()
          })
        })
      ),
    close: () => connection.close()
  }
}

/** The codecs alone: encode N publishes, or decode N deliveries from chunks, in memory. */
const codecOnly = () => {
  const publishFields = { exchange: "", routingKey: "bench", mandatory: false, immediate: false, ticket: 0 }
  const props = amqplibOptions(true) as Record<string, unknown>
  const encoder = new Frame.Encoder()
  const deliveries = (() => {
    const all = new Frame.Encoder({ slabSize: 1 << 24 })
    for (let i = 1; i <= 10_000; i++) {
      all.frame(Frame.method(1, {
        _tag: "BasicDeliver", consumerTag: "ctag-1", deliveryTag: BigInt(i), redelivered: false, exchange: "", routingKey: "bench"
      }))
      all.frame(Frame.header(1, 1n, { ...allProperties, messageId: `m-${i}`, correlationId: `c-${i}` }))
      all.frame(Frame.body(1, body))
    }
    const bytes = Buffer.from(all.take())
    const chunks: Array<Buffer> = []
    for (let i = 0; i < bytes.length; i += 65536) chunks.push(bytes.subarray(i, i + 65536))
    return chunks
  })()
  return {
    encodeOurs: () =>
      timed(async () => {
        for (let i = 0; i < N; i += 1024) {
          for (let j = i; j < Math.min(N, i + 1024); j++) {
            encoder.publish({ channel: 1, routingKey: "bench", properties: allProperties, body })
          }
          encoder.take()
        }
      }),
    encodeAmqplib: () =>
      timed(async () => {
        for (let i = 0; i < N; i++) {
          const method = amqplibDefs.encodeMethod(amqplibDefs.BasicPublish, 1, publishFields)
          const header = amqplibDefs.encodeProperties(amqplibDefs.BasicProperties, 1, body.length, props)
          const all = Buffer.allocUnsafe(method.length + header.length + body.length + 8)
          let offset = method.copy(all, 0)
          offset += header.copy(all, offset)
          amqplibFrame.makeBodyFrame(1, body).copy(all, offset)
        }
      }),
    decodeOurs: () =>
      timed(async () => {
        let messages = 0
        for (let round = 0; round < N / 10_000; round++) {
          const parser = new Frame.Parser()
          let deliver: Frame.MethodFrame | undefined
          let header: Frame.HeaderFrame | undefined
          const onFrame = (frame: Frame.Frame) => {
            if (frame._tag === "Method") deliver = frame
            else if (frame._tag === "Header") header = frame
            else if (frame._tag === "Body" && deliver !== undefined && header !== undefined) {
              const message = { fields: deliver.method, properties: header.properties, content: frame.payload }
              if (message.content.length === 1) messages++
            }
          }
          for (const chunk of deliveries) parser.feed(chunk, onFrame)
        }
        if (messages !== N) throw new Error(`decoded ${messages} of ${N}`)
      }),
    decodeAmqplib: () =>
      timed(async () => {
        let messages = 0
        for (let round = 0; round < N / 10_000; round++) {
          let rest: Buffer = Buffer.alloc(0)
          let deliver: unknown
          let header: { readonly fields?: unknown } | undefined
          for (const chunk of deliveries) {
            rest = rest.length === 0 ? chunk : Buffer.concat([rest, chunk])
            for (let f = amqplibFrame.parseFrame(rest, 131072); f !== false; f = amqplibFrame.parseFrame(rest, 131072)) {
              rest = f.rest
              const frame = amqplibFrame.decodeFrame(f)
              if (frame.id === amqplibDefs.BasicDeliver) deliver = frame.fields
              else if (frame.id === amqplibDefs.BasicProperties) header = frame
              else if (frame.content !== undefined && deliver !== undefined && header !== undefined) {
                const message = { fields: deliver, properties: header.fields, content: frame.content }
                if (message.content.length === 1) messages++
              }
            }
          }
        }
        if (messages !== N) throw new Error(`decoded ${messages} of ${N}`)
      })
  }
}

const suite: Suite = {
  name: "amqp-codec",
  run: async () => {
    const sink = await startSink()
    try {
      const participants: ReadonlyArray<readonly [string, Participant]> = [
        ["effect-wire", await ours(sink)],
        ["amqplib", await withAmqplib(sink)],
        ["@cloudamqp/amqp-client", await withAmqpClient(sink)]
      ]
      const rows: Array<Row> = []
      const measure = async (metric: string, run: (p: Participant) => Promise<number>) => {
        const values: Record<string, number> = {}
        // Interleave participants run by run, so a noisy moment on the shared machine hits everyone.
        const best: Record<string, number> = {}
        for (let r = 0; r < RUNS; r++) {
          for (const [name, p] of participants) best[name] = Math.max(best[name] ?? 0, await run(p))
        }
        for (const [name] of participants.slice(1)) values[name] = best[name]!
        rows.push({ metric, unit: "msg/s", better: "higher", ours: best["effect-wire"]!, peers: values })
      }
      await measure("publish, 1-byte body, no properties", (p) => p.publish(false))
      await measure("publish, 1-byte body, all properties + headers", (p) => p.publish(true))
      sink.configureDeliveries({ count: N, bodySize: 1, allProperties: false })
      await measure("deliver (deliver + header + body), 1-byte body, no properties", (p) => p.deliver(false))
      sink.configureDeliveries({ count: N, bodySize: 1, allProperties: true })
      await measure("deliver, 1-byte body, all properties + headers", (p) => p.deliver(true))
      for (const [, p] of participants) await p.close().catch(() => undefined)

      const codec = codecOnly()
      const inMemory = async (metric: string, ours: () => Promise<number>, theirs: () => Promise<number>) => {
        let best = 0
        let peer = 0
        for (let r = 0; r < RUNS; r++) {
          best = Math.max(best, await ours())
          peer = Math.max(peer, await theirs())
        }
        rows.push({ metric, unit: "msg/s", better: "higher", ours: best, peers: { "amqplib codec": peer } })
      }
      await inMemory("codec only, in memory: encode publish, all properties + headers", codec.encodeOurs, codec.encodeAmqplib)
      await inMemory("codec only, in memory: decode delivery, all properties + headers", codec.decodeOurs, codec.decodeAmqplib)
      return rows
    } finally {
      sink.stop()
    }
  }
}

export default suite
