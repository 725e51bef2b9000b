/**
 * The real peers are there and work: RabbitMQ (with the users and vhosts the AMQP suites expect, and
 * rabbitmqctl reachable from the test process), pyzmq talking to libzmq, the EventMQ reference router, and
 * every Go peer program. Each group asks `requirePeer`: under CI=true a missing peer fails here.
 */
import { assert, describe, it } from "@effect/vitest"
import { AMQPClient } from "@cloudamqp/amqp-client"
import amqplib from "amqplib"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as Net from "node:net"
import * as Zmq from "zeromq"
import { goPeerNames, missingGoPeer, spawnGoPeer } from "../support/go.js"
import { requirePeer } from "../support/peers.js"
import { missingEventmq, missingPyzmq, runPython, spawnEventmq, spawnPython } from "../support/python.js"
import * as Rabbit from "../support/rabbitmq.js"

const hasBroker = requirePeer("peers: rabbitmq", Rabbit.brokerControlAvailable())
const hasPyzmq = requirePeer("peers: pyzmq", missingPyzmq())
const hasEventmq = requirePeer("peers: eventmq", missingEventmq())

/** A TCP port that was free a moment ago (the peer binds it next). */
const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as Net.AddressInfo
    server.close(() => resume(Effect.succeed(port)))
  })
})

const tcpConnects = (port: number) =>
  Effect.async<void, Error>((resume) => {
    const socket = Net.connect(port, "127.0.0.1")
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.void)
    })
    socket.once("error", (error) => resume(Effect.fail(error)))
  })

const amqpConnect = (url: string, options?: { readonly name?: string }) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      amqplib.connect(url, options?.name === undefined ? {} : { clientProperties: { connection_name: options.name } })
    ).pipe(Effect.tap((connection) => {
      // A forced close is also emitted as "error"; the tests read it from "close".
      connection.on("error", () => undefined)
    })),
    (connection) => Effect.promise(() => connection.close().catch(() => undefined))
  )

/** What amqplib negotiated in connection.tune-ok (kept on its internal connection object). */
const tuned = (model: amqplib.ChannelModel) =>
  model.connection as unknown as { readonly frameMax: number; readonly channelMax: number; readonly heartbeat: number }

/** The reply code and text of a refused connection, from @cloudamqp/amqp-client ("… TEXT (CODE)"). */
const refusal = (url: string) =>
  Effect.tryPromise(() => new AMQPClient(url).connect()).pipe(
    Effect.flatMap((connection) => Effect.promise(() => connection.close()).pipe(Effect.as("connected"))),
    Effect.catchAll((error) => Effect.succeed(String((error.error as Error).message)))
  )

describe.skipIf(!hasBroker)("RabbitMQ", () => {
  it.scopedLive("routes every message published through a queue (amqplib, publisher confirms)", () =>
    Effect.gen(function*() {
      const connection = yield* amqpConnect(Rabbit.url())
      const channel = yield* Effect.promise(() => connection.createConfirmChannel())
      const { queue } = yield* Effect.promise(() => channel.assertQueue("", { exclusive: true }))
      const count = 500
      for (let i = 0; i < count; i++) channel.sendToQueue(queue, Buffer.from(`m${i}`))
      yield* Effect.promise(() => channel.waitForConfirms())

      const queues = yield* Rabbit.listQueues()
      assert.deepStrictEqual(queues.find((q) => q.name === queue), { name: queue, messages: count, consumers: 0 })

      const received: Array<string> = []
      yield* Effect.async<void>((resume) => {
        void channel.consume(queue, (message) => {
          if (message === null) return
          received.push(message.content.toString())
          channel.ack(message)
          if (received.length === count) resume(Effect.void)
        })
      })
      assert.strictEqual(received.length, count)
      assert.deepStrictEqual(received, Array.from({ length: count }, (_, i) => `m${i}`))
    }))

  it.scopedLive("negotiates frame_max 8192 and 4096 (3.10 still accepts 4096) and a non-guest user", () =>
    Effect.gen(function*() {
      const at8192 = yield* amqpConnect(Rabbit.url({ query: "frameMax=8192" }))
      assert.strictEqual(tuned(at8192).frameMax, 8192)
      const at4096 = yield* amqpConnect(Rabbit.url({ query: "frameMax=4096" }))
      assert.strictEqual(tuned(at4096).frameMax, 4096)
      const unlimited = yield* amqpConnect(Rabbit.url({ query: "frameMax=0" }))
      assert.strictEqual(tuned(unlimited).frameMax, 131072)
      assert.strictEqual(tuned(unlimited).channelMax, 2047)
      assert.strictEqual(tuned(unlimited).heartbeat, 60)
      const user = yield* amqpConnect(Rabbit.url(Rabbit.user))
      const channel = yield* Effect.promise(() => user.createChannel())
      const { queue } = yield* Effect.promise(() => channel.assertQueue("", { exclusive: true }))
      assert.match(queue, /^amq\.gen-/)
    }))

  it.live("refuses the denied vhost with 530 NOT_ALLOWED and a bad password with 403 ACCESS_REFUSED", () =>
    Effect.gen(function*() {
      const vhost = yield* refusal(Rabbit.url({ vhost: Rabbit.deniedVhost }))
      assert.match(vhost, /NOT_ALLOWED - access to vhost 'effect-wire-denied' refused for user 'guest' \(530\)/)
      const password = yield* refusal(Rabbit.url({ password: "wrong" }))
      assert.match(password, /ACCESS_REFUSED - Login was refused.*\(403\)/)
    }))

  it.scopedLive("rabbitmqctl works from the test process: version, connections, forced close, broker pid", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* Rabbit.brokerVersion, Rabbit.expectedVersion)
      const name = `peers-test-${process.pid}-${Date.now()}`
      const connection = yield* amqpConnect(Rabbit.url(), { name })
      const closed = yield* Deferred.make<unknown>()
      connection.once("close", (error) => Deferred.unsafeDone(closed, Exit.succeed(error)))
      const listed = yield* Rabbit.listConnections.pipe(
        Effect.map((all) => all.filter((c) => c.name === name)),
        Effect.filterOrFail((found) => found.length > 0, () => "not listed yet"),
        Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), times: 50 })
      )
      assert.strictEqual(listed.length, 1)
      assert.strictEqual(listed[0]!.user, "guest")
      assert.strictEqual(listed[0]!.vhost, "/")

      // Closing only our own connection keeps suites that share the broker undisturbed.
      assert.strictEqual(yield* Rabbit.closeConnection(name, "peers test"), 1)
      const error = yield* Deferred.await(closed)
      assert.match(String(error), /CONNECTION_FORCED - peers test/)

      const pid = yield* Rabbit.brokerPid
      assert.isTrue(process.kill(pid, 0))
    }))
})

describe.skipIf(!hasPyzmq)("pyzmq", () => {
  it.scopedLive("a pyzmq REQ and a zeromq-npm REP exchange multipart messages on loopback", () =>
    Effect.gen(function*() {
      const rep = yield* Effect.acquireRelease(Effect.sync(() => new Zmq.Reply({ linger: 0 })), (s) =>
        Effect.sync(() => s.close()))
      yield* Effect.promise(() => rep.bind("tcp://127.0.0.1:*"))
      const endpoint = rep.lastEndpoint!
      const rounds = 50
      yield* Effect.promise(async () => {
        for (let i = 0; i < rounds; i++) {
          const [a, b] = await rep.receive()
          await rep.send([Buffer.concat([Buffer.from("re:"), a!]), b!])
        }
      }).pipe(Effect.forkScoped)

      const python = yield* spawnPython(
        `
import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.REQ)
s.setsockopt(zmq.LINGER, 0)
s.connect(sys.argv[1])
print("libzmq", zmq.zmq_version(), "curve", zmq.has("curve"))
for i in range(int(sys.argv[2])):
    s.send_multipart([b"q%d" % i, bytes([i, 0, 255])])
    a, b = s.recv_multipart()
    print(a.decode(), b.hex())
`,
        [endpoint, String(rounds)]
      )
      const banner = yield* python.waitForLine(/^libzmq /)
      assert.match(banner, /^libzmq 4\.\d+\.\d+ curve True$/)
      const replies: Array<string> = []
      for (let i = 0; i < rounds; i++) replies.push(yield* python.waitForLine(() => true))
      assert.deepStrictEqual(
        replies,
        Array.from({ length: rounds }, (_, i) => `re:q${i} ${Buffer.from([i, 0, 255]).toString("hex")}`)
      )
      assert.strictEqual((yield* python.exit).code, 0)
    }))
})

describe.skipIf(!hasEventmq)("EventMQ 0.3.13 reference", () => {
  it.live("imports on this Python", () =>
    Effect.gen(function*() {
      const out = yield* runPython(
        "import sys, eventmq, eventmq.router, eventmq.jobmanager, eventmq.scheduler, eventmq.pub, eventmq.client.messages\n" +
          "print(eventmq.__version__, sys.version_info[0], sys.version_info[1])"
      )
      assert.match(out.trim(), /^0\.3\.13 3 (8|9|10|11)$/)
    }))

  it.scopedLive("emq-router binds its sockets and ACKs a worker's INFORM", () =>
    Effect.gen(function*() {
      const [frontend, backend, admin] = [yield* freePort, yield* freePort, yield* freePort]
      yield* spawnEventmq("emq-router", {
        FRONTEND_ADDR: `tcp://127.0.0.1:${frontend}`,
        BACKEND_ADDR: `tcp://127.0.0.1:${backend}`,
        ADMINISTRATIVE_ADDR: `tcp://127.0.0.1:${admin}`
      })
      for (const port of [frontend, backend, admin]) {
        yield* tcpConnects(port).pipe(Effect.retry({ schedule: Schedule.spaced(Duration.millis(100)), times: 100 }))
      }

      // An ASCII identity: the Python 3 router cannot decode libzmq's binary auto ids.
      const worker = yield* Effect.acquireRelease(
        Effect.sync(() => new Zmq.Dealer({ routingId: `peers-test-${process.pid}`, linger: 0 })),
        (s) => Effect.sync(() => s.close())
      )
      worker.connect(`tcp://127.0.0.1:${backend}`)
      const informId = "11111111-2222-4333-8444-555555555555"
      yield* Effect.promise(() => worker.send(["", "eMQP/1.0", "INFORM", informId, "", "worker"]))
      const ack = yield* Effect.promise(() => worker.receive())
      const frames = ack.map((frame) => frame.toString())
      assert.strictEqual(frames.length, 5)
      assert.deepStrictEqual([frames[0], frames[1], frames[2], frames[4]], ["", "eMQP/1.0", "ACK", informId])
      assert.match(frames[3]!, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    }))
})

const goPeers = goPeerNames()

describe.skipIf(goPeers.length === 0)("Go peers", () => {
  for (const name of goPeers) {
    const built = requirePeer(`peers: go ${name}`, missingGoPeer(name))
    it.scopedLive.skipIf(!built)(`${name} is built and starts`, () =>
      Effect.gen(function*() {
        const peer = yield* spawnGoPeer(name)
        // Started if it is still running after a moment, or ended on its own (e.g. a usage message) without a
        // crash: a Go panic exits with code 2 and a goroutine dump.
        yield* Effect.sleep(Duration.millis(300))
        const stderr = (yield* peer.stderrTail).join("\n")
        assert.notMatch(stderr, /^(panic:|fatal error:)/m)
        assert.isAbove(peer.pid, 0)
      }))
  }
})
