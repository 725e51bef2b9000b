/**
 * The AMQP RPC protocol against a real RabbitMQ: the e2e suite over a request queue and direct reply-to, for
 * JSON and MessagePack.
 */
import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as AmqpProtocol from "../../src/rpc/AmqpProtocol.js"
import { ClientLive, e2eSuite, Group, ServerLive, ServerStateLive } from "../rpc/e2e.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("rpc-amqp: rabbitmq", Rabbit.brokerAvailable())

const run = `ew-rpc-${process.pid}-${Date.now().toString(36)}`
const connection = { url: Rabbit.url() }

const system = (queue: string) =>
  ClientLive.pipe(
    Layer.provide(AmqpProtocol.layerProtocolClient({ connection, queue })),
    Layer.provideMerge(ServerLive),
    Layer.provideMerge(AmqpProtocol.layerProtocolServer({ connection, queue }))
  )

describe.skipIf(!hasBroker)("rpc over AMQP with RabbitMQ", () => {
  e2eSuite("amqp × json", system(`${run}-json`).pipe(Layer.provideMerge(ServerStateLive), Layer.provide(RpcSerialization.layerJson)))
  e2eSuite(
    "amqp × msgpack",
    system(`${run}-msgpack`).pipe(Layer.provideMerge(ServerStateLive), Layer.provide(RpcSerialization.layerMsgPack))
  )

  it.scopedLive("without a server, requests come back and fail instead of waiting", () =>
    Effect.gen(function*() {
      const protocol = yield* AmqpProtocol.makeClient({ connection, queue: `${run}-nobody` })
      const client = yield* RpcClient.make(Group).pipe(Effect.provideService(RpcClient.Protocol, protocol))
      const error = yield* Effect.flip(client.Echo({ text: "anyone?" }))
      assert.strictEqual(error._tag, "RpcClientError")
      assert.include(error.message, "ConnectionLost")
    }).pipe(Effect.provide(RpcSerialization.layerJson), Effect.timeout("10 seconds")))

  it.scopedLive("a second server on the same request queue is refused", () =>
    Effect.gen(function*() {
      const queue = `${run}-exclusive`
      yield* AmqpProtocol.makeServer({ connection, queue })
      const second = yield* Effect.flip(AmqpProtocol.makeServer({ connection, queue }))
      assert.strictEqual(second._tag, "ChannelClosed")
    }).pipe(Effect.provide(RpcSerialization.layerJson)))
})
