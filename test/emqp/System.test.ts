import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Net from "node:net"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Command from "../../src/emqp/Command.js"
import * as Headers from "../../src/emqp/Headers.js"
import * as Socket from "../../src/emqp/Socket.js"
import * as Worker from "../../src/emqp/Worker.js"

/** A live scoped test with the library's logs kept quiet. */
const live = <E>(name: string, body: () => Effect.Effect<void, E, Scope.Scope>) =>
  it.scopedLive(name, () => body().pipe(Logger.withMinimumLogLevel(LogLevel.Error)))

let counter = 0
const endpoints = () => {
  const n = ++counter
  return {
    frontend: `memory://emqp-system-${n}-frontend`,
    backend: `memory://emqp-system-${n}-backend`,
    admin: `memory://emqp-system-${n}-admin`
  }
}

const startBroker = (e: ReturnType<typeof endpoints>, options: Broker.BrokerOptions = {}) =>
  Broker.makeWith({
    frontend: Socket.router(e.frontend),
    backend: Socket.router(e.backend),
    admin: Socket.router(e.admin)
  }, options)

const Add = Schema.Struct({ a: Schema.Number, b: Schema.Number })
const adder = (job: Worker.Job) =>
  Effect.flatMap(Schema.decodeUnknown(Add)(job.payload), ({ a, b }) => Effect.succeed(a + b))

/** Waits until `check` holds, polling on the live clock. */
const eventually = <A>(what: string, effect: Effect.Effect<A>, check: (a: A) => boolean, timeout = 5_000) =>
  Effect.gen(function*() {
    while (true) {
      const a = yield* effect
      if (check(a)) return a
      yield* Effect.sleep(Duration.millis(20))
    }
  }).pipe(
    Effect.timeoutFail({ duration: Duration.millis(timeout), onTimeout: () => new Error(`timed out waiting: ${what}`) })
  )

const slots = (broker: Broker.BrokerService) =>
  Effect.map(broker.workers, (w) =>
    Object.values(w.connected_workers as Record<string, { available_slots: number }>)
      .reduce((n, worker) => n + worker.available_slots, 0))

describe("eMQP system over ZMTP (memory endpoints)", () => {
  live("a client's typed request runs on a worker through the broker", () =>
    Effect.gen(function*() {
      const e = endpoints()
      yield* startBroker(e)
      yield* Worker.makeWith(Socket.dealer(e.backend), adder, { concurrency: 2 })
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const sum = yield* client.request({ a: 2, b: 40 }, { schema: Schema.Number })
      assert.strictEqual(sum, 42)
    }))

  live("200 concurrent requests over 2 workers: every result arrives once and is right", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e)
      const w1 = yield* Worker.makeWith(Socket.dealer(e.backend), adder, { concurrency: 4 })
      const w2 = yield* Worker.makeWith(Socket.dealer(e.backend), adder, { concurrency: 4 })
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const results = yield* Effect.forEach(
        Array.from({ length: 200 }, (_, i) => i),
        (i) => client.request({ a: i, b: 1 }, { schema: Schema.Number }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results, Array.from({ length: 200 }, (_, i) => i + 1))
      const done = (yield* w1.completed) + (yield* w2.completed)
      assert.strictEqual(done, 200)
      assert.isAbove(yield* w1.completed, 0)
      assert.isAbove(yield* w2.completed, 0)
      const status = yield* broker.status
      assert.deepStrictEqual(status.processed_messages_by_queue, { default: 200 })
    }))

  live("prefetch: the worker offers concurrency + prefetch READYs and still runs at most `concurrency` jobs at once", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e)
      let running = 0
      let most = 0
      const worker = yield* Worker.makeWith(Socket.dealer(e.backend), (job) =>
        Effect.gen(function*() {
          running++
          most = Math.max(most, running)
          yield* Effect.sleep(Duration.millis(5))
          running--
          return yield* adder(job)
        }), { concurrency: 2, prefetch: 3 })
      yield* eventually("5 READYs", slots(broker), (n) => n === 5)
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const results = yield* Effect.forEach(
        Array.from({ length: 40 }, (_, i) => i),
        (i) => client.request({ a: i, b: 1 }, { schema: Schema.Number }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(results, Array.from({ length: 40 }, (_, i) => i + 1))
      assert.strictEqual(most, 2)
      assert.strictEqual(yield* worker.completed, 40)
      // Every place is offered again once the work is done: no READY lost or doubled.
      yield* eventually("5 READYs again", slots(broker), (n) => n === 5)
    }))

  live("a worker speaking the spec profile says KBAI when it closes, and the broker forgets it at once", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e)
      const scope = yield* Scope.make()
      yield* Worker.makeWith(Socket.dealer(e.backend), adder, { concurrency: 2, profile: "spec" }).pipe(Scope.extend(scope))
      yield* eventually("2 READYs", slots(broker), (n) => n === 2)
      const client = yield* Client.makeWith(Socket.dealer(e.frontend), { profile: "spec" })
      assert.strictEqual(yield* client.request({ a: 1, b: 2 }), 3)
      yield* Scope.close(scope, Exit.void)
      const workers = (w: Record<string, unknown>) => Object.keys(w.connected_workers as object).length
      // Well before the broker's 10 s silence timeout: the KBAI did it.
      yield* eventually("the worker removed", broker.workers, (w) => workers(w) === 0, 2_000)
    }))

  live("a job past its timeout:N is interrupted and reported as TimeoutError; its slot is offered again", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e)
      let interrupted = 0
      yield* Worker.makeWith(
        Socket.dealer(e.backend),
        (job) => job.payload === "hang" ? Effect.onInterrupt(Effect.never, () => Effect.sync(() => interrupted++)) : adder(job),
        { concurrency: 1 }
      )
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const started = Date.now()
      const error = yield* Effect.flip(client.request("hang", { headers: { timeout: 1 } }))
      assert.strictEqual(error.reason, "JobFailed")
      assert.strictEqual(error.detail, "TimeoutError")
      assert.isAtLeast(Date.now() - started, 950)
      assert.strictEqual(interrupted, 1)
      yield* eventually("the slot offered again", slots(broker), (n) => n === 1)
      assert.strictEqual(yield* client.request({ a: 1, b: 1 }), 2)
    }))

  live("a failing job is JobFailed; retry-count runs it again", () =>
    Effect.gen(function*() {
      const e = endpoints()
      yield* startBroker(e)
      let attempts = 0
      yield* Worker.makeWith(Socket.dealer(e.backend), () => {
        attempts++
        return attempts < 2 ? Effect.fail(new Error("flaky")) : Effect.succeed("ok")
      })
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const first = yield* Effect.flip(client.request({}))
      assert.strictEqual(first.reason, "JobFailed")
      assert.strictEqual(first.detail, "flaky")
      attempts = 0
      const second = yield* client.request({}, { headers: { retryCount: 1 } })
      assert.strictEqual(second, "ok")
      assert.strictEqual(attempts, 2)
    }))

  live("a full queue buffer refuses with Refused queue-full, never a silent drop", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e, { queueCapacity: 2 })
      const gate = yield* Deferred.make<void>()
      yield* Worker.makeWith(Socket.dealer(e.backend), () => Effect.as(Deferred.await(gate), "done"), { concurrency: 1 })
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      yield* eventually("a free slot", slots(broker), (n) => n === 1)
      const fibers = yield* Effect.forEach(
        Array.from({ length: 5 }),
        () => Effect.fork(Effect.either(client.request({}))),
        { concurrency: "unbounded" }
      )
      yield* Effect.sleep(Duration.millis(200))
      yield* Deferred.succeed(gate, undefined)
      const outcomes = yield* Effect.forEach(fibers, Fiber.join)
      const ok = outcomes.filter(Either.isRight)
      const refused = outcomes.filter(Either.isLeft).map((o) => [o.left.reason, o.left.code])
      assert.strictEqual(ok.length, 3, "one running and two waiting")
      assert.deepStrictEqual(refused, [["Refused", "queue-full"], ["Refused", "queue-full"]])
    }))

  live("a guaranteed job whose worker shuts down mid-job runs again on another worker", () =>
    Effect.gen(function*() {
      const e = endpoints()
      yield* startBroker(e)
      const started = yield* Deferred.make<void>()
      const doomedScope = yield* Scope.make()
      yield* Worker.makeWith(
        Socket.dealer(e.backend),
        () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never),
        { concurrency: 1, drainTimeout: Duration.millis(10) }
      ).pipe(Scope.extend(doomedScope))
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const guaranteed = yield* Effect.fork(client.request({ a: 1, b: 2 }, { headers: { guarantee: true }, schema: Schema.Number }))
      yield* Deferred.await(started)
      const plain = yield* Effect.fork(client.request({ a: 1, b: 2 }))
      yield* Effect.sleep(Duration.millis(50))
      yield* Scope.close(doomedScope, Exit.void)
      yield* Worker.makeWith(Socket.dealer(e.backend), adder, { concurrency: 1 })
      assert.strictEqual(yield* Fiber.join(guaranteed), 3)
      // The plain request was waiting in the buffer, not lost: it runs too.
      assert.strictEqual(yield* Fiber.join(plain), 3)
    }))

  live("a job lost with its worker is Refused worker-lost when it was not guaranteed", () =>
    Effect.gen(function*() {
      const e = endpoints()
      yield* startBroker(e)
      const started = yield* Deferred.make<void>()
      const doomedScope = yield* Scope.make()
      yield* Worker.makeWith(
        Socket.dealer(e.backend),
        () => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never),
        { concurrency: 1, drainTimeout: Duration.millis(10) }
      ).pipe(Scope.extend(doomedScope))
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const lost = yield* Effect.fork(Effect.flip(client.request({})))
      yield* Deferred.await(started)
      yield* Scope.close(doomedScope, Exit.void)
      const error = yield* Fiber.join(lost)
      assert.deepStrictEqual([error.reason, error.code], ["Refused", "worker-lost"])
    }))

  live("fire-and-forget sends with reply-requested deliver outcomes on the stream", () =>
    Effect.gen(function*() {
      const e = endpoints()
      yield* startBroker(e)
      yield* Worker.makeWith(Socket.dealer(e.backend), adder)
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const ids = yield* Effect.forEach([1, 2, 3], (a) => client.send({ a, b: 10 }, { headers: { replyRequested: true } }))
      const outcomes = yield* client.outcomes.pipe(Stream.take(3), Stream.runCollect)
      const byId = new Map([...outcomes].map((o) => [o.requestId, o._tag === "Result" ? JSON.parse(o.result).value : o.code]))
      assert.deepStrictEqual(ids.map((id) => byId.get(id)), [11, 12, 13])
    }))

  live("a worker reconnects with a new identity after the broker restarts", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const brokerScope = yield* Scope.make()
      yield* startBroker(e).pipe(Scope.extend(brokerScope))
      const worker = yield* Worker.makeWith(Socket.dealer(e.backend), adder, {
        reconnectDelay: Duration.millis(50),
        ackTimeout: Duration.millis(500)
      })
      const first = yield* eventually("first connection", worker.identity, Option.isSome)
      yield* Scope.close(brokerScope, Exit.void) // says KBYE to the worker
      yield* startBroker(e)
      const second = yield* eventually(
        "reconnected",
        worker.identity,
        (id) => Option.isSome(id) && Option.isSome(first) && id.value !== first.value
      )
      assert.isTrue(Option.isSome(second))
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      assert.strictEqual(yield* client.request({ a: 1, b: 1 }, { timeout: Duration.seconds(5) }), 2)
    }))

  live("admin STATUS and DISCONNECT over the admin socket", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e)
      yield* Worker.makeWith(Socket.dealer(e.backend), adder)
      const admin = yield* Socket.dealer(e.admin)("admin-cli")
      yield* Effect.sleep(Duration.millis(100))
      yield* admin.send(Command.encode(Command.ShowWorkers.make({ msgid: "admin:1" })))
      const reply = Command.decode(yield* admin.receive)
      assert.isTrue(Either.isRight(reply) && reply.right._tag === "Reply")
      const body = JSON.parse((reply as Either.Right<never, Command.Reply>).right.body)
      assert.strictEqual(Object.keys(body.connected_workers).length, 1)
      yield* admin.send(Command.encode(Command.Disconnect.make({ msgid: "admin:2" })))
      const ack = Command.decode(yield* admin.receive)
      assert.isTrue(Either.isRight(ack) && ack.right._tag === "Ack" && ack.right.acked === "admin:2")
      yield* broker.awaitShutdown
    }))

  live("over TCP, a broker restart is survived by the worker (new identity) and the client (same socket)", () =>
    Effect.gen(function*() {
      const port = () =>
        Effect.async<number>((resume) => {
          const server = Net.createServer().listen(0, "127.0.0.1", () => {
            const address = server.address()
            server.close(() => resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0)))
          })
        })
      const e = { frontend: `tcp://127.0.0.1:${yield* port()}`, backend: `tcp://127.0.0.1:${yield* port()}`, admin: false as const }
      const brokerScope = yield* Scope.make()
      yield* Broker.make(e).pipe(Scope.extend(brokerScope))
      const worker = yield* Worker.make(adder, { address: e.backend, reconnectDelay: Duration.millis(100) })
      const client = yield* Client.make({ address: e.frontend })
      assert.strictEqual(yield* client.request({ a: 1, b: 1 }), 2)
      const first = yield* worker.identity
      yield* Scope.close(brokerScope, Exit.void)
      yield* Broker.make(e)
      yield* eventually("the worker back", worker.identity, (id) => Option.isSome(id) && Option.isSome(first) && id.value !== first.value)
      assert.strictEqual(yield* client.request({ a: 2, b: 2 }, { timeout: Duration.seconds(10) }), 4)
    }))

  live("malformed commands on every socket are refused with a log line; the broker keeps serving", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const broker = yield* startBroker(e)
      yield* Worker.makeWith(Socket.dealer(e.backend), adder)
      const enc = (...texts: ReadonlyArray<string>) => texts.map((t) => new TextEncoder().encode(t))
      const garbage: ReadonlyArray<ReadonlyArray<Uint8Array>> = [
        enc("", "eMQP/9.9", "REQUEST", "m1", "default", "", "{}"),
        enc("", "eMQP/1.0", "FROB", "m2"),
        enc("", "eMQP/1.0", "INFORM", "m3", "[[10, \"default\"", "worker"),
        enc("", "eMQP/1.0", "REQUEST", "m4", "default", "timeout:soon", "{}"),
        enc("not-empty", "eMQP/1.0", "READY", "m5"),
        enc("only", "two"),
        [new Uint8Array(0), ...enc("eMQP/1.0", "REQUEST"), new Uint8Array([0xff, 0xfe]), ...enc("q", "", "{}")]
      ]
      for (const endpoint of [e.frontend, e.backend, e.admin]) {
        const raw = yield* Socket.dealer(endpoint)(`raw-${endpoint}`)
        for (const message of garbage) yield* raw.send(message)
      }
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      assert.strictEqual(yield* client.request({ a: 20, b: 22 }), 42)
      const status = yield* broker.status
      assert.deepStrictEqual(status.processed_messages_by_queue, { default: 1 })
      assert.strictEqual(Object.keys((yield* broker.workers).connected_workers as object).length, 1)
    }))

  live("a client that never reads its acks (as 0.3.13 clients do) does not stall the broker for others", () =>
    Effect.gen(function*() {
      const e = endpoints()
      const small = { highWaterMark: 5 }
      yield* Broker.makeWith(
        { frontend: Socket.router(e.frontend, small), backend: Socket.router(e.backend) },
        { tickInterval: Duration.millis(50) }
      )
      yield* Worker.makeWith(Socket.dealer(e.backend), adder, { concurrency: 4 })
      const deaf = yield* Socket.dealer(e.frontend, small)("deaf-client")
      for (let i = 0; i < 1500; i++) {
        yield* deaf.send(Command.encode(Command.Request.make({
          msgid: `deaf-${i}`,
          queue: "default",
          headers: Headers.empty,
          payload: JSON.stringify({ a: i, b: 0 })
        })))
      }
      const client = yield* Client.makeWith(Socket.dealer(e.frontend))
      const sums = yield* Effect.forEach([1, 2, 3], (a) => client.request({ a, b: 1 }, { timeout: Duration.seconds(10) }))
      assert.deepStrictEqual(sums, [2, 3, 4])
    }))
})
