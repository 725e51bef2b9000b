/**
 * eMQP against the Python EventMQ 0.3.13 reference, in both directions: its job manager, client and scheduler
 * under our broker; our worker and client under its router; heartbeats, DISCONNECT and killed workers.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Chunk from "effect/Chunk"
import * as Stream from "effect/Stream"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Command from "../../src/emqp/Command.js"
import * as PubSub from "../../src/emqp/PubSub.js"
import * as Scheduler from "../../src/emqp/Scheduler.js"
import * as Socket from "../../src/emqp/Socket.js"
import * as Worker from "../../src/emqp/Worker.js"
import { repoRoot, requirePeer } from "../support/peers.js"
import { missingEventmq, spawnEventmq, spawnPython } from "../support/python.js"

const hasEventmq = requirePeer("interop: emqp (EventMQ 0.3.13)", missingEventmq())

const pythonDir = Path.join(repoRoot, "test", "interop", "python")
const pythonEnv = { PYTHONPATH: pythonDir }

const live = <E>(name: string, body: () => Effect.Effect<void, E, Scope.Scope>, timeout = 60_000) =>
  it.scopedLive.skipIf(!hasEventmq)(name, () => body().pipe(Logger.withMinimumLogLevel(LogLevel.Error)), timeout)

const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

const addresses = Effect.gen(function*() {
  const [frontend, backend, admin] = [yield* freePort, yield* freePort, yield* freePort]
  return {
    frontend: `tcp://127.0.0.1:${frontend}`,
    backend: `tcp://127.0.0.1:${backend}`,
    admin: `tcp://127.0.0.1:${admin}`
  }
})

type Addresses = Effect.Effect.Success<typeof addresses>

/** Polls `effect` on the live clock until `check` holds. */
const eventually = <A, E>(what: string, effect: Effect.Effect<A, E>, check: (a: A) => boolean, timeout = 20_000) =>
  Effect.gen(function*() {
    while (true) {
      const a = yield* effect
      if (check(a)) return a
      yield* Effect.sleep(Duration.millis(50))
    }
  }).pipe(
    Effect.timeoutFail({ duration: Duration.millis(timeout), onTimeout: () => new Error(`timed out waiting: ${what}`) })
  )

const freeSlots = (broker: Broker.BrokerService) =>
  Effect.map(broker.workers, (w) =>
    Object.values(w.connected_workers as Record<string, { available_slots: number }>)
      .reduce((n, worker) => n + worker.available_slots, 0))

const router = (a: Addresses) =>
  spawnEventmq("emq-router", { FRONTEND_ADDR: a.frontend, BACKEND_ADDR: a.backend, ADMINISTRATIVE_ADDR: a.admin })

const jobManager = (backend: string, concurrency = 2) =>
  spawnEventmq("emq-jobmanager", { WORKER_ADDR: backend, CONCURRENT_JOBS: String(concurrency) }, [], { env: pythonEnv })

const pythonClient = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const peer = yield* spawnPython(Fs.readFileSync(Path.join(pythonDir, "emqp_client.py"), "utf8"), args, {
      env: pythonEnv,
      name: "emqp_client.py"
    })
    return yield* peer.waitForLine(/^sent \d+$/, Duration.seconds(20))
  })

const tempFile = Effect.acquireRelease(
  Effect.sync(() => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "emqp-interop-")), "runs.txt")),
  (file) => Effect.sync(() => Fs.rmSync(Path.dirname(file), { recursive: true, force: true }))
)
const lines = (file: string) => Effect.sync(() => (Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").split("\n").filter((l) => l !== "") : []))

describe("eMQP interop with EventMQ 0.3.13", () => {
  live("a Python job manager under our broker runs our client's requests; results come back typed", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const broker = yield* Broker.make(a)
      yield* jobManager(a.backend, 2)
      // The Python job manager offers READY only after our broker's first HEARTBEAT.
      yield* eventually("the job manager's READYs", freeSlots(broker), (n) => n === 2)
      const client = yield* Client.make({ address: a.frontend })
      const sums = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => i),
        (i) =>
          client.request(Client.runPayload({ path: "emqp_jobs", callable: "add", args: [i, 100] }), {
            schema: Schema.Number,
            timeout: Duration.seconds(20)
          }),
        { concurrency: 4 }
      )
      assert.deepStrictEqual(sums, Array.from({ length: 20 }, (_, i) => i + 100))
      const status = yield* broker.status
      assert.deepStrictEqual(status.processed_messages_by_queue, { default: 20 })
      // A raised exception is indistinguishable from a string result in 0.3.13: it arrives as the value.
      const failed = yield* client.request(Client.runPayload({ path: "emqp_jobs", callable: "fail", args: ["boom"] }))
      assert.strictEqual(failed, "boom")
    }))

  // The same scenario under both brokers: the reference's router is the oracle for ours.
  for (const which of ["the reference router", "our broker"] as const) {
    live(`${which}: requests for a queue no worker announced wait for a default worker, queue frame unchanged`, () =>
      Effect.gen(function*() {
        const a = yield* addresses
        if (which === "our broker") yield* Broker.make(a)
        else yield* router(a)
        // Sent while no worker at all is connected: they wait in `default` and go to the first default worker.
        yield* pythonClient(["defer", a.frontend, "3", "nobody-serves-this", "emqp_jobs.record", "[\"ignored\", \"{i}\"]"])
        const jobs: Array<Worker.Job> = []
        yield* Worker.make((job) => Effect.sync(() => jobs.push(job)), { address: a.backend, reconnectDelay: Duration.millis(200) })
        yield* eventually("3 jobs run", Effect.sync(() => jobs.length), (n) => n === 3)
        assert.deepStrictEqual(jobs.map((job) => job.queue), ["nobody-serves-this", "nobody-serves-this", "nobody-serves-this"])
      }))
  }

  live("the Python client's jobs reach our worker through the Python router", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      yield* router(a)
      const payloads: Array<unknown> = []
      const worker = yield* Worker.make((job) => Effect.sync(() => payloads.push(job.payload)), {
        address: a.backend,
        reconnectDelay: Duration.millis(200)
      })
      yield* eventually("our worker registered", worker.identity, Option.isSome)
      yield* pythonClient(["defer", a.frontend, "25", "default", "emqp_jobs.record", "[\"ignored\", \"{i}\"]"])
      yield* eventually("25 jobs run", Effect.sync(() => payloads.length), (n) => n === 25)
      const values = payloads.map((p) => (p as [string, { args: [string, string] }])[1].args[1]).sort((x, y) => Number(x) - Number(y))
      assert.deepStrictEqual(values, Array.from({ length: 25 }, (_, i) => String(i)))
      assert.deepStrictEqual((payloads[0] as [string, unknown])[0], "run")
      assert.strictEqual(yield* worker.completed, 25)
    }))

  live("the Python client's jobs reach our worker through our broker", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const broker = yield* Broker.make(a)
      let runs = 0
      yield* Worker.make(() => Effect.sync(() => ++runs), { address: a.backend })
      yield* eventually("our worker's READYs", freeSlots(broker), (n) => n === 4)
      yield* pythonClient(["defer", a.frontend, "30", "default", "emqp_jobs.add", "[1, 2]", "reply"])
      yield* eventually("30 jobs run", Effect.sync(() => runs), (n) => n === 30)
      const status = yield* broker.status
      assert.deepStrictEqual(status.processed_messages_by_queue, { default: 30 })
    }))

  live("our client's jobs run on a Python job manager under the Python router", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const file = yield* tempFile
      yield* router(a)
      yield* jobManager(a.backend, 2)
      const client = yield* Client.make({ address: a.frontend })
      // The reference router never forwards results: fire-and-forget, then count the job's side effects.
      yield* Effect.sleep(Duration.seconds(4)) // the job manager's READYs follow the router's first HEARTBEAT
      const ids = yield* Effect.forEach(
        Array.from({ length: 10 }, (_, i) => i),
        (i) => client.send(Client.runPayload({ path: "emqp_jobs", callable: "record", args: [file, i] }))
      )
      assert.strictEqual(new Set(ids).size, 10)
      const done = yield* eventually("10 jobs run", lines(file), (l) => l.length === 10, 40_000)
      assert.deepStrictEqual(done.map(Number).sort((x, y) => x - y), Array.from({ length: 10 }, (_, i) => i))
    }), 90_000)

  live("the Python scheduler registers with our broker and runs our client's interval job", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const broker = yield* Broker.make(a)
      let runs = 0
      yield* Worker.make(() => Effect.sync(() => ++runs), { address: a.backend })
      yield* spawnEventmq("emq-scheduler", { SCHEDULER_ADDR: a.frontend }, [], { env: pythonEnv })
      yield* eventually(
        "the scheduler registered",
        broker.schedulers,
        (s) => Object.keys(s.connected_schedulers as object).length === 1
      )
      const client = yield* Client.make({ address: a.frontend })
      const payload = Client.runPayload({ path: "emqp_jobs", callable: "add", args: [1, 1] })
      yield* client.schedule({ payload, interval: Duration.seconds(1), headers: { runCount: 3 } })
      yield* eventually("3 runs", Effect.sync(() => runs), (n) => n === 3, 15_000)
      yield* Effect.sleep(Duration.seconds(2))
      assert.strictEqual(runs, 3, "run_count:3 is honoured")
    }))

  live("our scheduler under the Python router runs a job on a Python job manager, run_count times", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const file = yield* tempFile
      yield* router(a)
      yield* jobManager(a.backend, 1)
      const scheduler = yield* Scheduler.make({ address: a.frontend })
      yield* eventually("our scheduler registered", scheduler.identity, Option.isSome)
      yield* Effect.sleep(Duration.seconds(4)) // the job manager's READY follows the router's first HEARTBEAT
      const client = yield* Client.make({ address: a.frontend })
      const payload = Client.runPayload({ path: "emqp_jobs", callable: "record", args: [file, "tick"] })
      yield* client.schedule({ payload, interval: Duration.seconds(1), headers: { runCount: 3 } })
      yield* eventually("3 runs", lines(file), (l) => l.length === 3, 30_000)
      yield* Effect.sleep(Duration.seconds(2))
      assert.deepStrictEqual(yield* lines(file), ["tick", "tick", "tick"])
      assert.lengthOf(yield* scheduler.jobs, 0)
    }), 90_000)

  live("heartbeats both ways keep peers registered past the silence limits", () =>
    Effect.gen(function*() {
      // Our broker reaps after 6 s of silence; the Python job manager must heartbeat to stay.
      const a = yield* addresses
      const broker = yield* Broker.make({ ...a, peerTimeout: Duration.seconds(6) })
      yield* jobManager(a.backend, 1)
      yield* eventually("the job manager's READY", freeSlots(broker), (n) => n === 1)
      // The Python router reaps after 5 s (checked every 10 s); our worker must heartbeat to stay.
      const b = yield* addresses
      yield* router(b)
      let runs = 0
      const worker = yield* Worker.make(() => Effect.sync(() => ++runs), { address: b.backend })
      yield* eventually("our worker registered", worker.identity, Option.isSome)
      const first = yield* worker.identity
      yield* Effect.sleep(Duration.seconds(16))
      assert.strictEqual(yield* freeSlots(broker), 1, "the Python job manager is still registered")
      assert.deepStrictEqual(yield* worker.identity, first, "our worker never had to reconnect")
      yield* pythonClient(["defer", b.frontend, "3", "default", "emqp_jobs.add", "[1, 2]"])
      yield* eventually("3 jobs run", Effect.sync(() => runs), (n) => n === 3)
    }), 90_000)

  live("DISCONNECT on the Python router's admin socket: the router says KBYE, our worker lets go and exits cleanly", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const python = yield* router(a)
      const worker = yield* Worker.make(() => Effect.void, { address: a.backend, reconnectDelay: Duration.millis(200) })
      yield* eventually("our worker registered", worker.identity, Option.isSome)
      const admin = yield* Socket.dealer(a.admin)(`admin-${process.pid}`)
      const disconnect = `admin:${Command.unsafeMessageId()}`
      yield* admin.send(Command.encode(Command.Disconnect.make({ msgid: disconnect })))
      const ack = Command.decode(yield* admin.receive)
      assert.isTrue(Either.isRight(ack) && ack.right._tag === "Ack" && ack.right.acked === disconnect)
      yield* eventually("our worker let go after KBYE", worker.identity, Option.isNone, 10_000)
      const status = yield* python.exit
      assert.strictEqual(status.code, 0, "the router left its event loop and exited")
    }))

  live("a Python job manager killed mid-job: guaranteed jobs run again on our worker, others are refused", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const broker = yield* Broker.make({ ...a, peerTimeout: Duration.seconds(3) })
      const jm = yield* jobManager(a.backend, 2)
      yield* eventually("the job manager's READYs", freeSlots(broker), (n) => n === 2)
      const client = yield* Client.make({ address: a.frontend })
      const slow = Client.runPayload({ path: "emqp_jobs", callable: "sleep", args: [30] })
      const guaranteed = yield* Effect.fork(client.request(slow, { headers: { guarantee: true }, timeout: Duration.seconds(30) }))
      const plain = yield* Effect.fork(Effect.either(client.request(slow, { timeout: Duration.seconds(30) })))
      yield* eventually("both jobs running", freeSlots(broker), (n) => n === 0)
      yield* jm.signal("SIGKILL")
      // Our worker joins; the guaranteed job is dispatched to it once the broker reaps the dead job manager.
      yield* Worker.make(() => Effect.succeed("rescued"), { address: a.backend })
      assert.strictEqual(yield* Fiber.join(guaranteed), "rescued")
      const lost = yield* Fiber.join(plain)
      assert.isTrue(Either.isLeft(lost))
      if (Either.isLeft(lost)) assert.deepStrictEqual([lost.left.reason, lost.left.code], ["Refused", "worker-lost"])
    }))

  live("our broker restarted under a Python job manager: it comes back with a new identity and runs jobs again", () =>
    Effect.gen(function*() {
      const a = yield* addresses
      const first = yield* Scope.make()
      const broker1 = yield* Broker.make(a).pipe(Scope.extend(first))
      yield* jobManager(a.backend, 1)
      yield* eventually("the job manager's READY", freeSlots(broker1), (n) => n === 1)
      const client = yield* Client.make({ address: a.frontend })
      const job = Client.runPayload({ path: "emqp_jobs", callable: "add", args: [20, 22] })
      assert.strictEqual(yield* client.request(job, { timeout: Duration.seconds(20) }), 42)
      yield* Scope.close(first, Exit.void)
      const broker2 = yield* Broker.make(a)
      // The reference ignores KBYE and notices the silence after 3 × 5 s, then INFORMs with a new identity.
      yield* eventually("the job manager back", freeSlots(broker2), (n) => n === 1, 40_000)
      assert.strictEqual(yield* client.request(job, { timeout: Duration.seconds(20) }), 42)
    }), 90_000)

  live("pub/sub: the Python publisher through our relay, and ours through the Python relay", () =>
    Effect.gen(function*() {
      const [i1, o1, i2, o2] = [yield* freePort, yield* freePort, yield* freePort, yield* freePort]
      // PUB/SUB drops what is published before a subscription arrives: publishers repeat until the
      // subscriber has what it waits for.
      const within = <A, E>(what: string, effect: Effect.Effect<A, E>) =>
        Effect.timeoutFail(effect, { duration: Duration.seconds(20), onTimeout: () => new Error(`timed out: ${what}`) })

      // Python client library → our relay → our subscriber.
      yield* PubSub.makeRelay({ incoming: `tcp://127.0.0.1:${i1}`, outgoing: `tcp://127.0.0.1:${o1}` })
      const ours = yield* PubSub.subscribe(["alerts"], { address: `tcp://127.0.0.1:${o1}` }).pipe(
        Stream.take(5),
        Stream.runCollect,
        Effect.fork
      )
      const python = yield* Effect.fork(Effect.forever(
        pythonClient(["publish", `tcp://127.0.0.1:${i1}`, "alerts.disk", "{\"free\": 3}", "5"])
      ))
      const received = Chunk.toArray(yield* within("our subscriber", Fiber.join(ours)))
      yield* Fiber.interrupt(python)
      assert.deepStrictEqual(received, Array.from({ length: 5 }, () => ({ topic: "alerts.disk", message: { free: 3 } })))

      // Our publisher → the Python relay (emq-pubsub) → our subscriber.
      yield* spawnEventmq("emq-pubsub", {
        PUBLISHER_INCOMING_ADDR: `tcp://127.0.0.1:${i2}`,
        PUBLISHER_OUTGOING_ADDR: `tcp://127.0.0.1:${o2}`
      })
      const viaPython = yield* PubSub.subscribe(["jobs"], { address: `tcp://127.0.0.1:${o2}` }).pipe(
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      const publisher = yield* PubSub.makePublisher({ address: `tcp://127.0.0.1:${i2}` })
      let n = 0
      const ourPublishing = yield* Effect.fork(Effect.forever(
        Effect.zipRight(Effect.suspend(() => publisher.publish("jobs.done", { n: n++ })), Effect.sleep(Duration.millis(50)))
      ))
      const relayed = Chunk.toArray(yield* within("the Python relay", Fiber.join(viaPython)))
      yield* Fiber.interrupt(ourPublishing)
      assert.isTrue(relayed.every((m) => m.topic === "jobs.done"))
      const ns = relayed.map((m) => (m.message as { n: number }).n)
      assert.deepStrictEqual(ns, [...ns].sort((x, y) => x - y), "in publishing order")
      assert.strictEqual(new Set(ns).size, 3)
    }))
})
