import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as ZmtpProtocol from "../../src/rpc/ZmtpProtocol.js"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import { Client, ClientLive, e2eSuite, ServerLive, ServerState, ServerStateLive } from "./e2e.js"

const serializations = {
  json: RpcSerialization.layerJson,
  msgpack: RpcSerialization.layerMsgPack,
  ndjson: RpcSerialization.layerNdjson
} as const

let names = 0

/** Server on a ROUTER bound to a memory endpoint, client on DEALER sockets connected to it. */
const memory = (endpoint: string) =>
  ClientLive.pipe(
    Layer.provide(ZmtpProtocol.layerProtocolClient({ endpoint })),
    Layer.provideMerge(ServerLive),
    Layer.provideMerge(ZmtpProtocol.layerProtocolServer({ endpoints: [endpoint] }))
  )

/** The same over effect-wire's TCP transport: a transport server feeds the ROUTER, the DEALER attaches a TCP connection. */
const tcp = Layer.unwrapScoped(Effect.gen(function*() {
  const { server } = yield* ZmtpProtocol.RpcZmtpServer
  const port = server?.address._tag === "TcpAddress" ? server.address.port : 0
  return ClientLive.pipe(Layer.provide(ZmtpProtocol.layerProtocolClient({
    endpoint: `tcp://127.0.0.1:${port}`,
    connect: Tcp.connect({ host: "127.0.0.1", port })
  })))
})).pipe(
  Layer.provideMerge(ServerLive),
  Layer.provideMerge(ZmtpProtocol.layerProtocolServer({ listen: Server.tcp({ port: 0 }) }))
)

describe("ZmtpProtocol", () => {
  for (const [name, serialization] of Object.entries(serializations)) {
    e2eSuite(
      `zmtp memory × ${name}`,
      memory(`memory://rpc-${name}-${names++}`).pipe(Layer.provideMerge(ServerStateLive), Layer.provide(serialization))
    )
    e2eSuite(
      `zmtp tcp × ${name}`,
      tcp.pipe(Layer.provideMerge(ServerStateLive), Layer.provide(serialization))
    )
  }

  it.scoped("a client that goes away is forgotten: its requests are interrupted, its id leaves clientIds", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        ServerLive.pipe(
          Layer.provideMerge(ZmtpProtocol.layerProtocolServer({ endpoints: ["memory://rpc-gone"], clientTimeout: "30 seconds" })),
          Layer.provideMerge(ServerStateLive)
        )
      )
      const state = Context.get(context, ServerState)
      const scope = yield* Scope.make()
      const client = yield* Layer.build(
        ClientLive.pipe(Layer.provide(ZmtpProtocol.layerProtocolClient({ endpoint: "memory://rpc-gone", heartbeat: "10 seconds" })))
      ).pipe(Effect.map(Context.get(Client)), Scope.extend(scope))
      const blocked = yield* Effect.fork(client.Block({ id: "q" }))
      assert.strictEqual(yield* Queue.take(state.events), "started q")
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.isFailure(yield* Fiber.await(blocked)))
      // ZMTP does not say which routing id disconnected: silence for `clientTimeout` does.
      yield* TestClock.adjust("45 seconds")
      assert.strictEqual(yield* Queue.take(state.events), "interrupted q")
    }).pipe(Effect.provide(RpcSerialization.layerJson)))
})
