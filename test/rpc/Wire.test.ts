import * as RpcClient from "@effect/rpc/RpcClient"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { assert, describe, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as TransportProtocol from "../../src/rpc/TransportProtocol.js"
import * as MemoryNetwork from "../../src/testing/MemoryNetwork.js"
import * as Framing from "../../src/transport/Framing.js"
import * as Server from "../../src/transport/Server.js"
import * as Transport from "../../src/transport/Transport.js"
import { Client, ClientLive, Group, ServerLive, ServerStateLive } from "./e2e.js"

const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

/** A server on "rpc" with the e2e handlers; returns the network for raw clients. */
const serve = (framing?: TransportProtocol.FramingOption) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork.make
    const { handle, protocol } = yield* TransportProtocol.makeServerProtocol({ framing })
    yield* network.serve("rpc", (connection) => Effect.scoped(handle(connection)))
    yield* Layer.build(ServerLive.pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol)), Layer.provide(ServerStateLive)))
    return network
  })

/** Reads until the peer closes; all bytes. */
const readAll = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    while (true) {
      const result = yield* transport.read
      if (Transport.isEof(result)) return Transport.concat(chunks)
      chunks.push(...result)
    }
  })

/** Reads until `n` bytes arrived. */
const readBytes = (transport: Transport.Transport, n: number) =>
  Effect.gen(function*() {
    const chunks: Array<Uint8Array> = []
    let size = 0
    while (size < n) {
      const result = yield* transport.read
      if (Transport.isEof(result)) break
      for (const chunk of result) {
        chunks.push(chunk)
        size += chunk.length
      }
    }
    return Transport.concat(chunks)
  })

/** Reads one length-prefixed frame (4-byte big-endian length) and returns its body as text. */
const readFrame = (transport: Transport.Transport) =>
  Effect.gen(function*() {
    let buffer = yield* readBytes(transport, 4)
    const length = new DataView(buffer.buffer, buffer.byteOffset).getUint32(0)
    if (buffer.length < 4 + length) buffer = Transport.concat([buffer, yield* readBytes(transport, 4 + length - buffer.length)])
    return fromUtf8.decode(buffer.subarray(4, 4 + length))
  })

const lengthPrefixed = (text: string) => {
  const body = utf8.encode(text)
  const out = new Uint8Array(4 + body.length)
  new DataView(out.buffer).setUint32(0, body.length)
  out.set(body, 4)
  return out
}

const request = { _tag: "Request", id: "1", tag: "Echo", payload: { text: "hi" }, headers: [] }
const reply = { _tag: "Exit", requestId: "1", exit: { _tag: "Success", value: "hi" } }

describe("TransportProtocol on the wire", () => {
  it.scoped("json: every message is a 4-byte big-endian length, then the JSON", () =>
    Effect.gen(function*() {
      const network = yield* serve()
      const raw = yield* network.connect("rpc")
      yield* raw.write(lengthPrefixed(JSON.stringify(request)))
      assert.deepStrictEqual(JSON.parse(yield* readFrame(raw)), reply)
    }).pipe(Effect.provide(RpcSerialization.layerJson)))

  it.scoped("ndjson: one JSON document per line, split anywhere by the transport", () =>
    Effect.gen(function*() {
      const network = yield* serve()
      const raw = yield* network.connect("rpc")
      const line = utf8.encode(JSON.stringify(request) + "\n" + JSON.stringify({ _tag: "Ping" }) + "\n")
      // Byte by byte: the parser must reassemble.
      for (let i = 0; i < line.length; i += 7) yield* raw.write(line.subarray(i, i + 7))
      let text = ""
      while (text.split("\n").length < 3) {
        const result = yield* raw.read
        if (Transport.isEof(result)) break
        text += fromUtf8.decode(Transport.concat(result))
      }
      const messages = text.trim().split("\n").map((l) => JSON.parse(l))
      assert.deepStrictEqual(messages.map((m) => m._tag).sort(), ["Exit", "Pong"])
      assert.deepStrictEqual(messages.find((m) => m._tag === "Exit"), reply)
    }).pipe(Effect.provide(RpcSerialization.layerNdjson)))

  it.scoped("a frame over the maximum size is answered with a Defect and the connection is closed", () =>
    Effect.gen(function*() {
      const network = yield* serve(Framing.lengthPrefixed({ maxFrameSize: 256 }))
      const raw = yield* network.connect("rpc")
      const header = new Uint8Array([0, 0, 4, 0]) // 1024 bytes announced
      yield* raw.write(header)
      const all = yield* readAll(raw)
      const length = new DataView(all.buffer, all.byteOffset).getUint32(0)
      const defect = JSON.parse(fromUtf8.decode(all.subarray(4, 4 + length)))
      assert.strictEqual(defect._tag, "Defect")
      assert.include(String(defect.defect), "FrameTooLarge")
    }).pipe(Effect.provide(RpcSerialization.layerJson)))

  it.scoped("the client sends length-prefixed JSON requests", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const listener = yield* network.listen("raw")
      const protocol = yield* TransportProtocol.makeClient({ connect: network.connect("raw"), heartbeat: false })
      const client = yield* RpcClient.make(Group).pipe(Effect.provideService(RpcClient.Protocol, protocol))
      const call = yield* Effect.fork(client.Echo({ text: "wire" }))
      const server = yield* listener.accept
      const sent = JSON.parse(yield* readFrame(server))
      assert.strictEqual(sent._tag, "Request")
      assert.strictEqual(sent.tag, "Echo")
      assert.deepStrictEqual(sent.payload, { text: "wire" })
      yield* server.write(lengthPrefixed(JSON.stringify({ _tag: "Exit", requestId: sent.id, exit: { _tag: "Success", value: "raw" } })))
      assert.strictEqual(yield* Fiber.join(call), "raw")
    }).pipe(Effect.provide(RpcSerialization.layerJson)))
})

describe("TransportProtocol layers from Config", () => {
  it.scopedLive("a TCP client and server configured from a ConfigProvider", () =>
    Effect.gen(function*() {
      const server = yield* Layer.build(
        ServerLive.pipe(
          Layer.provideMerge(TransportProtocol.layerProtocolServerConfig(
            Config.map(Config.integer("PORT"), (port) => ({ listen: Server.tcp({ host: "127.0.0.1", port }) }))
          )),
          Layer.provide(ServerStateLive)
        )
      ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PORT", "0"]]))))
      const address = Context.get(server, TransportProtocol.RpcTransportServer).address
      const port = address._tag === "TcpAddress" ? address.port : 0
      const clientContext = yield* Layer.build(
        ClientLive.pipe(Layer.provide(TransportProtocol.layerProtocolTcpConfig(
          Config.all({ host: Config.string("HOST"), port: Config.integer("PORT") })
        )))
      ).pipe(Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["HOST", "127.0.0.1"], ["PORT", String(port)]]))))
      assert.strictEqual(yield* Context.get(clientContext, Client).Echo({ text: "configured" }), "configured")
    }).pipe(Effect.provide(RpcSerialization.layerMsgPack), Effect.timeout("10 seconds")))
})
