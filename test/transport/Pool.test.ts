/**
 * The connection pool against a real TCP server that answers one line per request: reuse, the size limit,
 * broken connections discarded, idle connections closed.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Server from "../../src/transport/Server.js"
import * as Pool from "../../src/transport/Pool.js"
import * as Tcp from "../../src/transport/Tcp.js"
import * as Transport from "../../src/transport/Transport.js"
import { TransportError } from "../../src/transport/TransportError.js"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Reads one `\n`-terminated line (requests and replies here are short and never pipelined). */
const readLine = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    let line = ""
    while (!line.endsWith("\n")) {
      const result = yield* transport.read
      if (Transport.isEof(result)) return yield* new TransportError({ reason: "Closed", detail: "eof mid-reply" })
      line += decoder.decode(Transport.concat(result))
    }
    return line.slice(0, -1)
  })

const request = (transport: Transport.Transport, text: string) =>
  Effect.zipRight(transport.write(encoder.encode(text + "\n")), readLine(transport))

/**
 * Replies `<connection id>:<request>` to each line. `quit` closes the connection after the reply, as servers do
 * when they are done with a client.
 */
const lineServer = Effect.gen(function*() {
  let connections = 0
  let open = 0
  const server = yield* Server.make({
    listen: Server.tcp({ port: 0 }),
    handler: (transport) =>
      Effect.gen(function*() {
        const id = ++connections
        open++
        while (true) {
          const line = yield* readLine(transport).pipe(Effect.catchAll(() => Effect.succeed(undefined)))
          if (line === undefined) return
          yield* transport.write(encoder.encode(`${id}:${line}\n`))
          if (line === "quit") return
        }
      }).pipe(Effect.ensuring(Effect.sync(() => open--))),
    shutdownTimeout: Duration.millis(500)
  })
  const address = server.address
  if (address._tag !== "TcpAddress") return yield* Effect.die("tcp expected")
  return {
    connect: Tcp.connect({ host: address.host, port: address.port }),
    connections: () => connections,
    open: () => open
  }
})

describe("Pool", () => {
  it.scopedLive("reuses one connection for sequential requests", () =>
    Effect.gen(function*() {
      const server = yield* lineServer
      const pool = yield* Pool.make({ connect: server.connect, maxSize: 4 })
      const replies: Array<string> = []
      for (let i = 0; i < 5; i++) replies.push(yield* pool.use((t) => request(t, `r${i}`)))
      assert.deepStrictEqual(replies, ["1:r0", "1:r1", "1:r2", "1:r3", "1:r4"])
      assert.strictEqual(server.connections(), 1)
      assert.strictEqual(yield* pool.size, 1)
    }))

  it.scopedLive("never opens more than maxSize connections under concurrency", () =>
    Effect.gen(function*() {
      const server = yield* lineServer
      const pool = yield* Pool.make({ connect: server.connect, maxSize: 2 })
      const replies = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) => pool.use((t) => Effect.zipLeft(request(t, `c${i}`), Effect.sleep("5 millis"))),
        { concurrency: 8 }
      )
      assert.strictEqual(replies.length, 20)
      assert.strictEqual(server.connections(), 2)
      assert.deepStrictEqual(new Set(replies.map((r) => r.split(":")[0])), new Set(["1", "2"]))
    }))

  it.scopedLive("a connection the server closed is discarded and replaced, without failing the next user", () =>
    Effect.gen(function*() {
      const server = yield* lineServer
      const pool = yield* Pool.make({ connect: server.connect, maxSize: 1 })
      assert.strictEqual(yield* pool.use((t) => request(t, "quit")), "1:quit")
      // Give the FIN time to arrive: the idle connection is now half-closed by the server.
      yield* Effect.sleep("100 millis")
      assert.strictEqual(yield* pool.use((t) => request(t, "again")), "2:again")
      assert.strictEqual(server.connections(), 2)
      assert.strictEqual(yield* pool.size, 1)
    }))

  it.scopedLive("a request that fails with a TransportError discards its connection", () =>
    Effect.gen(function*() {
      const server = yield* lineServer
      const pool = yield* Pool.make({ connect: server.connect, maxSize: 1 })
      const error = yield* Effect.flip(pool.use((t) =>
        Effect.zipRight(t.abort(), request(t, "after abort"))
      ))
      assert.strictEqual(error.reason, "Closed")
      assert.strictEqual(yield* pool.use((t) => request(t, "fresh")), "2:fresh")
    }))

  it.scopedLive("idle connections are closed after idleTimeToLive", () =>
    Effect.gen(function*() {
      const server = yield* lineServer
      const pool = yield* Pool.make({ connect: server.connect, maxSize: 3, idleTimeToLive: Duration.millis(200) })
      yield* Effect.forEach([1, 2, 3], (i) => pool.use((t) => Effect.zipLeft(request(t, `x${i}`), Effect.sleep("20 millis"))), {
        concurrency: 3
      })
      assert.strictEqual(server.connections(), 3)
      yield* Effect.sleep("1 second")
      assert.strictEqual(yield* pool.size, 0)
      // The server saw them go.
      yield* Effect.sleep("100 millis")
      assert.strictEqual(server.open(), 0)
      assert.strictEqual(yield* pool.use((t) => request(t, "later")), "4:later")
    }))

  it.scopedLive("closing the pool's scope closes every connection", () =>
    Effect.gen(function*() {
      const server = yield* lineServer
      yield* Effect.scoped(Effect.gen(function*() {
        const pool = yield* Pool.make({ connect: server.connect, maxSize: 2 })
        yield* Effect.forEach([1, 2], (i) => pool.use((t) => Effect.zipLeft(request(t, `y${i}`), Effect.sleep("20 millis"))), {
          concurrency: 2
        })
        assert.strictEqual(server.open(), 2)
      }))
      yield* Effect.sleep("100 millis")
      assert.strictEqual(server.open(), 0)
    }))

  it.scopedLive("makeKeyed: one pool per key, each reused, all dropped when idle", () =>
    Effect.gen(function*() {
      const a = yield* lineServer
      const b = yield* lineServer
      const servers: Record<string, typeof a> = { a, b }
      const pools = yield* Pool.makeKeyed({
        connect: (key: string) => servers[key]!.connect,
        maxSize: 2,
        // Long enough that a loaded machine does not drop a key's pool between two uses.
        idleTimeToLive: Duration.seconds(1)
      })
      const replies: Array<string> = []
      for (const key of ["a", "b", "a", "b", "a"]) replies.push(yield* pools.use(key, (t) => request(t, key)))
      assert.deepStrictEqual(replies, ["1:a", "1:b", "1:a", "1:b", "1:a"])
      assert.strictEqual(a.connections(), 1)
      assert.strictEqual(b.connections(), 1)
      yield* Effect.sleep("3 seconds")
      assert.strictEqual(a.open() + b.open(), 0)
      // A discarded connection is replaced on the next use of its key.
      yield* Effect.scoped(Effect.flatMap(pools.get("a"), pools.invalidate))
      assert.strictEqual(yield* pools.use("a", (t) => request(t, "again")), "3:again")
    }))
})
