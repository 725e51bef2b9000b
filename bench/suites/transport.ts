/**
 * TCP transport vs plain `node:net` in the same run, both ends in this process over loopback:
 *
 * - bulk: 256 MiB in 64 KiB writes, the receiver counting bytes (MiB/s);
 * - ping-pong: 64-byte messages echoed back, 20k round trips (round trips/s).
 *
 * Each also reports the CPU time the process spent (user + system, both ends): on a shared machine the rates move
 * with the neighbours' load, the CPU cost of the work much less.
 */
import * as Effect from "effect/Effect"
import * as Net from "node:net"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import * as Transport from "../../src/transport/Transport.js"
import type { Suite } from "../harness.js"

const bulkBytes = 256 * 1024 * 1024
const bulkChunk = 64 * 1024
const pingSize = 64
const roundTrips = 20_000
const runs = 7

const mib = (bytes: number) => bytes / (1024 * 1024)
const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

// ---- ours ----

const oursBulk = (): Promise<number> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    let received = 0
    const done = yield* Effect.makeLatch(false)
    const server = yield* Server.make({
      listen: Server.tcp({ port: 0 }),
      handler: (transport) =>
        Effect.gen(function*() {
          while (true) {
            const result = yield* transport.read
            if (Transport.isEof(result)) break
            for (let i = 0; i < result.length; i++) received += result[i]!.length
          }
          yield* done.open
        })
    })
    if (server.address._tag !== "TcpAddress") return yield* Effect.die("tcp expected")
    const client = yield* Tcp.connect({ host: server.address.host, port: server.address.port })
    const chunk = new Uint8Array(bulkChunk).fill(7)
    const start = process.hrtime.bigint()
    for (let sent = 0; sent < bulkBytes; sent += bulkChunk) yield* client.write(chunk)
    yield* client.shutdownWrite
    yield* done.await
    const elapsed = seconds(start)
    if (received !== bulkBytes) return yield* Effect.die(`received ${received}`)
    return mib(bulkBytes) / elapsed
  })))

const oursPingPong = (): Promise<number> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* Server.make({
      listen: Server.tcp({ port: 0 }),
      handler: (transport) =>
        Effect.gen(function*() {
          while (true) {
            const result = yield* transport.read
            if (Transport.isEof(result)) return
            yield* transport.writeAll(result)
          }
        })
    })
    if (server.address._tag !== "TcpAddress") return yield* Effect.die("tcp expected")
    const client = yield* Tcp.connect({ host: server.address.host, port: server.address.port })
    const ping = new Uint8Array(pingSize).fill(1)
    const start = process.hrtime.bigint()
    for (let i = 0; i < roundTrips; i++) {
      yield* client.write(ping)
      let got = 0
      while (got < pingSize) {
        const result = yield* client.read
        if (Transport.isEof(result)) return yield* Effect.die("eof")
        for (let k = 0; k < result.length; k++) got += result[k]!.length
      }
    }
    return roundTrips / seconds(start)
  })))

// ---- plain node:net, written the way a careful Node programmer would ----

const listen = (onConnection: (socket: Net.Socket) => void) =>
  new Promise<Net.Server>((resolve) => {
    const server = Net.createServer({ noDelay: true }, onConnection)
    server.listen(0, "127.0.0.1", () => resolve(server))
  })

const connect = (server: Net.Server) =>
  new Promise<Net.Socket>((resolve) => {
    const socket = Net.connect({ port: (server.address() as Net.AddressInfo).port, host: "127.0.0.1", noDelay: true })
    socket.once("connect", () => resolve(socket))
  })

const close = (server: Net.Server) => new Promise<void>((resolve) => server.close(() => resolve()))

const netBulk = async (): Promise<number> => {
  let received = 0
  let finished!: () => void
  const done = new Promise<void>((resolve) => (finished = resolve))
  const server = await listen((socket) => {
    socket.on("data", (chunk: Buffer) => (received += chunk.length))
    socket.on("end", () => finished())
  })
  const client = await connect(server)
  const chunk = new Uint8Array(bulkChunk).fill(7)
  const start = process.hrtime.bigint()
  let sent = 0
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (sent < bulkBytes) {
        sent += bulkChunk
        if (!client.write(chunk)) return void client.once("drain", pump)
      }
      client.end()
      resolve()
    }
    pump()
  })
  await done
  const elapsed = seconds(start)
  client.destroy()
  await close(server)
  if (received !== bulkBytes) throw new Error(`received ${received}`)
  return mib(bulkBytes) / elapsed
}

const netPingPong = async (): Promise<number> => {
  const server = await listen((socket) => socket.on("data", (chunk: Buffer) => socket.write(chunk)))
  const client = await connect(server)
  const ping = new Uint8Array(pingSize).fill(1)
  const start = process.hrtime.bigint()
  await new Promise<void>((resolve) => {
    let count = 0
    let got = 0
    client.on("data", (chunk: Buffer) => {
      got += chunk.length
      if (got < pingSize) return
      got -= pingSize
      if (++count === roundTrips) return resolve()
      client.write(ping)
    })
    client.write(ping)
  })
  const rate = roundTrips / seconds(start)
  client.destroy()
  await close(server)
  return rate
}

interface Best {
  rate: number
  /** CPU milliseconds (user + system) of the least costly run. */
  cpu: number
}

const measure = async (run: () => Promise<number>, best: Best) => {
  const start = process.cpuUsage()
  const rate = await run()
  const used = process.cpuUsage(start)
  best.rate = Math.max(best.rate, rate)
  best.cpu = Math.min(best.cpu, (used.user + used.system) / 1000)
}

/** Best of `runs` for each side, alternating ours and the peer so that both see the same machine load. */
const interleaved = async (ours: () => Promise<number>, peer: () => Promise<number>) => {
  const bestOurs: Best = { rate: 0, cpu: Infinity }
  const bestPeer: Best = { rate: 0, cpu: Infinity }
  for (let i = 0; i < runs; i++) {
    await measure(peer, bestPeer)
    await measure(ours, bestOurs)
  }
  return { ours: bestOurs, peer: bestPeer }
}

const suite: Suite = {
  name: "transport",
  run: async () => {
    const bulk = await interleaved(oursBulk, netBulk)
    const ping = await interleaved(oursPingPong, netPingPong)
    return [
      {
        metric: "tcp bulk 256 MiB, 64 KiB writes",
        unit: "MiB/s",
        better: "higher",
        ours: bulk.ours.rate,
        peers: { "node:net": bulk.peer.rate }
      },
      {
        metric: "tcp bulk 256 MiB: CPU per MiB",
        unit: "µs",
        better: "lower",
        ours: (bulk.ours.cpu * 1000) / mib(bulkBytes),
        peers: { "node:net": (bulk.peer.cpu * 1000) / mib(bulkBytes) }
      },
      {
        metric: "tcp ping-pong 64 B, 20k round trips",
        unit: "round trips/s",
        better: "higher",
        ours: ping.ours.rate,
        peers: { "node:net": ping.peer.rate }
      },
      {
        metric: "tcp ping-pong 64 B: CPU per round trip",
        unit: "µs",
        better: "lower",
        ours: (ping.ours.cpu * 1000) / roundTrips,
        peers: { "node:net": (ping.peer.cpu * 1000) / roundTrips }
      }
    ]
  }
}

export default suite
