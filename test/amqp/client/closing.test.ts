/**
 * Closing a connection while the broker's `connection.close` is being answered: the scope's close must end
 * within the close deadline whatever order the connection's fibers are stopped in.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ExecutionStrategy from "effect/ExecutionStrategy"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Connection from "../../../src/amqp/Connection.js"
import * as Methods from "../../../src/amqp/Methods.js"
import * as FakeBroker from "./fakeBroker.js"

const forced = Methods.make("ConnectionClose", { replyCode: 320, replyText: "CONNECTION_FORCED - test", classId: 0, methodId: 0 })

describe("closing after a broker close", () => {
  for (const strategy of [ExecutionStrategy.sequential, ExecutionStrategy.parallel]) {
    it.scopedLive(`close-ok stuck behind a full socket; the ${strategy._tag} scope closes within the deadline`, () =>
      Effect.gen(function*() {
        const broker = yield* FakeBroker.make
        const scope = yield* Scope.make(strategy)
        const connecting = yield* Effect.fork(
          Scope.extend(Connection.make({ transport: Effect.succeed(broker.client), closeTimeout: "300 millis" }), scope)
        )
        yield* broker.accept()
        const connection = yield* Fiber.join(connecting)
        const opening = yield* Effect.fork(Scope.extend(connection.channel(), scope))
        yield* broker.acceptChannel
        const channel = yield* Fiber.join(opening)
        // The broker stops reading: a message larger than the pipe holds the writer, and close-ok queues behind it.
        const publish = yield* Effect.fork(channel.publish("", "q", new Uint8Array(4 << 20)))
        yield* Effect.sleep("20 millis")
        yield* broker.send(0, forced)
        yield* Effect.sleep("20 millis")
        const started = Date.now()
        // Forked: a scope's close is uninterruptible, a timeout around it would wait for it anyway.
        const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
        const closed = yield* Effect.timeoutOption(Fiber.await(closing), "2 seconds")
        assert.strictEqual(closed._tag, "Some", "the scope closed")
        assert.isBelow(Date.now() - started, 1500)
        const ended = yield* Effect.flip(connection.closed)
        assert.strictEqual(ended._tag, "ConnectionClosed")
        if (ended._tag === "ConnectionClosed") assert.strictEqual(ended.replyCode, 320)
        assert.isTrue(Exit.isFailure(yield* Fiber.await(publish)))
      }))
  }
})
