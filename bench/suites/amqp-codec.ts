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
 * Ratios are ours / peer (higher is better).
 */
import { AMQPClient } from "@cloudamqp/amqp-client"
import type { AMQPProperties } from "@cloudamqp/amqp-client"
import amqplib from "amqplib"
import * as Table from "../../src/amqp/Table.js"
import { bestOf, type Row, type Suite } from "../harness.js"
import * as Raw from "../support/amqp-raw-client.js"
import { allProperties, startSink, type Sink } from "../support/amqp-sink.js"

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
          for (const [name, p] of participants) best[name] = Math.max(best[name] ?? 0, await bestOf(1, () => run(p)))
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
      return rows
    } finally {
      sink.stop()
    }
  }
}

export default suite
