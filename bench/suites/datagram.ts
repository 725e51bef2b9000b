/**
 * UDP datagram sockets vs plain `node:dgram` in the same run, both ends in this process over loopback:
 *
 * - ping-pong: 64-byte datagrams echoed back one at a time, 20k round trips (round trips/s);
 * - windowed echo: 64 datagrams in flight, 100k echoed (datagrams/s). The window keeps the kernel's buffers
 *   from overflowing, so both sides see every datagram and the count is exact.
 *
 * Ours runs the echo server as a fiber on `receive` + `send` and the client on `send` + `receiveMany`.
 */
import * as Dgram from "node:dgram"
import * as Effect from "effect/Effect"
import * as Datagram from "../../src/transport/Datagram.js"
import { bestOf, type Row, type Suite } from "../harness.js"

const size = 64
const roundTrips = 20_000
const windowed = 100_000
const window = 64
const runs = 3

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

// ---- ours ----

const ours = (total: number, inFlight: number): Promise<number> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const server = yield* Datagram.make({ host: "127.0.0.1", receiveBufferSize: 4096 })
    yield* Effect.forkScoped(
      Effect.forever(Effect.flatMap(server.receive, ({ address, data }) => server.send(data, address)))
    )
    const client = yield* Datagram.make({
      host: "127.0.0.1",
      connect: (yield* server.info).local,
      receiveBufferSize: 4096
    })
    const payload = new Uint8Array(size)
    const start = process.hrtime.bigint()
    let sent = 0
    let received = 0
    while (sent < Math.min(inFlight, total)) {
      yield* client.send(payload)
      sent++
    }
    while (received < total) {
      const batch = yield* client.receiveMany(inFlight)
      received += batch.length
      for (let i = 0; i < batch.length && sent < total; i++) {
        yield* client.send(payload)
        sent++
      }
    }
    return total / seconds(start)
  })))

// ---- node:dgram ----

const node = (total: number, inFlight: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Dgram.createSocket("udp4")
    const client = Dgram.createSocket("udp4")
    server.on("error", reject)
    client.on("error", reject)
    server.on("message", (data, rinfo) => server.send(data, rinfo.port, rinfo.address))
    server.bind(0, "127.0.0.1", () => {
      client.bind(0, "127.0.0.1", () => {
        client.connect(server.address().port, "127.0.0.1", () => {
          const payload = Buffer.alloc(size)
          const start = process.hrtime.bigint()
          let sent = 0
          let received = 0
          client.on("message", () => {
            received++
            if (received === total) {
              const rate = total / seconds(start)
              client.close()
              server.close(() => resolve(rate))
            } else if (sent < total) {
              sent++
              client.send(payload)
            }
          })
          for (; sent < Math.min(inFlight, total); sent++) client.send(payload)
        })
      })
    })
  })

const suite: Suite = {
  name: "datagram",
  run: async (): Promise<ReadonlyArray<Row>> => [
    {
      metric: `UDP ping-pong, ${size}-byte datagrams`,
      unit: "round trips/s",
      better: "higher",
      ours: await bestOf(runs, () => ours(roundTrips, 1)),
      peers: { "node:dgram": await bestOf(runs, () => node(roundTrips, 1)) }
    },
    {
      metric: `UDP windowed echo, ${window} in flight`,
      unit: "datagrams/s",
      better: "higher",
      ours: await bestOf(runs, () => ours(windowed, window)),
      peers: { "node:dgram": await bestOf(runs, () => node(windowed, window)) }
    }
  ]
}

export default suite
