import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Session from "../../src/mux/Session.js"
import type * as MuxStream from "../../src/mux/Stream.js"
import * as MuxProtocol from "../../src/rpc/MuxProtocol.js"
import * as TransportProtocol from "../../src/rpc/TransportProtocol.js"
import * as MemoryNetwork from "../../src/testing/MemoryNetwork.js"
import * as Server from "../../src/transport/Server.js"
import { ClientLive, e2eSuite, Group, ServerLive, ServerState, ServerStateLive } from "./e2e.js"

const serializations = {
  ndjson: RpcSerialization.layerNdjson,
  json: RpcSerialization.layerJson,
  msgpack: RpcSerialization.layerMsgPack
} as const

/** A muxado server on an in-memory network, and the network; in the current scope. */
const memoryServer = Effect.gen(function*() {
  const network = yield* MemoryNetwork.make
  const { handleSession, protocol } = yield* MuxProtocol.makeServerProtocol()
  yield* network.serve("mux", (connection) =>
    Effect.scoped(Effect.flatMap(Session.make(connection, { role: "server" }), handleSession)))
  return { network, protocol }
})

const clientSession = (network: MemoryNetwork.MemoryNetwork) =>
  Layer.scoped(Session.MuxSession, Effect.flatMap(network.connect("mux"), (t) => Session.make(t, { role: "client" })))

const memory = Layer.unwrapScoped(Effect.gen(function*() {
  const { network, protocol } = yield* memoryServer
  return Layer.merge(
    ServerLive.pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol))),
    ClientLive.pipe(Layer.provide(MuxProtocol.layerProtocolClient()), Layer.provide(clientSession(network)))
  )
}))

const tcp = Layer.unwrapScoped(Effect.gen(function*() {
  const server = yield* TransportProtocol.RpcTransportServer
  const port = server.address._tag === "TcpAddress" ? server.address.port : 0
  return ClientLive.pipe(Layer.provide(MuxProtocol.layerProtocolTcp({ host: "127.0.0.1", port })))
})).pipe(
  Layer.provideMerge(ServerLive),
  Layer.provideMerge(MuxProtocol.layerProtocolServer({ listen: Server.tcp({ port: 0 }) }))
)

describe("MuxProtocol", () => {
  for (const [name, serialization] of Object.entries(serializations)) {
    e2eSuite(`mux memory × ${name}`, memory.pipe(Layer.provideMerge(ServerStateLive), Layer.provide(serialization)))
    e2eSuite(`mux tcp × ${name}`, tcp.pipe(Layer.provideMerge(ServerStateLive), Layer.provide(serialization)))
  }

  it.scoped("clients sharing one session are separate clients, and a stalled one does not hold up the other", () =>
    Effect.gen(function*() {
      const { network, protocol } = yield* memoryServer
      const state = Context.get(
        yield* Layer.build(
          ServerLive.pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol)), Layer.provideMerge(ServerStateLive))
        ),
        ServerState
      )
      const session = Context.get(yield* Layer.build(clientSession(network)), Session.MuxSession)
      const makeClient = Effect.flatMap(MuxProtocol.makeClient(session), (p) =>
        Effect.provideService(RpcClient.make(Group), RpcClient.Protocol, p))
      const a = yield* makeClient
      const b = yield* makeClient
      assert.strictEqual(yield* a.Echo({ text: "a" }), "a")
      assert.strictEqual(yield* b.Echo({ text: "b" }), "b")
      assert.strictEqual((yield* protocol.clientIds).size, 2)
      assert.strictEqual((yield* network.links).length, 1, "one connection carries both clients")

      // A's stream consumer stops; B goes on calling.
      const taken = yield* Queue.bounded<number>(1)
      const stalled = yield* a.Count({ to: 100_000 }).pipe(Stream.runForEach((n) => Queue.offer(taken, n)), Effect.fork)
      assert.strictEqual(yield* Queue.take(taken), 1)
      for (let i = 0; i < 20; i++) assert.strictEqual(yield* b.Echo({ text: `b${i}` }), `b${i}`)
      const blocked = yield* Effect.fork(b.Block({ id: "b" }))
      assert.strictEqual(yield* Queue.take(state.events), "started b")
      yield* Fiber.interrupt(blocked)
      assert.strictEqual(yield* Queue.take(state.events), "interrupted b")
      yield* Fiber.interrupt(stalled)
    }).pipe(Effect.provide(RpcSerialization.layerNdjson)))

  it.scoped("a reset stream fails its client's in-flight calls; the client reopens a stream on the same session", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const { handleStream, protocol } = yield* MuxProtocol.makeServerProtocol()
      const accepted = yield* Queue.unbounded<readonly [MuxStream.MuxStream, Fiber.RuntimeFiber<void>]>()
      yield* network.serve("mux", (connection) =>
        Effect.gen(function*() {
          const session = yield* Session.make(connection, { role: "server" })
          while (true) {
            const stream = yield* session.accept
            yield* Queue.offer(accepted, [stream, yield* Effect.forkScoped(Effect.scoped(handleStream(stream)))])
          }
        }).pipe(Effect.scoped, Effect.ignore))
      const state = Context.get(
        yield* Layer.build(
          ServerLive.pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol)), Layer.provideMerge(ServerStateLive))
        ),
        ServerState
      )
      const session = Context.get(yield* Layer.build(clientSession(network)), Session.MuxSession)
      const client = yield* MuxProtocol.makeClient(session).pipe(
        Effect.flatMap((p) => Effect.provideService(RpcClient.make(Group), RpcClient.Protocol, p))
      )
      const blocked = yield* Effect.fork(client.Block({ id: "r" }))
      assert.strictEqual(yield* Queue.take(state.events), "started r")
      // The server drops the client: its handler fiber stops and its stream is reset.
      const [first, serving] = yield* Queue.take(accepted)
      yield* Fiber.interrupt(serving)
      yield* first.reset()
      assert.strictEqual(yield* Queue.take(state.events), "interrupted r")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(blocked)))
      yield* TestClock.adjust("500 millis")
      assert.strictEqual(yield* client.Echo({ text: "again" }), "again")
      const [second] = yield* Queue.take(accepted)
      assert.notStrictEqual(second.id, first.id)
      assert.strictEqual((yield* network.links).length, 1, "still the one connection")
    }).pipe(Effect.provide(RpcSerialization.layerNdjson)))
})
