/**
 * The ZMTP RPC protocol against libzmq (the `zeromq` package, libzmq 4.3): a libzmq DEALER calls our ROUTER RPC
 * server, and our DEALER RPC client calls a libzmq ROUTER that answers by hand. Messages are `@effect/rpc`'s
 * JSON encoding, one ZMTP message each.
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import * as ZmtpProtocol from "../../src/rpc/ZmtpProtocol.js"
import * as Server from "../../src/transport/Server.js"
import * as Tcp from "../../src/transport/Tcp.js"
import { Group, ServerLive, ServerStateLive } from "../rpc/e2e.js"
import { requirePeer } from "../support/peers.js"

const zeromq = await import("zeromq").then((module) => module, () => undefined)
const hasLibzmq = requirePeer("rpc-zmtp: libzmq", zeromq === undefined ? "the zeromq package does not load" : undefined)

const json = (value: unknown) => Buffer.from(JSON.stringify(value))
const parse = (frame: Buffer | undefined) => JSON.parse(frame!.toString("utf8"))

describe.skipIf(!hasLibzmq)("rpc over ZMTP with libzmq", () => {
  it.scopedLive("a libzmq DEALER calls our ROUTER server: unary, typed failure, acked stream", () =>
    Effect.gen(function*() {
      const context = yield* Layer.build(
        ServerLive.pipe(
          Layer.provideMerge(ZmtpProtocol.layerProtocolServer({ listen: Server.tcp({ port: 0 }) })),
          Layer.provideMerge(ServerStateLive),
          Layer.provide(RpcSerialization.layerJson)
        )
      )
      const { server } = Context.get(context, ZmtpProtocol.RpcZmtpServer)
      const port = server?.address._tag === "TcpAddress" ? server.address.port : 0
      const dealer = yield* Effect.acquireRelease(
        Effect.sync(() => new zeromq!.Dealer({ linger: 0 })),
        (socket) => Effect.sync(() => socket.close())
      )
      dealer.connect(`tcp://127.0.0.1:${port}`)
      const call = (message: unknown) => Effect.promise(() => dealer.send(json(message)))
      const next = Effect.promise(() => dealer.receive()).pipe(Effect.map(([frame]) => parse(frame)))

      yield* call({ _tag: "Request", id: "1", tag: "Echo", payload: { text: "from libzmq" }, headers: [] })
      assert.deepStrictEqual(yield* next, {
        _tag: "Exit",
        requestId: "1",
        exit: { _tag: "Success", value: "from libzmq" }
      })

      yield* call({ _tag: "Request", id: "2", tag: "Find", payload: { id: 9 }, headers: [] })
      const failed = yield* next
      assert.strictEqual(failed.exit._tag, "Failure")
      assert.deepStrictEqual(failed.exit.cause, { _tag: "Fail", error: { _tag: "NotFound", id: 9 } })

      // A stream sends one chunk per Ack.
      yield* call({ _tag: "Request", id: "3", tag: "Count", payload: { to: 3 }, headers: [] })
      const values: Array<number> = []
      while (true) {
        const message = yield* next
        if (message._tag === "Exit") {
          assert.strictEqual(message.exit._tag, "Success")
          break
        }
        assert.strictEqual(message._tag, "Chunk")
        values.push(...message.values)
        yield* call({ _tag: "Ack", requestId: "3" })
      }
      assert.deepStrictEqual(values, [1, 2, 3])

      yield* call({ _tag: "Ping" })
      assert.deepStrictEqual(yield* next, { _tag: "Pong" })
    }).pipe(Effect.timeout("20 seconds")))

  it.scopedLive("our DEALER client calls a libzmq ROUTER answering by hand", () =>
    Effect.gen(function*() {
      const router = yield* Effect.acquireRelease(
        Effect.sync(() => new zeromq!.Router({ linger: 0 })),
        (socket) => Effect.sync(() => socket.close())
      )
      yield* Effect.promise(() => router.bind("tcp://127.0.0.1:*"))
      const port = Number(router.lastEndpoint!.split(":").pop())
      const seen: Array<string> = []
      yield* Effect.promise(async () => {
        for await (const [routingId, frame] of router) {
          const message = parse(frame)
          seen.push(message._tag)
          if (message._tag === "Request" && message.tag === "Echo") {
            await router.send([routingId!, json({ _tag: "Exit", requestId: message.id, exit: { _tag: "Success", value: `libzmq: ${message.payload.text}` } })])
          } else if (message._tag === "Request" && message.tag === "Count") {
            await router.send([routingId!, json({ _tag: "Chunk", requestId: message.id, values: [1, 2] })])
          } else if (message._tag === "Ack") {
            await router.send([routingId!, json({ _tag: "Exit", requestId: message.requestId, exit: { _tag: "Success", value: null } })])
          }
        }
      }).pipe(Effect.forkScoped)

      const protocol = yield* ZmtpProtocol.makeClient({
        endpoint: `tcp://127.0.0.1:${port}`,
        connect: Tcp.connect({ host: "127.0.0.1", port })
      }).pipe(Effect.provide(RpcSerialization.layerJson))
      const client = yield* RpcClient.make(Group).pipe(Effect.provideService(RpcClient.Protocol, protocol))
      assert.strictEqual(yield* client.Echo({ text: "hi" }), "libzmq: hi")
      assert.deepStrictEqual(Chunk.toReadonlyArray(yield* Stream.runCollect(client.Count({ to: 2 }))), [1, 2])
      assert.deepStrictEqual(seen, ["Request", "Request", "Ack"])
    }).pipe(Effect.timeout("20 seconds")))
})
