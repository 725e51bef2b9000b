/**
 * One end-to-end suite for every RPC protocol × serialization, as `@effect/rpc`'s own rpc-e2e: a unary call,
 * a stream with backpressure, a typed failure, an interrupt that reaches the server and a defect.
 */
import * as Rpc from "@effect/rpc/Rpc"
import * as RpcClient from "@effect/rpc/RpcClient"
import type { RpcClientError } from "@effect/rpc/RpcClientError"
import * as RpcGroup from "@effect/rpc/RpcGroup"
import * as RpcServer from "@effect/rpc/RpcServer"
import { assert, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.Number }) {}

export class Group extends RpcGroup.make(
  Rpc.make("Echo", { payload: { text: Schema.String }, success: Schema.String }),
  Rpc.make("Find", { payload: { id: Schema.Number }, success: Schema.String, error: NotFound }),
  Rpc.make("Count", { payload: { to: Schema.Number }, success: Schema.Number, stream: true }),
  Rpc.make("Block", { payload: { id: Schema.String } }),
  Rpc.make("Boom")
) {}

/** What the handlers saw, for assertions on the server side. */
export class ServerState extends Context.Tag("test/rpc/ServerState")<ServerState, {
  readonly produced: Ref.Ref<number>
  readonly events: Queue.Queue<string>
}>() {}

export const ServerStateLive = Layer.effect(
  ServerState,
  Effect.all({ produced: Ref.make(0), events: Queue.unbounded<string>() })
)

export const HandlersLive = Group.toLayer(Effect.gen(function*() {
  const state = yield* ServerState
  return {
    Echo: ({ text }) => Effect.succeed(text),
    Find: ({ id }) => id === 1 ? Effect.succeed("one") : Effect.fail(new NotFound({ id })),
    // One element per chunk, so every element waits for the client's Ack of the previous one.
    Count: ({ to }) =>
      Stream.range(1, to, 1).pipe(Stream.tap(() => Ref.update(state.produced, (n) => n + 1))),
    Block: ({ id }) =>
      Effect.zipRight(Queue.offer(state.events, `started ${id}`), Effect.never).pipe(
        Effect.onInterrupt(() => Queue.offer(state.events, `interrupted ${id}`))
      ),
    Boom: () => Effect.die(new Error("boom"))
  }
}))

/** The server engine with the handlers, on whatever `RpcServer.Protocol` is provided. */
export const ServerLive = RpcServer.layer(Group).pipe(Layer.provide(HandlersLive))

export class Client extends Context.Tag("test/rpc/Client")<Client, RpcClient.FromGroup<typeof Group, RpcClientError>>() {}

/** The client engine, on whatever `RpcClient.Protocol` is provided. */
export const ClientLive = Layer.scoped(Client, RpcClient.make(Group))

export const e2eSuite = <E>(name: string, suiteLayer: Layer.Layer<Client | ServerState, E>) =>
  layer(suiteLayer, { excludeTestServices: true, timeout: "20 seconds" })(name, (it) => {
    it.effect("unary call", () =>
      Effect.gen(function*() {
        const client = yield* Client
        assert.strictEqual(yield* client.Echo({ text: "héllo\nwörld" }), "héllo\nwörld")
        const many = yield* Effect.forEach(Array.from({ length: 50 }, (_, i) => `m${i}`), (text) => client.Echo({ text }), {
          concurrency: "unbounded"
        })
        assert.deepStrictEqual(many, Array.from({ length: 50 }, (_, i) => `m${i}`))
      }))

    it.effect("typed failure", () =>
      Effect.gen(function*() {
        const client = yield* Client
        assert.strictEqual(yield* client.Find({ id: 1 }), "one")
        const error = yield* Effect.flip(client.Find({ id: 7 }))
        assert.instanceOf(error, NotFound)
        assert.strictEqual(error.id, 7)
      }))

    it.effect("stream: every element in order, and a slow consumer holds the server back", () =>
      Effect.gen(function*() {
        const client = yield* Client
        const { produced } = yield* ServerState
        const all = yield* Stream.runCollect(client.Count({ to: 200 }))
        assert.deepStrictEqual(Chunk.toReadonlyArray(all), Array.from({ length: 200 }, (_, i) => i + 1))

        yield* Ref.set(produced, 0)
        const taken = yield* Queue.bounded<number>(1)
        const consumer = yield* client.Count({ to: 10_000 }).pipe(
          Stream.runForEach((n) => Queue.offer(taken, n)),
          Effect.fork
        )
        assert.strictEqual(yield* Queue.take(taken), 1)
        yield* Effect.sleep("200 millis")
        const held = yield* Ref.get(produced)
        // Without acks the server would have produced all 10 000; with them it stops once the client's
        // stream buffer (16) and the one-element queue are full.
        assert.isAtMost(held, 40, `produced ${held} while the consumer was stalled`)
        assert.isAtLeast(held, 2)
        yield* Fiber.interrupt(consumer)
      }))

    it.effect("interrupting a call interrupts its handler on the server", () =>
      Effect.gen(function*() {
        const client = yield* Client
        const { events } = yield* ServerState
        const fiber = yield* Effect.fork(client.Block({ id: "a" }))
        assert.strictEqual(yield* Queue.take(events), "started a")
        yield* Fiber.interrupt(fiber)
        assert.strictEqual(yield* Queue.take(events), "interrupted a")
        // The connection is still good afterwards.
        assert.strictEqual(yield* client.Echo({ text: "after" }), "after")
      }))

    it.effect("a defect reaches the caller as a defect", () =>
      Effect.gen(function*() {
        const client = yield* Client
        const exit = yield* Effect.exit(client.Boom())
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause), String(exit))
        if (Exit.isFailure(exit)) {
          const defect = Cause.squash(exit.cause)
          assert.include(String(defect instanceof Error ? defect.message : defect), "boom")
        }
        assert.strictEqual(yield* client.Echo({ text: "still here" }), "still here")
      }))
  })

