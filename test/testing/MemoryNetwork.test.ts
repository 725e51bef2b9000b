import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as MemoryNetwork from "../../src/testing/MemoryNetwork.js"
import * as Address from "../../src/transport/Address.js"
import * as Framing from "../../src/transport/Framing.js"
import * as Transport from "../../src/transport/Transport.js"

const utf8 = (s: string) => new TextEncoder().encode(s)
const text = (result: Transport.ReadResult) =>
  Transport.isEof(result) ? "<eof>" : new TextDecoder().decode(Transport.concat(result))

/** Lets every runnable fiber run until all of them wait. */
const settle = Effect.forEach(Array.from({ length: 100 }), () => Effect.yieldNow(), { discard: true })

/** A network with one listener "broker" and one accepted connection. */
const connected = (options?: MemoryNetwork.MemoryNetworkOptions, from?: string) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork.makeWith(options)
    const listener = yield* network.listen("broker")
    const client = yield* network.connect("broker", { from })
    const server = yield* listener.accept
    return { network, listener, client, server }
  })

/** Reads until `expected` bytes of text arrived. */
const readText = (transport: Transport.Transport, length: number) =>
  Effect.gen(function*() {
    let received = ""
    while (received.length < length) {
      const result = yield* transport.read
      if (Transport.isEof(result)) break
      received += text(result)
    }
    return received
  })

describe("MemoryNetwork", () => {
  it.scoped("connects by name and carries bytes both ways; nobody listening is ECONNREFUSED", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const refused = yield* Effect.flip(network.connect("nobody"))
      assert.strictEqual(refused.reason, "Connect")
      assert.strictEqual(refused.code, "ECONNREFUSED")
      assert.strictEqual(refused.address, "memory:nobody")

      const { client, server } = yield* connected(undefined, "app")
      yield* client.write(utf8("ping"))
      assert.strictEqual(text(yield* server.read), "ping")
      yield* server.writeAll([utf8("po"), utf8("ng")])
      assert.strictEqual(text(yield* client.read), "pong")
      const info = yield* client.info
      assert.deepStrictEqual(info.remote, Address.memory("broker"))
      assert.deepStrictEqual((yield* server.info).remote, info.local)
      assert.strictEqual(client.link, server.link)
      assert.strictEqual(client.link.client, "app")
    }))

  it.scoped("half-close and graceful close travel through the network", () =>
    Effect.gen(function*() {
      const { client, network, server } = yield* connected()
      yield* client.write(utf8("last words"))
      const closing = yield* Effect.fork(client.close())
      const received = yield* Transport.toStream(server).pipe(Stream.decodeText(), Stream.mkString)
      assert.strictEqual(received, "last words")
      yield* server.write(utf8("goodbye"))
      yield* server.close()
      yield* Fiber.join(closing)
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(client.closed)))
      assert.isTrue(Exit.isSuccess(yield* Effect.exit(server.closed)))
      yield* settle
      assert.strictEqual((yield* network.links).length, 0, "a closed link leaves the network")
    }))

  it.scoped("latency moves only with the TestClock", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected()
      yield* client.link.latency("100 millis", "toServer")
      yield* client.write(utf8("slow"))
      const reading = yield* Effect.fork(server.read)
      yield* settle
      yield* TestClock.adjust("99 millis")
      yield* settle
      assert.isNull(reading.unsafePoll(), "not delivered before the latency")
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(text(yield* Fiber.join(reading)), "slow")
      // The other direction has no latency.
      yield* server.write(utf8("fast"))
      assert.strictEqual(text(yield* client.read), "fast")
      // Chunks in flight keep their own deadlines: two writes 30 ms apart arrive 30 ms apart.
      yield* client.write(utf8("a"))
      yield* settle
      yield* TestClock.adjust("30 millis")
      yield* client.write(utf8("b"))
      yield* settle
      yield* TestClock.adjust("70 millis")
      assert.strictEqual(text(yield* server.read), "a")
      const second = yield* Effect.fork(server.read)
      yield* settle
      assert.isNull(second.unsafePoll())
      yield* TestClock.adjust("30 millis")
      assert.strictEqual(text(yield* Fiber.join(second)), "b")
    }))

  it.scoped("stall blocks the writer once the buffers are full; resume delivers everything in order", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected({ highWaterMark: 1024 })
      yield* client.link.stall("toServer")
      const chunk = new Uint8Array(256)
      let written = 0
      const writer = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 100 }, (_, i) => chunk.slice().fill(i)), (c) =>
          Effect.tap(client.write(c), () => Effect.sync(() => written++)), { discard: true })
      )
      const reading = yield* Effect.fork(server.read)
      yield* settle
      const stalledAt = written
      yield* TestClock.adjust("1 hour")
      yield* settle
      assert.strictEqual(written, stalledAt, "the writer is blocked")
      assert.isAtMost(stalledAt, 8, "bounded by the client's buffer")
      assert.isNull(writer.unsafePoll())
      assert.isNull(reading.unsafePoll(), "nothing is delivered while stalled")
      assert.strictEqual((yield* client.link.stats).toServer.delivered, 0)

      yield* client.link.resume("toServer")
      let received = Transport.concat((yield* Fiber.join(reading)) as ReadonlyArray<Uint8Array>)
      const all: Array<Uint8Array> = [received]
      let total = received.length
      while (total < 100 * 256) {
        received = Transport.concat((yield* server.read) as ReadonlyArray<Uint8Array>)
        all.push(received)
        total += received.length
      }
      yield* Fiber.join(writer)
      const bytes = Transport.concat(all)
      for (let i = 0; i < 100; i++) assert.strictEqual(bytes[i * 256], i)
      assert.strictEqual((yield* client.link.stats).toServer.delivered, 100 * 256)
    }))

  it.scoped("a server that does not read pushes back on the client through the network", () =>
    Effect.gen(function*() {
      const { client } = yield* connected({ highWaterMark: 1024 })
      let written = 0
      const writer = yield* Effect.fork(
        Effect.forever(Effect.tap(client.write(new Uint8Array(128)), () => Effect.sync(() => written++)))
      )
      yield* settle
      const stalledAt = written
      yield* settle
      assert.strictEqual(written, stalledAt)
      // Two hops of 1 KiB, 1 KiB in the relay, one write over each mark: about 3 KiB, never more.
      assert.isAtLeast(stalledAt * 128, 3 * 1024)
      assert.isAtMost(stalledAt * 128, 3 * 1024 + 3 * 128)
      yield* Fiber.interrupt(writer)
    }))

  it.scoped("cut resets both ends with ECONNRESET", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected()
      const clientRead = yield* Effect.fork(client.read)
      yield* settle
      yield* client.link.cut()
      const clientError = yield* Effect.flip(Fiber.join(clientRead))
      assert.strictEqual(clientError.code, "ECONNRESET")
      assert.strictEqual((yield* Effect.flip(server.read)).code, "ECONNRESET")
      assert.strictEqual((yield* Effect.flip(client.write(utf8("x")))).code, "ECONNRESET")
      assert.strictEqual((yield* Effect.flip(server.write(utf8("x")))).code, "ECONNRESET")
      assert.strictEqual((yield* Effect.flip(client.closed)).code, "ECONNRESET")
      assert.strictEqual((yield* Effect.flip(server.closed)).code, "ECONNRESET")
    }))

  it.scoped("an abort on one side is a reset on the other", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected()
      yield* server.abort()
      assert.strictEqual((yield* Effect.flip(client.read)).code, "ECONNRESET")
    }))

  it.scoped("corrupt rewrites bytes deterministically, by offset in the stream, without touching the sender's", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected()
      yield* client.link.corrupt((byte, offset) => (offset % 3 === 2 ? byte ^ 0x20 : byte), "toServer")
      const sent = utf8("abcdef")
      yield* client.write(sent.subarray(0, 3))
      yield* client.write(sent.subarray(3))
      assert.strictEqual(yield* readText(server, 6), "abCdeF")
      assert.strictEqual(new TextDecoder().decode(sent), "abcdef")
      yield* server.write(utf8("clean"))
      assert.strictEqual(text(yield* client.read), "clean", "only the chosen direction")
      yield* client.link.heal()
      yield* client.write(utf8("ok"))
      assert.strictEqual(text(yield* server.read), "ok")
    }))

  it.scoped("a corrupted length prefix reaches a framed protocol as a typed FramingError", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected()
      const codec = Framing.lengthPrefixed({ prefixSize: 2, maxFrameSize: 1024 })
      const seen: Array<string> = []
      const dispatcher = yield* Effect.fork(
        Framing.dispatch(server, codec, (frame) => Effect.sync(() => seen.push(new TextDecoder().decode(frame))))
      )
      yield* Framing.write(client, codec, utf8("intact"))
      yield* settle
      // The next frame starts at stream offset 8: flip the top bit of its length.
      yield* client.link.corrupt((byte, offset) => (offset === 8 ? byte ^ 0x80 : byte), "toServer")
      yield* Framing.write(client, codec, utf8("damaged"))
      const error = yield* Effect.flip(Fiber.join(dispatcher))
      assert.strictEqual(error._tag === "FramingError" && error.reason, "FrameTooLarge")
      assert.strictEqual(error._tag === "FramingError" && error.size, 0x8007)
      assert.deepStrictEqual(seen, ["intact"])
    }))

  it.scoped("drop discards bytes silently and counts them", () =>
    Effect.gen(function*() {
      const { client, server } = yield* connected()
      yield* client.link.drop("toServer")
      yield* client.write(utf8("lost"))
      yield* settle
      yield* client.link.heal("toServer")
      yield* client.write(utf8("kept"))
      assert.strictEqual(text(yield* server.read), "kept")
      const stats = yield* client.link.stats
      assert.deepStrictEqual(stats.toServer, { delivered: 4, dropped: 4 })
      assert.deepStrictEqual(stats.toClient, { delivered: 0, dropped: 0 })
    }))

  it.scoped("a partition stalls existing links and times out new connects until healed", () =>
    Effect.gen(function*() {
      const { client, network, server } = yield* connected({ connectTimeout: "10 seconds" }, "app")
      yield* network.partition("app", "broker")
      yield* client.write(utf8("across"))
      const reading = yield* Effect.fork(server.read)
      const connecting = yield* Effect.fork(network.connect("broker", { from: "app" }))
      yield* settle
      yield* TestClock.adjust("9 seconds")
      yield* settle
      assert.isNull(reading.unsafePoll())
      assert.isNull(connecting.unsafePoll(), "the connect is still trying")
      yield* TestClock.adjust("1 second")
      const timedOut = yield* Effect.flip(Fiber.join(connecting))
      assert.strictEqual(timedOut.reason, "ConnectTimeout")
      assert.strictEqual(timedOut.code, "ETIMEDOUT")
      // Other hosts still reach the broker.
      const other = yield* network.connect("broker", { from: "other" })
      yield* other.write(utf8("hi"))
      yield* network.heal("app", "broker")
      assert.strictEqual(text(yield* Fiber.join(reading)), "across")
      // Isolating a host cuts it off from everyone.
      yield* network.partition("broker")
      const again = yield* Effect.fork(network.connect("broker", { from: "third" }))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* Effect.flip(Fiber.join(again))).code, "ETIMEDOUT")
      // A caller's shorter timeout ends the attempt early.
      const impatient = yield* Effect.fork(Effect.timeout(network.connect("broker", { from: "third" }), "1 second"))
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Effect.flip(Fiber.join(impatient)))._tag, "TimeoutException")
      yield* network.heal()
      yield* network.connect("broker", { from: "third" })
    }))

  it.scoped("listeners: names are exclusive, the backlog is bounded, closing resets who was not accepted", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      const scope = yield* Scope.make()
      const listener = yield* Scope.extend(network.listen("svc", { backlog: 2 }), scope)
      const taken = yield* Effect.flip(network.listen("svc"))
      assert.strictEqual(taken.code, "EADDRINUSE")
      const first = yield* network.connect("svc")
      yield* network.connect("svc")
      const full = yield* Effect.flip(network.connect("svc"))
      assert.strictEqual(full.code, "ECONNREFUSED")
      const accepted = yield* listener.accept
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual((yield* Effect.flip(listener.accept)).reason, "Closed")
      assert.strictEqual((yield* Effect.flip(network.connect("svc"))).code, "ECONNREFUSED")
      // The accepted connection lives on.
      yield* first.write(utf8("still here"))
      assert.strictEqual(text(yield* accepted.read), "still here")
    }))

  it.scoped("serve runs a handler per connection", () =>
    Effect.gen(function*() {
      const network = yield* MemoryNetwork.make
      yield* network.serve("echo", (connection) =>
        Effect.gen(function*() {
          while (true) {
            const result = yield* connection.read
            if (Transport.isEof(result)) return
            yield* connection.writeAll(result)
          }
        }))
      const replies = yield* Effect.forEach(
        ["one", "two", "three"],
        (word) =>
          Effect.gen(function*() {
            const client = yield* network.connect("echo")
            yield* client.write(utf8(word))
            const reply = yield* readText(client, word.length)
            yield* client.close()
            return reply
          }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(replies, ["one", "two", "three"])
    }))

  it.scoped("closing the network resets every connection and stops every relay", () =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const { client, network, server } = yield* Scope.extend(connected(), scope)
      yield* client.link.latency("1 second")
      yield* client.write(utf8("in flight"))
      const reading = yield* Effect.fork(server.read)
      yield* settle
      yield* Scope.close(scope, Exit.void)
      assert.isTrue(Exit.isFailure(yield* Fiber.await(reading)))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(client.read)))
      assert.strictEqual((yield* network.links).length, 0)
      // No relay is left waiting on the clock.
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* TestClock.sleeps()).length, 0)
    }))
})
