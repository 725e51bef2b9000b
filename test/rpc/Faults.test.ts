import { RpcClientError } from "@effect/rpc/RpcClientError"
import * as RpcSerialization from "@effect/rpc/RpcSerialization"
import * as RpcServer from "@effect/rpc/RpcServer"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import { RpcProtocolError } from "../../src/rpc/RpcProtocolError.js"
import * as TransportProtocol from "../../src/rpc/TransportProtocol.js"
import * as MemoryNetwork from "../../src/testing/MemoryNetwork.js"
import * as Transport from "../../src/transport/Transport.js"
import { Client, ClientLive, ServerLive, ServerState, ServerStateLive } from "./e2e.js"

/** Lets every runnable fiber run until all of them wait. */
const settle = Effect.forEach(Array.from({ length: 200 }), () => Effect.yieldNow(), { discard: true })

/** A server listening as "rpc" on an in-memory network, in the current scope. */
const makeServer = (options?: { readonly listen?: boolean }) =>
  Effect.gen(function*() {
    const network = yield* MemoryNetwork.make
    const { handle, protocol } = yield* TransportProtocol.makeServerProtocol()
    const listen = network.serve("rpc", (connection) => Effect.scoped(handle(connection)))
    if (options?.listen !== false) yield* listen
    const context = yield* Layer.build(
      ServerLive.pipe(Layer.provide(Layer.succeed(RpcServer.Protocol, protocol)), Layer.provideMerge(ServerStateLive))
    )
    return { network, protocol, listen, state: Context.get(context, ServerState) }
  }).pipe(Effect.provide(RpcSerialization.layerNdjson))

/** A client of "rpc", in the current scope. */
const makeClient = (network: MemoryNetwork.MemoryNetwork, options?: TransportProtocol.ClientOptions) =>
  Layer.build(
    ClientLive.pipe(
      Layer.provide(TransportProtocol.layerProtocolClient({ ...options, connect: network.connect("rpc") })),
      Layer.provide(RpcSerialization.layerNdjson)
    )
  ).pipe(Effect.map(Context.get(Client)))

const setup = (options?: TransportProtocol.ClientOptions & { readonly listen?: boolean }) =>
  Effect.gen(function*() {
    const server = yield* makeServer(options)
    return { ...server, client: yield* makeClient(server.network, options) }
  })

/** The `RpcProtocolError` reason behind a failed call. */
const reasonOf = <A>(exit: Exit.Exit<A, unknown>): string | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error) || !(error.value instanceof RpcClientError)) return `not an RpcClientError: ${exit}`
  return error.value.cause instanceof RpcProtocolError ? error.value.cause.reason : `cause: ${error.value.cause}`
}

describe("TransportProtocol faults", () => {
  it.scoped("a dropped connection fails in-flight requests, send fails while down, and the client reconnects", () =>
    Effect.gen(function*() {
      const { client, network, protocol, state } = yield* setup()
      assert.strictEqual(yield* client.Echo({ text: "before" }), "before")
      const blocked = yield* Effect.fork(client.Block({ id: "x" }))
      assert.strictEqual(yield* Queue.take(state.events), "started x")
      assert.deepStrictEqual([...yield* protocol.clientIds], [0])

      const [link] = yield* network.links
      yield* link!.cut("cable pulled")
      const exit = yield* Fiber.await(blocked)
      assert.strictEqual(reasonOf(exit), "ConnectionLost")
      // The server saw the disconnect and interrupted the handler.
      assert.strictEqual(yield* Queue.take(state.events), "interrupted x")

      // Down until the first retry (500 ms): calls fail at once with the same error.
      assert.strictEqual(reasonOf(yield* Effect.exit(client.Echo({ text: "down" }))), "ConnectionLost")
      yield* TestClock.adjust("500 millis")
      yield* settle
      assert.strictEqual(yield* client.Echo({ text: "after" }), "after")
      assert.deepStrictEqual([...yield* protocol.clientIds], [1], "a new connection is a new client")
    }))

  it.scoped("the retry schedule starts over after each successful connection", () =>
    Effect.gen(function*() {
      const { client, network } = yield* setup()
      for (let round = 0; round < 3; round++) {
        assert.strictEqual(yield* client.Echo({ text: `round ${round}` }), `round ${round}`)
        const [link] = yield* network.links
        yield* link!.cut("again")
        yield* settle
        // Always the first delay of the schedule, never a longer one.
        yield* TestClock.adjust("500 millis")
        yield* settle
      }
      assert.strictEqual(yield* client.Echo({ text: "done" }), "done")
    }))

  it.scoped("requests made before the first connection wait for it; a failed first connection fails them", () =>
    Effect.gen(function*() {
      const { client, listen } = yield* setup({ listen: false, retrySchedule: Schedule.spaced("1 second") })
      assert.strictEqual(reasonOf(yield* Effect.exit(client.Echo({ text: "nobody" }))), "Connect")
      yield* listen
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(yield* client.Echo({ text: "somebody" }), "somebody")
    }))

  it.scoped("with retryTransientErrors, requests made before the first connection wait through failed attempts", () =>
    Effect.gen(function*() {
      const { client, listen } = yield* setup({ listen: false, retryTransientErrors: true })
      const early = yield* Effect.fork(client.Echo({ text: "early" }))
      yield* TestClock.adjust("2 seconds")
      yield* settle
      assert.isNull(early.unsafePoll(), "still waiting after failed attempts")
      yield* listen
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual(yield* Fiber.join(early), "early")
    }))

  it.scoped("a silent server is detected by the heartbeat within two intervals; a quiet healthy one is not", () =>
    Effect.gen(function*() {
      const { client, network, protocol, state } = yield* setup({ heartbeat: "10 seconds" })
      assert.strictEqual(yield* client.Echo({ text: "hi" }), "hi")
      // Idle but healthy: pings are answered, nothing is dropped.
      for (let i = 0; i < 6; i++) {
        yield* TestClock.adjust("10 seconds")
        yield* settle
      }
      assert.deepStrictEqual([...yield* protocol.clientIds], [0])

      const blocked = yield* Effect.fork(client.Block({ id: "y" }))
      assert.strictEqual(yield* Queue.take(state.events), "started y")
      const [link] = yield* network.links
      yield* link!.stall("toClient")
      yield* TestClock.adjust("10 seconds")
      yield* settle
      assert.isNull(blocked.unsafePoll(), "one unanswered interval is not yet a timeout")
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(reasonOf(yield* Fiber.await(blocked)), "HeartbeatTimeout")
    }))

  it.scoped("a client sending garbage gets a Defect and is disconnected", () =>
    Effect.gen(function*() {
      const { network, protocol } = yield* makeServer()
      const raw = yield* network.connect("rpc")
      yield* raw.write(new TextEncoder().encode("{not json\n"))
      let received = ""
      while (true) {
        const result = yield* raw.read
        if (Transport.isEof(result)) break
        received += new TextDecoder().decode(Transport.concat(result))
      }
      const message = JSON.parse(received.trim())
      assert.strictEqual(message._tag, "Defect")
      yield* settle
      assert.deepStrictEqual([...yield* protocol.clientIds], [])
    }))

  it.scoped("closing the client's scope mid-call closes the connection and interrupts the server's handler", () =>
    Effect.gen(function*() {
      const { network, protocol, state } = yield* makeServer()
      const scope = yield* Scope.make()
      const client = yield* Effect.provideService(makeClient(network), Scope.Scope, scope)
      const blocked = yield* Effect.fork(client.Block({ id: "z" }))
      assert.strictEqual(yield* Queue.take(state.events), "started z")
      yield* Scope.close(scope, Exit.void)
      assert.strictEqual(yield* Queue.take(state.events), "interrupted z")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(blocked)))
      yield* settle
      assert.strictEqual((yield* network.links).length, 0, "no connection left open")
      assert.deepStrictEqual([...yield* protocol.clientIds], [])
    }))
})
