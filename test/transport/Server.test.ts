/**
 * Server behaviour over real TCP sockets: addresses and events, connection limits, idle timeouts, failing
 * handlers and graceful shutdown.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Os from "node:os"
import * as Path from "node:path"
import type * as Address from "../../src/transport/Address.js"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import * as Transport from "../../src/transport/Transport.js"
import type { TransportError } from "../../src/transport/TransportError.js"
import * as Unix from "../../src/transport/Unix.js"
import { bytes, echo, readText } from "./support.js"

const readAll = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    while (true) {
      const result = yield* transport.read
      if (Transport.isEof(result)) return new TextDecoder().decode(Transport.concat(parts))
      parts.push(...result)
    }
  })

const connectTo = (address: Address.Address) =>
  address._tag === "TcpAddress" ? Tcp.connect({ host: address.host, port: address.port }) : Effect.die("tcp expected")

/** Takes events until one matches. */
const next = <T extends Server.ServerEvent["_tag"]>(events: Queue.Dequeue<Server.ServerEvent>, tag: T) =>
  Effect.gen(function*() {
    while (true) {
      const event = yield* Queue.take(events)
      if (event._tag === tag) return event as Extract<Server.ServerEvent, { readonly _tag: T }>
    }
  }).pipe(Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => `no ${tag} event` }))

describe("Server", () => {
  it.scopedLive("listens on a free port and reports the real address and lifecycle events", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: (transport) => transport.write(bytes("hi"))
      })
      assert.strictEqual(server.address._tag, "TcpAddress")
      assert.isAbove(server.address._tag === "TcpAddress" ? server.address.port : 0, 0)
      const events = yield* server.subscribe
      const client = yield* connectTo(server.address)
      assert.strictEqual(yield* readAll(client), "hi")
      // The server closes gracefully: it waits for our FIN.
      yield* client.close()
      const opened = yield* next(events, "ConnectionOpened")
      const closed = yield* next(events, "ConnectionClosed")
      assert.strictEqual(closed.id, opened.id)
      assert.strictEqual(closed.reason, "Completed")
      const local = (yield* client.info).local
      assert.deepStrictEqual(opened.remote, local)
    }))

  it.scopedLive("a second server on the same address fails with reason Listen (EADDRINUSE)", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({ listen: Server.tcp({ port: 0 }), handler: () => Effect.void })
      const port = server.address._tag === "TcpAddress" ? server.address.port : 0
      const error = yield* Effect.flip(Server.make({ listen: Server.tcp({ port }), handler: () => Effect.void }))
      assert.strictEqual(error.reason, "Listen")
      assert.strictEqual(error.code, "EADDRINUSE")
    }))

  it.scopedLive("past maxConnections new connections are refused at once, not queued", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: (transport) => Effect.zipRight(transport.write(bytes("in")), Deferred.await(release)),
        maxConnections: 2,
        shutdownTimeout: Duration.millis(200)
      })
      const events = yield* server.subscribe
      const a = yield* connectTo(server.address)
      const b = yield* connectTo(server.address)
      assert.strictEqual(yield* readText(a, 2), "in")
      assert.strictEqual(yield* readText(b, 2), "in")
      assert.strictEqual(yield* server.connectionCount, 2)
      // The third is accepted by the kernel, then closed by the server without a word.
      const c = yield* connectTo(server.address)
      const refused = yield* next(events, "Refused")
      assert.strictEqual(refused.reason, "MaxConnections")
      const outcome = yield* Effect.either(c.read)
      assert.isTrue(outcome._tag === "Left" || Transport.isEof(outcome.right))
      assert.strictEqual(yield* server.connectionCount, 2)
      // Once one finishes, there is room again.
      yield* Deferred.succeed(release, undefined)
      yield* Effect.all([a.close(), b.close()], { concurrency: 2 })
      yield* next(events, "ConnectionClosed")
      yield* next(events, "ConnectionClosed")
      const d = yield* connectTo(server.address)
      assert.strictEqual(yield* readText(d, 2), "in")
    }))

  it.scopedLive("the idle timeout closes silent connections and spares active ones", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: (transport) =>
          Effect.forever(
            Effect.flatMap(transport.read, (r): Effect.Effect<void, TransportError> => Transport.isEof(r) ? Effect.never : transport.writeAll(r))
          ),
        idleTimeout: Duration.millis(500)
      })
      const events = yield* server.subscribe
      const silent = yield* connectTo(server.address)
      const chatty = yield* connectTo(server.address)
      const chatter = yield* Effect.fork(Effect.forever(
        Effect.zipRight(chatty.write(bytes("ping")), Effect.zipRight(chatty.read, Effect.sleep("50 millis")))
      ))
      const started = Date.now()
      const closed = yield* next(events, "ConnectionClosed")
      assert.strictEqual(closed.reason, "IdleTimeout")
      assert.isAtLeast(Date.now() - started, 400)
      // The silent one is gone; its reads end.
      const outcome = yield* Effect.either(silent.read)
      assert.isTrue(outcome._tag === "Left" || Transport.isEof(outcome.right))
      // The chatty one lives on well past the timeout.
      yield* Effect.sleep("700 millis")
      assert.strictEqual(yield* server.connectionCount, 1)
      yield* Fiber.interrupt(chatter)
    }))

  it.scopedLive("a failing handler is reported and aborts only its connection", () =>
    Effect.gen(function*() {
      let calls = 0
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        // Fails once the client is surely connected (after its first byte).
        handler: (transport): Effect.Effect<void, TransportError | "boom"> =>
          ++calls === 1 ? Effect.zipRight(transport.read, Effect.fail("boom" as const)) : transport.write(bytes("fine"))
      })
      const events = yield* server.subscribe
      const first = yield* connectTo(server.address)
      yield* first.write(bytes("x"))
      const closed = yield* next(events, "ConnectionClosed")
      assert.strictEqual(closed.reason, "Failed")
      assert.deepStrictEqual(Cause.failureOption(closed.cause as Cause.Cause<string>)._tag, "Some")
      assert.strictEqual(Cause.squash(closed.cause!), "boom")
      // Aborted: the client sees a reset.
      assert.strictEqual((yield* Effect.flip(first.read)).code, "ECONNRESET")
      const second = yield* connectTo(server.address)
      assert.strictEqual(yield* readText(second, 4), "fine")
    }))

  it.scopedLive("shutdown stops accepting, lets connections in flight finish, then completes", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: (transport) => Effect.zipRight(Effect.sleep("300 millis"), transport.write(bytes("finished")))
      })
      const client = yield* connectTo(server.address)
      yield* Effect.sleep("50 millis")
      const shutdown = yield* Effect.fork(server.shutdown("5 seconds"))
      yield* Effect.sleep("50 millis")
      // No longer listening.
      const refused = yield* Effect.flip(Effect.scoped(connectTo(server.address)))
      assert.strictEqual(refused.code, "ECONNREFUSED")
      assert.strictEqual(yield* readAll(client), "finished")
      yield* client.close()
      yield* Fiber.join(shutdown)
      assert.strictEqual(yield* server.connectionCount, 0)
    }))

  it.scopedLive("past the shutdown deadline, handlers are interrupted and connections aborted", () =>
    Effect.gen(function*() {
      const server = yield* Server.make({
        listen: Server.tcp({ port: 0 }),
        handler: () => Effect.never
      })
      const events = yield* server.subscribe
      const client = yield* connectTo(server.address)
      yield* next(events, "ConnectionOpened")
      const started = Date.now()
      yield* server.shutdown("200 millis")
      assert.isAtLeast(Date.now() - started, 150)
      const closed = yield* next(events, "ConnectionClosed")
      assert.strictEqual(closed.reason, "Interrupted")
      assert.strictEqual((yield* Effect.flip(client.read)).code, "ECONNRESET")
    }))

  it.live("Server.layer and Unix.layer: a program written against CurrentTransport", () =>
    Effect.gen(function*() {
      const path = Path.join(Os.tmpdir(), `effect-wire-layer-${process.pid}.sock`)
      const program = Effect.gen(function*() {
        const transport = yield* Transport.CurrentTransport
        yield* transport.write(bytes("layered"))
        yield* transport.shutdownWrite
        return yield* readAll(transport)
      })
      const server = Server.layer({ listen: Server.unix(path), handler: echo })
      const reply = yield* program.pipe(Effect.provide(Layer.provideMerge(Unix.layer({ path }), server)))
      assert.strictEqual(reply, "layered")
    }))

  it.live("starting and stopping servers, or interrupting their start, leaves no listening socket", () =>
    Effect.gen(function*() {
      const listeners = Effect.async<number>((resume) =>
        void setImmediate(() =>
          setImmediate(() =>
            resume(Effect.sync(() => process.getActiveResourcesInfo().filter((r) => r === "TCPServerWrap").length))
          )
        )
      )
      const before = yield* listeners
      const make = Server.make({ listen: Server.tcp({ port: 0 }), handler: () => Effect.void })
      for (let i = 0; i < 5; i++) {
        const starting = yield* Effect.fork(Effect.scoped(Effect.zipRight(make, Effect.never)))
        if (i > 0) yield* Effect.sleep(Duration.millis(i))
        yield* Fiber.interrupt(starting)
      }
      yield* Effect.scoped(make)
      yield* Effect.sleep("20 millis")
      assert.strictEqual(yield* listeners, before)
    }))

  it.scopedLive("serves Unix sockets, with the path as address", () =>
    Effect.gen(function*() {
      const path = Path.join(Os.tmpdir(), `effect-wire-server-${process.pid}.sock`)
      const server = yield* Server.make({ listen: Server.unix(path), handler: (t) => t.write(bytes("unix")) })
      assert.deepStrictEqual(server.address, { _tag: "UnixAddress", path })
      const client = yield* Unix.connect({ path })
      assert.strictEqual(yield* readAll(client), "unix")
    }))
})
