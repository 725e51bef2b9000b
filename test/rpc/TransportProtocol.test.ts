import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { describe } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TransportProtocol from "../../src/rpc/TransportProtocol.js"
import * as MemoryNetwork from "../../src/testing/MemoryNetwork.js"
import * as Framing from "../../src/transport/Framing.js"
import * as Server from "../../src/transport/Server.js"
import { ClientLive, e2eSuite, ServerLive, ServerStateLive } from "./e2e.js"

const serializations = {
  ndjson: RpcSerialization.layerNdjson,
  json: RpcSerialization.layerJson,
  msgpack: RpcSerialization.layerMsgPack,
  jsonRpc: RpcSerialization.layerJsonRpc(),
  ndJsonRpc: RpcSerialization.layerNdJsonRpc()
} as const

/** Server and client over an in-memory network. */
const memory = (framing?: TransportProtocol.FramingOption) =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const network = yield* MemoryNetwork.make
    const { handle, protocol } = yield* TransportProtocol.makeServerProtocol({ framing })
    yield* network.serve("rpc", (connection) => Effect.scoped(handle(connection)))
    return Layer.merge(
      ServerLive.pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol))),
      ClientLive.pipe(Layer.provide(TransportProtocol.layerProtocolClient({ connect: network.connect("rpc"), framing })))
    )
  }))

/** Server and client over TCP on 127.0.0.1. */
const tcp = Layer.unwrapScoped(Effect.gen(function*() {
  const server = yield* TransportProtocol.RpcTransportServer
  const address = server.address
  const port = address._tag === "TcpAddress" ? address.port : 0
  return ClientLive.pipe(Layer.provide(TransportProtocol.layerProtocolTcp({ host: "127.0.0.1", port })))
})).pipe(
  Layer.provideMerge(ServerLive),
  Layer.provideMerge(TransportProtocol.layerProtocolServer({ listen: Server.tcp({ port: 0 }) }))
)

describe("TransportProtocol", () => {
  for (const [name, serialization] of Object.entries(serializations)) {
    e2eSuite(`memory × ${name}`, memory().pipe(Layer.provideMerge(ServerStateLive), Layer.provide(serialization)))
    e2eSuite(`tcp × ${name}`, tcp.pipe(Layer.provideMerge(ServerStateLive), Layer.provide(serialization)))
  }
  e2eSuite(
    "memory × msgpack in 2-byte little-endian frames",
    memory(Framing.lengthPrefixed({ prefixSize: 2, endian: "little" })).pipe(
      Layer.provideMerge(ServerStateLive),
      Layer.provide(RpcSerialization.layerMsgPack)
    )
  )
})
