import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Datagram from "../../src/transport/Datagram.js"

const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)
const localhost = { host: "127.0.0.1" } as const

const localAddress = (socket: Datagram.DatagramSocket) => Effect.map(socket.info, (info) => info.local)

/** An echo server on 127.0.0.1; its fiber lives in the test's scope. */
const echoServer = Effect.gen(function*() {
  const server = yield* Datagram.make(localhost)
  yield* Effect.forkScoped(
    Effect.forever(Effect.flatMap(server.receive, ({ address, data }) => server.send(data, address)))
  )
  return yield* localAddress(server)
})

/** Waits (live) until `predicate` holds, or fails after `timeoutMs`. */
const eventually = (predicate: Effect.Effect<boolean>, timeoutMs = 5000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* predicate)) {
      if (Date.now() > deadline) return yield* Effect.dieMessage("condition not reached in time")
      yield* Effect.sleep("5 millis")
    }
  })

/** Sends datagrams numbered 0..count-1 in small paced bursts so the kernel's own buffer never overflows. */
const flood = (sender: Datagram.DatagramSocket, to: Datagram.UdpAddress, count: number) =>
  Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) => Effect.zipRight(sender.send(utf8(`datagram ${i}`), to), i % 50 === 49 ? Effect.sleep("2 millis") : Effect.void),
    { discard: true }
  )

describe("Datagram", () => {
  it.scopedLive("echo through a connected client", () =>
    Effect.gen(function*() {
      const server = yield* echoServer
      const client = yield* Datagram.make({ ...localhost, connect: server })
      const info = yield* client.info
      assert.deepStrictEqual(info.remote, server)
      assert.strictEqual(info.local.host, "127.0.0.1")
      assert.isAbove(info.local.port, 0)
      for (let i = 0; i < 20; i++) {
        yield* client.send(utf8(`ping ${i}`))
        const reply = yield* client.receive
        assert.strictEqual(text(reply.data), `ping ${i}`)
        assert.deepStrictEqual(reply.address, server)
      }
    }))

  it.scopedLive("unconnected sockets send to and learn the sender's address", () =>
    Effect.gen(function*() {
      const a = yield* Datagram.make(localhost)
      const b = yield* Datagram.make(localhost)
      const aAddress = yield* localAddress(a)
      yield* a.send(utf8("hello"), yield* localAddress(b))
      const message = yield* b.receive
      assert.strictEqual(text(message.data), "hello")
      assert.deepStrictEqual(message.address, aAddress)
      assert.isUndefined((yield* a.info).remote)
    }))

  it.scopedLive("messages is a Stream of datagrams", () =>
    Effect.gen(function*() {
      const receiver = yield* Datagram.make(localhost)
      const sender = yield* Datagram.make(localhost)
      const to = yield* localAddress(receiver)
      const collected = yield* Effect.fork(receiver.messages.pipe(Stream.take(100), Stream.runCollect))
      yield* flood(sender, to, 100)
      const messages = Chunk.toReadonlyArray(yield* Fiber.join(collected))
      assert.deepStrictEqual(messages.map((m) => text(m.data)), Array.from({ length: 100 }, (_, i) => `datagram ${i}`))
    }))

  for (const overflow of ["dropping", "sliding"] as const) {
    it.scopedLive(`a receiver that does not read keeps ${overflow === "dropping" ? "the first" : "the last"} datagrams and counts the rest`, () =>
      Effect.gen(function*() {
        const receiver = yield* Datagram.make({ ...localhost, receiveBufferSize: 16, overflow })
        const sender = yield* Datagram.make(localhost)
        const total = 1000
        yield* flood(sender, yield* localAddress(receiver), total)
        yield* eventually(Effect.map(Effect.zip(receiver.dropped, receiver.buffered), ([d, b]) => d + b === total))
        assert.strictEqual(yield* receiver.buffered, 16, "memory is bounded by the buffer size")
        assert.strictEqual(yield* receiver.dropped, total - 16)
        const kept = yield* receiver.receiveMany(100)
        const first = overflow === "dropping" ? 0 : total - 16
        assert.deepStrictEqual(kept.map((m) => text(m.data)), Array.from({ length: 16 }, (_, i) => `datagram ${first + i}`))
      }))
  }

  it.scopedLive("a receive error is typed and does not close the socket", () =>
    Effect.gen(function*() {
      // A port nobody listens on: bind, learn it, close.
      const gone = yield* Effect.scoped(Effect.flatMap(Datagram.make(localhost), localAddress))
      const client = yield* Datagram.make({ ...localhost, connect: gone })
      yield* client.send(utf8("anyone?"))
      const error = yield* Effect.flip(client.receive)
      assert.strictEqual(error._tag, "TransportError")
      assert.strictEqual(error.reason, "Read")
      assert.strictEqual(error.code, "ECONNREFUSED")
      // Still usable: connect elsewhere and talk.
      const server = yield* echoServer
      yield* client.connect(server)
      yield* client.send(utf8("again"))
      assert.strictEqual(text((yield* client.receive).data), "again")
    }))

  it.scopedLive("send errors are typed", () =>
    Effect.gen(function*() {
      const server = yield* echoServer
      const client = yield* Datagram.make({ ...localhost, connect: server })
      const connected = yield* Effect.flip(client.send(utf8("x"), server))
      assert.strictEqual(connected.reason, "Write")
      assert.strictEqual(connected.code, "ERR_SOCKET_DGRAM_IS_CONNECTED")
      const tooLarge = yield* Effect.flip(client.send(new Uint8Array(70_000)))
      assert.strictEqual(tooLarge.reason, "Write")
      assert.strictEqual(tooLarge.code, "EMSGSIZE")
    }))

  it.scopedLive("layerConfig reads its options from Config", () =>
    Effect.gen(function*() {
      const server = yield* echoServer
      const reply = yield* Effect.gen(function*() {
        const client = yield* Datagram.CurrentDatagramSocket
        assert.strictEqual((yield* client.info).local.host, "127.0.0.1")
        yield* client.send(utf8("configured"), server)
        return yield* client.receive
      }).pipe(
        Effect.provide(
          Datagram.layerConfig({ host: Config.string("UDP_HOST"), receiveBufferSize: Config.integer("UDP_BUFFER") })
        ),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["UDP_HOST", "127.0.0.1"], ["UDP_BUFFER", "8"]])))
      )
      assert.strictEqual(text(reply.data), "configured")
    }))

  it.scopedLive("binding a port in use fails with Listen / EADDRINUSE", () =>
    Effect.gen(function*() {
      const first = yield* Datagram.make(localhost)
      const { port } = yield* localAddress(first)
      const error = yield* Effect.flip(Datagram.make({ ...localhost, port }))
      assert.strictEqual(error.reason, "Listen")
      assert.strictEqual(error.code, "EADDRINUSE")
    }))

  it.scopedLive("an interrupted receive leaves nothing behind: the next datagram goes to the next receive", () =>
    Effect.gen(function*() {
      const receiver = yield* Datagram.make(localhost)
      const sender = yield* Datagram.make(localhost)
      const waiting = yield* Effect.fork(receiver.receive)
      yield* Effect.sleep("10 millis")
      yield* Fiber.interrupt(waiting)
      yield* sender.send(utf8("for the next one"), yield* localAddress(receiver))
      yield* eventually(Effect.map(receiver.buffered, (n) => n === 1))
      assert.strictEqual(text((yield* receiver.receive).data), "for the next one")
    }))

  it.live("closing the scope closes the socket: receivers fail with Closed, the port is free again", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const socket = yield* Scope.extend(Datagram.make(localhost), scope)
      const { port } = yield* localAddress(socket)
      const waiting = yield* Effect.fork(socket.receive)
      const streaming = yield* Effect.fork(Stream.runCollect(socket.messages))
      yield* Effect.sleep("10 millis")
      yield* Scope.close(scope, Exit.void)
      const exit = yield* Fiber.await(waiting)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual((yield* Effect.flip(exit)).reason, "Closed")
      assert.strictEqual(Chunk.size(yield* Fiber.join(streaming)), 0, "the stream ends when the socket closes")
      assert.strictEqual((yield* Effect.flip(socket.send(utf8("x"), Datagram.udp("127.0.0.1", 9)))).reason, "Closed")
      // Without reuseAddr a second bind would fail if the socket were still open.
      yield* Effect.scoped(Datagram.make({ ...localhost, port }))
    }))

  it.scopedLive("multicast on the loopback interface", () =>
    Effect.gen(function*() {
      const group = "239.255.42.99"
      const receiver = yield* Datagram.make({
        port: 0,
        reuseAddr: true,
        multicast: { groups: [{ group, interface: "127.0.0.1" }] }
      })
      const { port } = yield* localAddress(receiver)
      const sender = yield* Datagram.make({ ...localhost, multicast: { interface: "127.0.0.1", loopback: true, ttl: 1 } })
      yield* sender.send(utf8("to the group"), Datagram.udp(group, port))
      const message = yield* receiver.receive.pipe(Effect.timeout("2 seconds"))
      assert.strictEqual(text(message.data), "to the group")
      yield* receiver.dropMembership(group, "127.0.0.1")
    }))

  it.scopedLive("udp6 on ::1, provided as a layer", () =>
    Effect.gen(function*() {
      const server = yield* Datagram.make({ type: "udp6", host: "::1" })
      const serverAddress = yield* localAddress(server)
      assert.strictEqual(Datagram.format(serverAddress), `[::1]:${serverAddress.port}`)
      const reply = yield* Effect.gen(function*() {
        const client = yield* Datagram.CurrentDatagramSocket
        yield* client.send(utf8("v6"))
        const received = yield* server.receive
        yield* server.send(received.data, received.address)
        return yield* client.receive
      }).pipe(Effect.provide(Datagram.layer({ type: "udp6", host: "::1", connect: serverAddress })))
      assert.strictEqual(text(reply.data), "v6")
      assert.deepStrictEqual(reply.address, serverAddress)
    }))
})
