/**
 * What a client makes of the result a worker sends back: `{"value": …}` is the value, `{"error": …}` a failed job,
 * anything but a JSON object a malformed reply. The worker here is a raw DEALER that answers with the exact bytes.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Command from "../../src/emqp/Command.js"
import * as Socket from "../../src/emqp/Socket.js"

let counter = 0

/** The next command from the broker that is not a heartbeat or ACK. */
const next = (socket: Socket.MessageSocket) =>
  Effect.gen(function*() {
    while (true) {
      const decoded = Command.decode(yield* socket.receive)
      if (Either.isLeft(decoded)) continue
      if (decoded.right._tag !== "Heartbeat") return decoded.right
    }
  })

/** Sends one request through a broker to a raw worker that answers it with `result`; the client's outcome. */
const answer = (result: string) =>
  Effect.gen(function*() {
    const n = ++counter
    const frontend = `memory://emqp-results-${n}-frontend`
    const backend = `memory://emqp-results-${n}-backend`
    yield* Broker.makeWith({ frontend: Socket.router(frontend), backend: Socket.router(backend) }, {})
    const worker = yield* Socket.dealer(backend)(`raw-worker-${n}`)
    const inform = Command.unsafeMessageId()
    yield* worker.send(Command.encode(Command.Inform.make({
      msgid: inform,
      queues: [{ weight: 10, name: "default" }],
      peerType: "worker"
    })))
    const ack = yield* next(worker)
    assert.strictEqual(ack._tag, "Ack")
    yield* worker.send(Command.encode(Command.Ready.make({ msgid: Command.unsafeMessageId() })))
    const client = yield* Client.makeWith(Socket.dealer(frontend))
    const outcome = yield* Effect.fork(Effect.either(client.request({ n })))
    const request = yield* next(worker)
    assert.strictEqual(request._tag, "Request")
    yield* worker.send(Command.encode(Command.Result.make({
      msgid: Command.unsafeMessageId(),
      result,
      requestId: request.msgid
    })))
    return yield* Fiber.join(outcome)
  }).pipe(Logger.withMinimumLogLevel(LogLevel.Error))

describe("eMQP client results", () => {
  it.scopedLive("a value, a value of null, and an object without value (undefined)", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* answer(`{"value":{"sum":3}}`), Either.right({ sum: 3 }))
      assert.deepStrictEqual(yield* answer(`{"value":null}`), Either.right(null))
      assert.deepStrictEqual(yield* answer(`{}`), Either.right(undefined))
    }))

  it.scopedLive("an error is JobFailed with the error's message", () =>
    Effect.gen(function*() {
      const outcome = yield* answer(`{"value":null,"error":{"_tag":"Boom","message":"it broke"}}`)
      assert.isTrue(Either.isLeft(outcome))
      if (Either.isLeft(outcome)) {
        assert.strictEqual(outcome.left.reason, "JobFailed")
        assert.strictEqual(outcome.left.detail, "it broke")
      }
    }))

  it.scopedLive("a result that is not a JSON object is Malformed", () =>
    Effect.gen(function*() {
      for (const text of [`[1]`, `null`, `42`, `"text"`, `not json`]) {
        const outcome = yield* answer(text)
        assert.isTrue(Either.isLeft(outcome), text)
        if (Either.isLeft(outcome)) assert.strictEqual(outcome.left.reason, "Malformed", text)
      }
    }))
})
