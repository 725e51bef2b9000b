/**
 * The connection strategy: rotation over endpoints, retries on a schedule, connect timeouts, attempt events.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import { spawn } from "node:child_process"
import * as Net from "node:net"
import * as Address from "../../src/transport/Address.js"
import * as Connect from "../../src/transport/Connect.js"
import * as Memory from "../../src/transport/Memory.js"
import * as Server from "../../src/transport/Server.js"
import * as Transport from "../../src/transport/Transport.js"
import { TransportError } from "../../src/transport/TransportError.js"
import { missingCommand, requirePeer } from "../support/peers.js"

// Skips loudly outside CI, fails under CI=true.
const hasPython = requirePeer(
  "Connect timeout test",
  missingCommand("python3", ["-c", "pass"], "python3 holds a listener that never accepts")
)

const freePort = Effect.async<number>((resume) => {
  const probe = Net.createServer()
  probe.listen(0, "127.0.0.1", () => {
    const port = (probe.address() as Net.AddressInfo).port
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const hello = Server.make({
  listen: Server.tcp({ port: 0 }),
  handler: (transport) => transport.write(new TextEncoder().encode("hello")),
  shutdownTimeout: Duration.millis(200)
})

const portOf = (address: Address.Address) => address._tag === "TcpAddress" ? address.port : -1

const describeEvent = (event: Connect.ConnectEvent) =>
  event._tag === "GaveUp"
    ? `GaveUp ${event.attempts} ${event.error.code ?? event.error.reason}`
    : `${event._tag} ${event.attempt} ${portOf(event.address)}${
      event._tag === "Failed" ? ` ${event.error.code ?? event.error.reason}` : ""
    }`

/**
 * A TCP listener that never accepts, with its one-slot backlog taken: connecting to it hangs in SYN_SENT, so
 * only a connect timeout ends the attempt. Needs python3 (a Node server always accepts).
 */
const blackhole = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly close: () => void }>((resume) => {
    const python = spawn("python3", [
      "-c",
      "import socket,sys\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()"
    ], { stdio: ["pipe", "pipe", "ignore"] })
    python.stdout.once("data", (data: Buffer) => {
      const port = Number(String(data).trim())
      const fillers = [0, 1, 2].map(() => Net.connect({ host: "127.0.0.1", port }).on("error", () => {}))
      // Let the fillers take the backlog first.
      setTimeout(() =>
        resume(Effect.succeed({
          port,
          close: () => {
            for (const filler of fillers) filler.destroy()
            python.stdin.end()
            python.kill()
          }
        })), 200)
    })
  }),
  (hole) => Effect.sync(() => hole.close())
)

describe("Connect", () => {
  it.scopedLive("rotates past a refused address, then sticks to the one that worked", () =>
    Effect.gen(function*() {
      const server = yield* hello
      const closedPort = yield* freePort
      const connector = yield* Connect.make({
        endpoints: [
          Connect.tcp({ host: "127.0.0.1", port: closedPort }),
          Connect.tcp({ host: "127.0.0.1", port: portOf(server.address) })
        ],
        schedule: Schedule.recurs(3)
      })
      const events = yield* connector.subscribe
      const transport = yield* connector.connect
      assert.strictEqual(new TextDecoder().decode(Transport.concat((yield* transport.read) as ReadonlyArray<Uint8Array>)), "hello")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map(describeEvent), [
        `Attempting 1 ${closedPort}`,
        `Failed 1 ${closedPort} ECONNREFUSED`,
        `Attempting 2 ${portOf(server.address)}`,
        `Connected 2 ${portOf(server.address)}`
      ])
      // The next connection starts where the last one succeeded.
      yield* Effect.scoped(connector.connect)
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map(describeEvent), [
        `Attempting 1 ${portOf(server.address)}`,
        `Connected 1 ${portOf(server.address)}`
      ])
    }))

  describe.skipIf(!hasPython)("against a listener that never accepts", () => {
    it.scopedLive("a connect timeout ends an attempt that hangs and moves on to the next endpoint", () =>
      Effect.gen(function*() {
        const hole = yield* blackhole
        const server = yield* hello
        const connector = yield* Connect.make({
          endpoints: [
            Connect.tcp({ host: "127.0.0.1", port: hole.port }),
            Connect.tcp({ host: "127.0.0.1", port: portOf(server.address) })
          ],
          connectTimeout: Duration.millis(300),
          schedule: Schedule.recurs(1)
        })
        const events = yield* connector.subscribe
        const started = Date.now()
        yield* connector.connect
        assert.isAtLeast(Date.now() - started, 250)
        assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map(describeEvent), [
          `Attempting 1 ${hole.port}`,
          `Failed 1 ${hole.port} ConnectTimeout`,
          `Attempting 2 ${portOf(server.address)}`,
          `Connected 2 ${portOf(server.address)}`
        ])
      }), { timeout: 15_000 })
  })

  it.scopedLive("gives up when the schedule is exhausted, with the last error", () =>
    Effect.gen(function*() {
      const a = yield* freePort
      const b = yield* freePort
      const connector = yield* Connect.make({
        endpoints: [Connect.tcp({ host: "127.0.0.1", port: a }), Connect.tcp({ host: "127.0.0.1", port: b })],
        schedule: Schedule.recurs(2)
      })
      const events = yield* connector.subscribe
      const error = yield* Effect.flip(connector.connect)
      assert.strictEqual(error.code, "ECONNREFUSED")
      const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).map(describeEvent)
      assert.deepStrictEqual(seen.filter((e) => e.startsWith("Attempting")), [
        `Attempting 1 ${a}`,
        `Attempting 2 ${b}`,
        `Attempting 3 ${a}`
      ])
      assert.strictEqual(seen[seen.length - 1], "GaveUp 3 ECONNREFUSED")
    }))

  it.scoped("retries follow the schedule on the Clock (TestClock)", () =>
    Effect.gen(function*() {
      let up = false
      const down = (name: string) =>
        Connect.endpoint(Address.memory(name), () =>
          up
            ? Effect.map(Memory.pair(), ([a]) => a as Transport.Transport)
            : Effect.fail(new TransportError({ reason: "Connect", code: "ECONNREFUSED", address: name })))
      const connector = yield* Connect.make({
        endpoints: [down("a"), down("b")],
        schedule: Schedule.spaced("1 second")
      })
      const events = yield* connector.subscribe
      const fiber = yield* Effect.fork(connector.connect)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(Chunk.size(Chunk.filter(yield* Queue.takeAll(events), (e) => e._tag === "Attempting")), 1)
      yield* TestClock.adjust("1 second")
      yield* TestClock.adjust("1 second")
      const attempts = Chunk.filter(yield* Queue.takeAll(events), (e) => e._tag === "Attempting")
      assert.deepStrictEqual(
        Chunk.toReadonlyArray(attempts).map((e) => e._tag === "Attempting" ? `${e.attempt} ${Address.format(e.address)}` : ""),
        ["2 memory:b", "3 memory:a"]
      )
      up = true
      yield* TestClock.adjust("1 second")
      const transport = yield* Fiber.join(fiber)
      assert.isTrue(Transport.isTransport(transport))
    }))
})
