/**
 * `@effect/rpc` over effect-wire's TCP transport: a typed inventory service with a unary call, a typed failure
 * and a streamed listing, served and called in one program.
 *
 *   npm run example examples/rpc-tcp.ts                 # server on a free port, then a client calls it
 *   npm run example examples/rpc-tcp.ts -- server 9000  # the server alone
 *   npm run example examples/rpc-tcp.ts -- client 9000  # a client of that server
 *
 * The client reconnects on its own: stop and restart the server while a client runs and its next call succeeds.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { TransportProtocol } from "../src/rpc/index.js"
import { Server } from "../src/transport/index.js"

// ---- the service, shared by both sides ------------------------------------------------------------------------

class Item extends Schema.Class<Item>("Item")({ sku: Schema.String, name: Schema.String, stock: Schema.Int }) {}

class UnknownSku extends Schema.TaggedError<UnknownSku>()("UnknownSku", { sku: Schema.String }) {}

class Inventory extends RpcGroup.make(
  Rpc.make("Get", { payload: { sku: Schema.String }, success: Item, error: UnknownSku }),
  Rpc.make("List", { success: Item, stream: true })
) {}

// ---- the server ----------------------------------------------------------------------------------------------

const items = [
  new Item({ sku: "A-1", name: "anchor", stock: 3 }),
  new Item({ sku: "B-2", name: "buoy", stock: 12 }),
  new Item({ sku: "C-3", name: "cleat", stock: 40 })
]

const InventoryLive = Inventory.toLayer({
  Get: ({ sku }) => {
    const item = items.find((item) => item.sku === sku)
    return item === undefined ? Effect.fail(new UnknownSku({ sku })) : Effect.succeed(item)
  },
  List: () => Stream.fromIterable(items)
})

const ServerLive = (port: number) =>
  RpcServer.layer(Inventory).pipe(
    Layer.provide(InventoryLive),
    Layer.provideMerge(TransportProtocol.layerProtocolServer({ listen: Server.tcp({ host: "127.0.0.1", port }) })),
    Layer.provide(RpcSerialization.layerMsgPack)
  )

// ---- the client ----------------------------------------------------------------------------------------------

const callInventory = (port: number) =>
  Effect.gen(function*() {
    const client = yield* RpcClient.make(Inventory)
    const anchor = yield* client.Get({ sku: "A-1" })
    yield* Console.log(`Get A-1 -> ${anchor.name}, ${anchor.stock} in stock`)
    const missing = yield* client.Get({ sku: "Z-9" }).pipe(
      Effect.map((item) => item.name),
      Effect.catchTag("UnknownSku", (error) => Effect.succeed(`${error._tag} ${error.sku}`))
    )
    yield* Console.log(`Get Z-9 -> ${missing}`)
    yield* client.List().pipe(Stream.runForEach((item) => Console.log(`List -> ${item.sku} ${item.name}`)))
  }).pipe(
    Effect.scoped,
    Effect.provide(
      // A client started before its server waits for it.
      TransportProtocol.layerProtocolTcp({ host: "127.0.0.1", port, retryTransientErrors: true }).pipe(
        Layer.provide(RpcSerialization.layerMsgPack)
      )
    )
  )

// ---- main ----------------------------------------------------------------------------------------------------

const [mode, portArg] = process.argv.slice(2)
const port = Number(portArg ?? 0)

const program = mode === "server"
  ? Effect.gen(function*() {
    const server = yield* TransportProtocol.RpcTransportServer
    yield* Console.log(`serving on ${server.address._tag === "TcpAddress" ? server.address.port : "?"}`)
    return yield* Effect.never
  }).pipe(Effect.provide(ServerLive(port)))
  : mode === "client"
  ? callInventory(port)
  : Effect.gen(function*() {
    const server = yield* TransportProtocol.RpcTransportServer
    yield* callInventory(server.address._tag === "TcpAddress" ? server.address.port : 0)
  }).pipe(Effect.provide(ServerLive(0)))

NodeRuntime.runMain(program)
