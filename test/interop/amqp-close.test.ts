/**
 * Closing after the broker closed first: `connection.close 320 CONNECTION_FORCED` from `rabbitmqctl`, and 530 /
 * 403 refusals during the handshake. Closing the scope right after must end within the deadline and leave no
 * fiber running and no socket open.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Supervisor from "effect/Supervisor"
import * as Net from "node:net"
import * as Connection from "../../src/amqp/Connection.js"
import { requirePeer } from "../support/peers.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("amqp close: rabbitmq control", Rabbit.brokerControlAvailable())

const run = `ew-${process.pid}-${Date.now().toString(36)}`
let counter = 0
const unique = (what: string) => `${run}-${what}-${++counter}`
const bytes = (s: string) => new TextEncoder().encode(s)

/** Sockets of this process connected to the broker's AMQP port. */
const brokerSockets = (): number =>
  (process as unknown as { _getActiveHandles(): Array<unknown> })._getActiveHandles().filter((h) =>
    h instanceof Net.Socket && h.remotePort === Rabbit.port && !h.destroyed
  ).length

/** Runs `use` in a scope of its own, closes it within one second, and checks nothing it forked is still running. */
const closesCleanly = <A, E>(use: (scope: Scope.Scope) => Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const supervisor = yield* Supervisor.track
    const scope = yield* Scope.make()
    const result = yield* Effect.exit(Effect.supervised(use(scope), supervisor))
    // Forked: a scope's close is uninterruptible, a timeout around it would wait for it anyway.
    const closing = yield* Effect.fork(Scope.close(scope, Exit.void))
    const closed = yield* Effect.timeoutOption(Fiber.await(closing), "2 seconds")
    assert.strictEqual(closed._tag, "Some", "the scope closed within the deadline")
    const running = (yield* supervisor.value).filter((fiber) => fiber.unsafePoll() === null)
    assert.deepStrictEqual(running.map((fiber) => fiber.id().toString()), [], "no fiber left running")
    // The socket is released by the time the scope closed (abort waits for Node's 'close').
    assert.strictEqual(brokerSockets(), 0, "no socket left open")
    return result
  })

describe.skipIf(!hasBroker)("closing AMQP connections the broker closed", () => {
  it.live("320 CONNECTION_FORCED while busy, then the scope closes at once: bounded, no fiber or socket left", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 6; round++) {
        // Odd rounds publish without confirms as fast as the socket takes the bytes: the writer must still let
        // the event loop read the broker's close.
        const confirm = round % 2 === 0
        const name = unique("forced")
        const result = yield* closesCleanly((scope) =>
          Effect.gen(function*() {
            const connection = yield* Scope.extend(
              Connection.make({ url: Rabbit.url(), connectionName: name, closeTimeout: "3 seconds" }),
              scope
            )
            const channel = yield* Scope.extend(connection.channel({ confirm, prefetch: 10 }), scope)
            const { queue } = yield* channel.queueDeclare("", { exclusive: true })
            // Traffic in both directions when the close arrives: a consumer and a publisher.
            yield* Effect.forkIn(Stream.runDrain(channel.consume(queue, { noAck: true })), scope)
            yield* Effect.forkIn(Effect.forever(channel.publish("", queue, bytes("x"))), scope)
            const closedBy = yield* Effect.fork(Effect.flip(connection.closed))
            assert.strictEqual(yield* Rabbit.closeConnection(name, "forced by test"), 1)
            return yield* Fiber.join(closedBy)
          })
        )
        assert.isTrue(Exit.isSuccess(result), `round ${round} (confirm ${confirm}): ${String(result)}`)
        if (Exit.isSuccess(result)) {
          assert.strictEqual(result.value._tag, "ConnectionClosed")
          if (result.value._tag === "ConnectionClosed") {
            assert.strictEqual(result.value.replyCode, 320)
            assert.isTrue(result.value.byBroker)
          }
        }
      }
    }), { timeout: 60_000 })

  it.live("530 NOT_ALLOWED and 403 ACCESS_REFUSED during the handshake: typed failures, nothing left behind", () =>
    Effect.gen(function*() {
      for (let round = 0; round < 5; round++) {
        const denied = yield* closesCleanly((scope) =>
          Scope.extend(Connection.make({ url: Rabbit.url({ vhost: Rabbit.deniedVhost }), connectionName: unique("denied") }), scope)
        )
        assert.isTrue(Exit.isFailure(denied))
        const refused = yield* closesCleanly((scope) =>
          Scope.extend(Connection.make({ url: Rabbit.url({ password: "wrong" }), connectionName: unique("refused") }), scope)
        )
        assert.isTrue(Exit.isFailure(refused))
      }
    }), { timeout: 60_000 })
})
