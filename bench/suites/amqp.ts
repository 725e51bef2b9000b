/**
 * The AMQP client end to end against the local RabbitMQ, side by side with amqplib and @cloudamqp/amqp-client in
 * the same run (same broker, same machine, same message shapes). Ratios are ours / peer.
 *
 * Each row is written the way a user of each client would write it:
 *
 * - publish, no confirms: N 16-byte messages to a queue, one publish call per message. Ours from one fiber (each
 *   publish completes once the socket has taken the message); amqplib's `sendToQueue` loop, pausing on `drain`;
 *   amqp-client's promises, awaited `window` at a time. The time runs until the broker has them all (polled with
 *   a passive declare, by all three clients).
 * - the same with our `publishAll` of `window` messages per call, against the same peer loops.
 * - publish with confirms, a window of `window` unconfirmed messages: ours `publishAll` of `window` messages per
 *   call (one call waits for all their acks); the peers' promises (amqplib's callbacks), awaited `window` at a time.
 * - the same with one fiber per publish, `window` fibers at once: what forking a fiber per message costs in
 *   Effect (about 5 µs a fiber here), measured for comparison.
 * - consume: N messages preloaded, then consumed with prefetch 1000 and one manual ack each: ours
 *   `Stream.runForEach` with the ack as the handler, the peers' callbacks.
 * - confirmed publish latency: one publish at a time on a confirm channel (null route), p50 and p99.
 *
 * Every client gets a warm-up run, then three interleaved rounds; each keeps its best.
 *
 * On a default broker a single publishing connection is throttled by RabbitMQ's credit flow, so the publish
 * rows measure client + broker; the amqp-codec suite measures the codec alone.
 */
import { AMQPClient } from "@cloudamqp/amqp-client"
import amqplib from "amqplib"
import * as Effect from "effect/Effect"
import * as Stream from "effect/Stream"
import * as Connection from "../../src/amqp/Connection.js"
import { percentile, type Row, type Suite } from "../harness.js"

const url = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672/"
const N = 50_000
const window = 1000
const latencySamples = 2000
/** Publishes before each latency run's samples: every client's code is warm when measured. */
const latencyWarmup = 500
const body = new Uint8Array(16).fill(7)
const queueName = (who: string, what: string) => `bench-${who}-${what}-${process.pid}`

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

// ------------------------------------------------------------------------------------------------------------
// effect-wire
// ------------------------------------------------------------------------------------------------------------

/**
 * `shape`: "sequential", one publish call per message from one fiber; "batches", `publishAll` of `window` messages
 * per call; "fibers", one fiber per publish, `window` at once.
 */
type PublishShape = "sequential" | "batches" | "fibers"

const oursPublish = (confirm: boolean, shape: PublishShape) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const connection = yield* Connection.make({ url })
    const channel = yield* connection.channel({ confirm })
    const queue = queueName("ours", confirm ? "confirm" : "publish")
    yield* channel.queueDeclare(queue, { autoDelete: false })
    yield* channel.queuePurge(queue)
    const messages = Array.from({ length: N })
    const start = process.hrtime.bigint()
    if (shape === "batches") {
      const batch = Array.from({ length: window }, () => ({ exchange: "", routingKey: queue, body }))
      for (let sent = 0; sent < N; sent += window) yield* channel.publishAll(batch)
    } else {
      yield* Effect.forEach(messages, () => channel.publish("", queue, body), {
        concurrency: shape === "fibers" ? window : 1,
        discard: true
      })
    }
    // Like the peers: the time runs until the broker has them all (a passive declare can overtake the last
    // publishes on their way to the queue).
    while ((yield* channel.queueDeclare(queue, { passive: true })).messageCount < N) yield* Effect.sleep(2)
    const rate = N / seconds(start)
    yield* channel.queueDelete(queue)
    return rate
  })))

const ours = {
  publish: (confirm: boolean) => oursPublish(confirm, confirm ? "batches" : "sequential"),
  publishBatches: (confirm: boolean) => oursPublish(confirm, "batches"),
  publishFibers: (confirm: boolean) => oursPublish(confirm, "fibers"),
  consume: () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const connection = yield* Connection.make({ url })
      const channel = yield* connection.channel({ confirm: true })
      const queue = queueName("ours", "consume")
      yield* channel.queueDeclare(queue, { autoDelete: false })
      yield* channel.queuePurge(queue)
      yield* Effect.forEach(Array.from({ length: N }), () => channel.publish("", queue, body), {
        concurrency: window,
        discard: true
      })
      const start = process.hrtime.bigint()
      yield* channel.consume(queue, { prefetch: 1000 }).pipe(
        Stream.take(N),
        Stream.runForEach((delivery) => delivery.ack())
      )
      const rate = N / seconds(start)
      yield* channel.queueDelete(queue)
      return rate
    }))),
  latency: () =>
    Effect.runPromise(Effect.scoped(Effect.gen(function*() {
      const connection = yield* Connection.make({ url })
      const channel = yield* connection.channel({ confirm: true })
      const samples: Array<number> = []
      for (let i = 0; i < latencySamples + latencyWarmup; i++) {
        const start = process.hrtime.bigint()
        yield* channel.publish("", "bench-null-route", body)
        if (i >= latencyWarmup) samples.push(seconds(start) * 1e6)
      }
      return samples
    })))
}

// ------------------------------------------------------------------------------------------------------------
// amqplib
// ------------------------------------------------------------------------------------------------------------

const withAmqplib = async <A>(f: (connection: amqplib.ChannelModel) => Promise<A>): Promise<A> => {
  const connection = await amqplib.connect(url)
  try {
    return await f(connection)
  } finally {
    await connection.close()
  }
}

const amqplibPublish = async (channel: amqplib.Channel, queue: string) => {
  for (let i = 0; i < N; i++) {
    if (!channel.sendToQueue(queue, Buffer.from(body))) await new Promise((r) => channel.once("drain", r))
  }
}

const amqplibPeer = {
  publishBatches: (confirm: boolean) => amqplibPeer.publish(confirm),
  publishFibers: (confirm: boolean) => amqplibPeer.publish(confirm),
  publish: (confirm: boolean): Promise<number> =>
    withAmqplib(async (connection) => {
      const queue = queueName("amqplib", confirm ? "confirm" : "publish")
      if (!confirm) {
        const channel = await connection.createChannel()
        await channel.assertQueue(queue, { autoDelete: false })
        await channel.purgeQueue(queue)
        const start = process.hrtime.bigint()
        await amqplibPublish(channel, queue)
        while ((await channel.checkQueue(queue)).messageCount < N) await new Promise((r) => setTimeout(r, 2))
        const rate = N / seconds(start)
        await channel.deleteQueue(queue)
        return rate
      }
      const channel = await connection.createConfirmChannel()
      await channel.assertQueue(queue, { autoDelete: false })
      await channel.purgeQueue(queue)
      const start = process.hrtime.bigint()
      let inFlight: Array<Promise<void>> = []
      for (let i = 0; i < N; i++) {
        inFlight.push(
          new Promise<void>((resolve, reject) =>
            channel.sendToQueue(queue, Buffer.from(body), {}, (err) => (err ? reject(err) : resolve()))
          )
        )
        if (inFlight.length >= window) {
          await Promise.all(inFlight)
          inFlight = []
        }
      }
      await Promise.all(inFlight)
      const rate = N / seconds(start)
      await channel.deleteQueue(queue)
      return rate
    }),
  consume: () =>
    withAmqplib(async (connection) => {
      const queue = queueName("amqplib", "consume")
      const channel = await connection.createChannel()
      await channel.assertQueue(queue, { autoDelete: false })
      await channel.purgeQueue(queue)
      await amqplibPublish(channel, queue)
      while ((await channel.checkQueue(queue)).messageCount < N) await new Promise((r) => setTimeout(r, 10))
      await channel.prefetch(1000)
      const start = process.hrtime.bigint()
      await new Promise<void>((resolve) => {
        let count = 0
        void channel.consume(queue, (msg) => {
          if (msg === null) return
          channel.ack(msg)
          if (++count === N) resolve()
        })
      })
      const rate = N / seconds(start)
      await channel.deleteQueue(queue)
      return rate
    }),
  latency: () =>
    withAmqplib(async (connection) => {
      const channel = await connection.createConfirmChannel()
      const samples: Array<number> = []
      for (let i = 0; i < latencySamples + latencyWarmup; i++) {
        const start = process.hrtime.bigint()
        await new Promise<void>((resolve, reject) =>
          channel.sendToQueue("bench-null-route", Buffer.from(body), {}, (err) => (err ? reject(err) : resolve()))
        )
        if (i >= latencyWarmup) samples.push(seconds(start) * 1e6)
      }
      return samples
    })
}

// ------------------------------------------------------------------------------------------------------------
// @cloudamqp/amqp-client
// ------------------------------------------------------------------------------------------------------------

const withCloudamqp = async <A>(f: (connection: Awaited<ReturnType<AMQPClient["connect"]>>) => Promise<A>) => {
  const connection = await new AMQPClient(url).connect()
  try {
    return await f(connection)
  } finally {
    await connection.close()
  }
}

const cloudamqpPeer = {
  publishBatches: (confirm: boolean) => cloudamqpPeer.publish(confirm),
  publishFibers: (confirm: boolean) => cloudamqpPeer.publish(confirm),
  publish: (confirm: boolean): Promise<number> =>
    withCloudamqp(async (connection) => {
      const queue = queueName("cloudamqp", confirm ? "confirm" : "publish")
      const channel = await connection.channel()
      if (confirm) await channel.confirmSelect()
      await channel.queueDeclare(queue, { autoDelete: false })
      await channel.queuePurge(queue)
      const start = process.hrtime.bigint()
      let inFlight: Array<Promise<number>> = []
      for (let i = 0; i < N; i++) {
        inFlight.push(channel.basicPublish("", queue, body))
        if (inFlight.length >= window) {
          await Promise.all(inFlight)
          inFlight = []
        }
      }
      await Promise.all(inFlight)
      while ((await channel.queueDeclare(queue, { passive: true })).messageCount < N) {
        await new Promise((r) => setTimeout(r, 2))
      }
      const rate = N / seconds(start)
      await channel.queueDelete(queue)
      return rate
    }),
  consume: () =>
    withCloudamqp(async (connection) => {
      const queue = queueName("cloudamqp", "consume")
      const channel = await connection.channel()
      await channel.confirmSelect()
      await channel.queueDeclare(queue, { autoDelete: false })
      await channel.queuePurge(queue)
      let inFlight: Array<Promise<number>> = []
      for (let i = 0; i < N; i++) {
        inFlight.push(channel.basicPublish("", queue, body))
        if (inFlight.length >= window) {
          await Promise.all(inFlight)
          inFlight = []
        }
      }
      await Promise.all(inFlight)
      await channel.basicQos(1000)
      const start = process.hrtime.bigint()
      await new Promise<void>((resolve) => {
        let count = 0
        void channel.basicConsume(queue, { noAck: false }, (msg) => {
          void msg.ack()
          if (++count === N) resolve()
        })
      })
      const rate = N / seconds(start)
      await channel.queueDelete(queue)
      return rate
    }),
  latency: () =>
    withCloudamqp(async (connection) => {
      const channel = await connection.channel()
      await channel.confirmSelect()
      const samples: Array<number> = []
      for (let i = 0; i < latencySamples + latencyWarmup; i++) {
        const start = process.hrtime.bigint()
        await channel.basicPublish("", "bench-null-route", body)
        if (i >= latencyWarmup) samples.push(seconds(start) * 1e6)
      }
      return samples
    })
}

const runs = 3
const peers = { ours, amqplib: amqplibPeer, "amqp-client": cloudamqpPeer } as const
type Client = typeof ours

/**
 * One warm-up run per client, then `runs` rounds in which every client runs once, in turn: a disturbance of the
 * shared machine hits all three alike, and each keeps its best round.
 */
const interleaved = async <A>(
  measure: (client: Client) => Promise<A>,
  better: (a: A, b: A) => boolean
): Promise<Record<keyof typeof peers, A>> => {
  const names = Object.keys(peers) as Array<keyof typeof peers>
  for (const name of names) await measure(peers[name] as unknown as Client)
  const best: Partial<Record<keyof typeof peers, A>> = {}
  for (let i = 0; i < runs; i++) {
    for (const name of names) {
      const value = await measure(peers[name] as unknown as Client)
      const current = best[name]
      if (current === undefined || better(value, current)) best[name] = value
    }
  }
  return best as Record<keyof typeof peers, A>
}

const suite: Suite = {
  name: "amqp",
  run: async () => {
    const rows: Array<Row> = []
    const rate = async (metric: string, f: (p: Client) => Promise<number>) => {
      const best = await interleaved(f, (a, b) => a > b)
      rows.push({
        metric,
        unit: "msg/s",
        better: "higher",
        ours: best.ours,
        peers: { amqplib: best.amqplib, "amqp-client": best["amqp-client"] }
      })
    }
    await rate("publish 16 B, no confirms, one publish per message", (p) => p.publish(false))
    await rate(`publish 16 B, no confirms, publishAll of ${window} (peers: same loops)`, (p) => p.publishBatches(false))
    await rate(`publish 16 B, confirms, ${window} in flight (ours: publishAll of ${window})`, (p) => p.publish(true))
    await rate(`publish 16 B, confirms, ${window} in flight (ours: a fiber per publish)`, (p) => p.publishFibers(true))
    await rate("consume, prefetch 1000, manual ack", (p) => p.consume())
    // The round with the lowest p50 counts for each client.
    const latency = await interleaved((p) => p.latency(), (a, b) => percentile(a, 50) < percentile(b, 50))
    for (const p of [50, 99]) {
      rows.push({
        metric: `confirmed publish latency p${p} (null route)`,
        unit: "µs",
        better: "lower",
        ours: percentile(latency.ours, p),
        peers: { amqplib: percentile(latency.amqplib, p), "amqp-client": percentile(latency["amqp-client"], p) }
      })
    }
    return rows
  }
}

export default suite
