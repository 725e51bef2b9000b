/**
 * `@effect/rpc` over effect-wire's TCP transport (`TransportProtocol`) vs `@effect/rpc`'s own socket protocol on
 * `@effect/platform-node`'s `NodeSocket` / `NodeSocketServer`, with the same group, handlers and serialization
 * (ndjson and msgpack), both ends in this process over loopback:
 *
 * - unary: sequential calls, one in flight (calls/s);
 * - unary ×64: 64 concurrent callers (calls/s);
 * - stream: a 5 000-element stream with acked backpressure, one element per chunk (elements/s).
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import * as SocketServer from "@effect/platform/SocketServer"
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import * as TransportProtocol from "../../src/rpc/TransportProtocol.js"
import * as Server from "../../src/transport/Server.js"
import type { Row, Suite } from "../harness.js"

class Group extends RpcGroup.make(
  Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String }),
  Rpc.make("Count", { payload: { to: Schema.Number }, success: Schema.Number, stream: true })
) {}

const Handlers = Group.toLayer({
  Echo: ({ text }) => Effect.succeed(text),
  Count: ({ to }) => Stream.range(1, to, 1)
})

const unaryCalls = 2_000
const concurrentCalls = 5_000
const concurrency = 64
const streamElements = 5_000
const runs = 2

const seconds = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e9

interface Measured {
  readonly unary: number
  readonly concurrent: number
  readonly stream: number
}

const measure = Effect.gen(function*() {
  const client = yield* RpcClient.make(Group)
  const text = "x".repeat(64)
  for (let i = 0; i < 500; i++) yield* client.Echo({ text })
  let best: Measured = { unary: 0, concurrent: 0, stream: 0 }
  for (let run = 0; run < runs; run++) {
    let start = process.hrtime.bigint()
    for (let i = 0; i < unaryCalls; i++) yield* client.Echo({ text })
    const unary = unaryCalls / seconds(start)
    start = process.hrtime.bigint()
    yield* Effect.forEach(Array.from({ length: concurrentCalls }), () => client.Echo({ text }), {
      concurrency,
      discard: true
    })
    const concurrent = concurrentCalls / seconds(start)
    start = process.hrtime.bigint()
    const count = yield* Stream.runCount(client.Count({ to: streamElements }))
    if (count !== streamElements) return yield* Effect.die(`stream gave ${count}`)
    const stream = streamElements / seconds(start)
    best = {
      unary: Math.max(best.unary, unary),
      concurrent: Math.max(best.concurrent, concurrent),
      stream: Math.max(best.stream, stream)
    }
  }
  return best
}).pipe(Effect.scoped)

const ours = (serialization: Layer.Layer<RpcSerialization.RpcSerialization>) =>
  Effect.gen(function*() {
    const server = yield* TransportProtocol.RpcTransportServer
    const port = server.address._tag === "TcpAddress" ? server.address.port : 0
    return yield* measure.pipe(
      Effect.provide(TransportProtocol.layerProtocolTcp({ host: "127.0.0.1", port }).pipe(Layer.provide(serialization)))
    )
  }).pipe(
    Effect.provide(
      RpcServer.layer(Group).pipe(
        Layer.provide(Handlers),
        Layer.provideMerge(TransportProtocol.layerProtocolServer({ listen: Server.tcp({ port: 0 }) })),
        Layer.provide(serialization)
      )
    )
  )

const platform = (serialization: Layer.Layer<RpcSerialization.RpcSerialization>) =>
  Effect.gen(function*() {
    const server = yield* NodeSocketServer.make({ host: "127.0.0.1", port: 0 })
    const port = (server.address as SocketServer.TcpAddress).port
    yield* Layer.buildWithScope(
      RpcServer.layer(Group).pipe(
        Layer.provide(Handlers),
        Layer.provide(
          RpcServer.layerProtocolSocketServer.pipe(
            Layer.provide(Layer.succeed(SocketServer.SocketServer, server)),
            Layer.provide(serialization)
          )
        )
      ),
      yield* Effect.scope
    )
    return yield* measure.pipe(
      Effect.provide(
        RpcClient.layerProtocolSocket().pipe(
          Layer.provide(NodeSocket.layerNet({ host: "127.0.0.1", port, noDelay: true })),
          Layer.provide(serialization)
        )
      )
    )
  }).pipe(Effect.scoped)

const suite: Suite = {
  name: "rpc",
  run: async () => {
    const rows: Array<Row> = []
    for (
      const [name, serialization] of [["ndjson", RpcSerialization.layerNdjson], ["msgpack", RpcSerialization.layerMsgPack]] as const
    ) {
      const started = Date.now()
      const a = await Effect.runPromise(ours(serialization))
      process.stderr.write(`ours ${name}: ${JSON.stringify(a)} in ${Date.now() - started} ms\n`)
      const b = await Effect.runPromise(platform(serialization))
      process.stderr.write(`platform ${name}: ${JSON.stringify(b)} in ${Date.now() - started} ms\n`)
      const peer = "@effect/rpc socket (NodeSocket)"
      rows.push(
        { metric: `unary, 1 in flight, ${name}`, unit: "calls/s", better: "higher", ours: a.unary, peers: { [peer]: b.unary } },
        {
          metric: `unary, ${concurrency} in flight, ${name}`,
          unit: "calls/s",
          better: "higher",
          ours: a.concurrent,
          peers: { [peer]: b.concurrent }
        },
        { metric: `acked stream, ${name}`, unit: "elements/s", better: "higher", ours: a.stream, peers: { [peer]: b.stream } }
      )
    }
    return rows
  }
}

export default suite
