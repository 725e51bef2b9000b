import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import * as Command from "../../src/emqp/Command.js"
import * as Headers from "../../src/emqp/Headers.js"
import { BrokerCore, type CoreOptions, defaultOptions, type Output, type SocketName } from "../../src/emqp/internal/brokerCore.js"

type Sent = { readonly socket: SocketName; readonly peer: string; readonly command: Command.Command }

/** Drives a core and records what it sends, by peer. */
class Harness {
  readonly core: BrokerCore
  now = 0
  readonly sent: Array<Sent> = []
  shutdown = false
  private counter = 0

  constructor(options: Partial<CoreOptions> = {}) {
    this.core = new BrokerCore({ ...defaultOptions, ...options })
  }

  private record(outputs: Array<Output>) {
    for (const o of outputs) {
      if (o._tag === "Send") this.sent.push(o)
      else if (o._tag === "Shutdown") this.shutdown = true
    }
    return outputs
  }

  id(prefix: string) {
    return `${prefix}-${++this.counter}`
  }

  in(socket: SocketName, peer: string, command: Command.Command) {
    return this.record(this.core.handle(socket, peer, command, this.now))
  }

  tick(ms: number) {
    this.now += ms
    return this.record(this.core.tick(this.now))
  }

  worker(peer: string, queues: ReadonlyArray<Command.Queue> = [], ready = 0) {
    this.in("backend", peer, Command.Inform.make({ msgid: this.id("inform"), queues, peerType: "worker" }))
    for (let i = 0; i < ready; i++) this.ready(peer)
  }

  ready(peer: string) {
    this.in("backend", peer, Command.Ready.make({ msgid: this.id("ready") }))
  }

  request(client: string, queue = "default", headers: Partial<Headers.Headers> = {}, payload = "[]") {
    const msgid = this.id("req")
    this.in("frontend", client, Command.Request.make({ msgid, queue, headers: Headers.make(headers), payload }))
    return msgid
  }

  result(worker: string, requestId: string, result = "{\"value\": 1}") {
    this.in("backend", worker, Command.Result.make({ msgid: this.id("res"), result, requestId }))
  }

  /** Commands sent to `peer` (optionally of one tag), and forgets them. */
  take<T extends Command.Command["_tag"]>(peer: string, tag?: T): Array<Extract<Command.Command, { _tag: T }>> {
    const out: Array<Extract<Command.Command, { _tag: T }>> = []
    for (let i = 0; i < this.sent.length; i++) {
      const s = this.sent[i]!
      if (s.peer === peer && (tag === undefined || s.command._tag === tag)) {
        out.push(s.command as Extract<Command.Command, { _tag: T }>)
        this.sent.splice(i--, 1)
      }
    }
    return out
  }

  /** Who got REQUEST `msgid`. */
  dispatchedTo(msgid: string): Array<string> {
    return this.sent.filter((s) => s.command._tag === "Request" && s.command.msgid === msgid).map((s) => s.peer)
  }
}

describe("BrokerCore: workers and dispatch", () => {
  it("INFORM is ACKed and followed by a HEARTBEAT (a Python job manager waits for it before READY)", () => {
    const h = new Harness()
    h.in("backend", "w1", Command.Inform.make({ msgid: "i-1", queues: [], peerType: "worker" }))
    const sent = h.take("w1")
    assert.deepStrictEqual(sent.map((c) => c._tag), ["Ack", "Heartbeat"])
    assert.strictEqual((sent[0] as Command.Ack).acked, "i-1")
  })

  it("a REQUEST goes to a worker with a free slot with the client's msgid, and the client gets a dispatch ack", () => {
    const h = new Harness()
    h.worker("w1", [], 1)
    h.take("w1")
    const msgid = h.request("c1", "default", {}, "[\"run\", {}]")
    const [forwarded] = h.take("w1", "Request")
    assert.strictEqual(forwarded!.msgid, msgid)
    assert.strictEqual(forwarded!.payload, "[\"run\", {}]")
    assert.deepStrictEqual(h.take("c1").map((c) => c._tag === "Reply" && c.body), [msgid])
  })

  it("highest weight first, then rotation among equal weights", () => {
    const h = new Harness()
    h.worker("low", [{ weight: 10, name: "q" }], 3)
    h.worker("a", [{ weight: 20, name: "q" }], 2)
    h.worker("b", [{ weight: 20, name: "q" }], 2)
    const order = Array.from({ length: 6 }, () => h.dispatchedTo(h.request("c", "q"))[0])
    assert.deepStrictEqual(order, ["a", "b", "a", "b", "low", "low"])
  })

  it("without free slots requests wait in FIFO order; READY serves the worker's queues in its own order", () => {
    const h = new Harness()
    h.worker("w", [{ weight: 10, name: "high" }, { weight: 50, name: "low" }])
    const l1 = h.request("c", "low")
    const h1 = h.request("c", "high")
    const h2 = h.request("c", "high")
    assert.lengthOf(h.take("c"), 0, "buffered requests are not acked yet")
    h.ready("w")
    h.ready("w")
    h.ready("w")
    assert.deepStrictEqual(h.take("w", "Request").map((r) => r.msgid), [h1, h2, l1])
    assert.deepStrictEqual(h.take("c").map((c) => c._tag === "Reply" && c.body), [h1, h2, l1])
  })

  it("a full buffer refuses with NACK queue-full: every request is dispatched, waiting or refused", () => {
    const h = new Harness({ queueCapacity: 3 })
    h.worker("w", [], 2)
    const ids = Array.from({ length: 10 }, () => h.request("c"))
    const acks = h.take("c", "Reply").map((r) => r.body)
    const nacks = h.take("c", "Nack")
    assert.deepStrictEqual(acks, ids.slice(0, 2))
    assert.deepStrictEqual(nacks.map((n) => n.requestId), ids.slice(5))
    assert.isTrue(nacks.every((n) => n.code === "queue-full"))
    for (let i = 0; i < 3; i++) h.ready("w")
    assert.deepStrictEqual(h.take("c", "Reply").map((r) => r.body), ids.slice(2, 5))
  })

  it("requests for a queue nobody announced go to the default queue", () => {
    const h = new Harness()
    h.worker("w", [], 1)
    const msgid = h.request("c", "nobody-serves-this")
    assert.deepStrictEqual(h.dispatchedTo(msgid), ["w"])
  })

  it("with no worker at all, a request for an unannounced queue waits in default, as the reference's does", () => {
    const h = new Harness()
    const msgid = h.request("c", "reports")
    assert.lengthOf(h.take("c"), 0, "buffered: no dispatch ack yet")
    h.worker("w", [], 1)
    assert.deepStrictEqual(h.dispatchedTo(msgid), ["w"])
    const [forwarded] = h.take("w", "Request")
    assert.strictEqual(forwarded!.queue, "reports", "the queue frame is forwarded unchanged")
    assert.deepStrictEqual(h.take("c").map((c) => c._tag === "Reply" && c.body), [msgid])
  })

  it("a request waiting in default follows its own queue once a worker announces it (a client started first)", () => {
    const h = new Harness()
    const invoice = h.request("c", "invoices")
    const other = h.request("c", "reports")
    h.worker("late-invoices", [{ weight: 10, name: "invoices" }], 1)
    assert.deepStrictEqual(h.dispatchedTo(invoice), ["late-invoices"])
    assert.deepStrictEqual(h.dispatchedTo(other), [], "a queue still unannounced keeps waiting in default")
    h.worker("w", [], 1)
    assert.deepStrictEqual(h.dispatchedTo(other), ["w"])
  })

  it("a queue whose last worker left is unannounced again: its new requests go to default", () => {
    const h = new Harness()
    h.worker("inv", [{ weight: 10, name: "invoices" }], 1)
    h.worker("w", [], 1)
    assert.deepStrictEqual(h.dispatchedTo(h.request("c", "invoices")), ["inv"])
    h.in("backend", "inv", Command.Kbye.make({ msgid: h.id("kbye") }))
    assert.deepStrictEqual(h.dispatchedTo(h.request("c", "invoices")), ["w"])
  })

  it("messages from a worker that never INFORMed are ignored", () => {
    const h = new Harness()
    h.ready("ghost")
    h.request("c")
    assert.lengthOf(h.dispatchedTo("req-1"), 0)
    assert.lengthOf(h.take("c"), 0)
  })
})

describe("BrokerCore: results, guarantee, retries, deadlines", () => {
  it("forwards the worker's result to the client when reply-requested, not otherwise", () => {
    const h = new Harness()
    h.worker("w", [], 2)
    const wanted = h.request("c", "default", { replyRequested: true })
    const plain = h.request("c")
    h.result("w", wanted, "{\"value\": 42}")
    h.result("w", plain)
    const results = h.take("c", "Result")
    assert.deepStrictEqual(results.map((r) => [r.requestId, r.result]), [[wanted, "{\"value\": 42}"]])
  })

  it("a guaranteed job whose worker dies is re-dispatched to another worker (asked for its REPLY)", () => {
    const h = new Harness({ peerTimeout: 5_000 })
    h.worker("doomed", [], 1)
    const msgid = h.request("c", "default", { guarantee: true })
    const [first] = h.take("doomed", "Request")
    assert.isTrue(first!.headers.replyRequested, "the broker asks for the REPLY to know when the job ends")
    h.worker("rescuer", [], 0)
    h.tick(3_000)
    h.in("backend", "rescuer", Command.Heartbeat.make({ msgid: "hb", timestamp: "0" }))
    h.tick(2_000) // doomed silent for 5 s: reaped, job waits for a slot
    h.ready("rescuer")
    assert.deepStrictEqual(h.dispatchedTo(msgid), ["rescuer"])
    assert.deepStrictEqual(h.take("c", "Reply").map((r) => r.body), [msgid], "acked once, not again on retry")
    h.result("rescuer", msgid)
    assert.lengthOf(h.take("c", "Result"), 0, "the client did not ask for the result")
  })

  it("KBYE with a job in flight: retry-count retries, reply-requested alone gets NACK worker-lost", () => {
    const h = new Harness()
    h.worker("w1", [], 2)
    h.worker("w2", [], 1)
    const retried = h.request("c", "default", { retryCount: 1 })
    const lost = h.request("c", "default", { replyRequested: true })
    assert.deepStrictEqual([h.dispatchedTo(retried), h.dispatchedTo(lost)], [["w1"], ["w2"]])
    h.sent.length = 0
    h.in("backend", "w2", Command.Kbye.make({ msgid: "bye" }))
    const [nack] = h.take("c", "Nack")
    assert.deepStrictEqual([nack!.requestId, nack!.code], [lost, "worker-lost"])
    h.in("backend", "w1", Command.Kbye.make({ msgid: "bye" }))
    h.worker("w3", [], 1)
    assert.deepStrictEqual(h.dispatchedTo(retried), ["w3"])
  })

  it("retry-count retries failed results (an error key), then forwards the last result", () => {
    const h = new Harness()
    h.worker("w", [], 3)
    const msgid = h.request("c", "default", { replyRequested: true, retryCount: 1 })
    h.result("w", msgid, "{\"value\": null, \"error\": {\"message\": \"boom\"}}")
    assert.lengthOf(h.take("c", "Result"), 0)
    assert.lengthOf(h.dispatchedTo(msgid), 2)
    h.result("w", msgid, "{\"value\": null, \"error\": {\"message\": \"boom again\"}}")
    const [final] = h.take("c", "Result")
    assert.include(final!.result, "boom again")
  })

  it("timeout:N gives up N seconds (plus grace) after dispatch with NACK timeout", () => {
    const h = new Harness({ resultGrace: 1_000 })
    h.worker("w", [], 1)
    const msgid = h.request("c", "default", { replyRequested: true, timeout: 2 })
    h.tick(2_500)
    assert.lengthOf(h.take("c", "Nack"), 0)
    h.in("backend", "w", Command.Heartbeat.make({ msgid: "hb", timestamp: "0" }))
    h.tick(600)
    const [nack] = h.take("c", "Nack")
    assert.deepStrictEqual([nack!.requestId, nack!.code], [msgid, "timeout"])
    h.result("w", msgid)
    assert.lengthOf(h.take("c", "Result"), 0, "a late result is dropped")
  })
})

describe("BrokerCore: heartbeats", () => {
  it("heartbeats workers and schedulers every interval and reaps silent ones", () => {
    const h = new Harness({ heartbeatInterval: 3_000, peerTimeout: 10_000 })
    h.worker("alive", [], 1)
    h.worker("silent", [], 1)
    h.in("frontend", "sched", Command.Inform.make({ msgid: "s", queues: [], peerType: "scheduler" }))
    h.sent.length = 0
    for (let t = 0; t < 12; t++) {
      h.tick(1_000)
      h.in("backend", "alive", Command.Heartbeat.make({ msgid: `hb${t}`, timestamp: "0" }))
      h.in("frontend", "sched", Command.Heartbeat.make({ msgid: `shb${t}`, timestamp: "0" }))
    }
    assert.strictEqual(h.take("alive", "Heartbeat").length, 4) // at 1, 4, 7, 10 s
    assert.strictEqual(h.take("sched", "Heartbeat").length, 4)
    assert.strictEqual(h.take("silent", "Heartbeat").length, 3, "reaped at 10 s, before that tick's heartbeats")
    const msgid = h.request("c")
    assert.deepStrictEqual(h.dispatchedTo(msgid), ["alive"])
    h.request("c")
    assert.lengthOf(h.sent.filter((s) => s.peer === "silent"), 0)
  })
})

describe("BrokerCore: schedulers", () => {
  const schedule = (msgid: string) =>
    Command.Schedule.make({ msgid, queue: "default", headers: Headers.empty, interval: 60, payload: "[]", cron: "" })

  it("SCHEDULE round-robin over schedulers, UNSCHEDULE to all, NACK no-scheduler when none", () => {
    const h = new Harness()
    h.in("frontend", "c", schedule("s0"))
    assert.deepStrictEqual(h.take("c", "Nack").map((n) => [n.requestId, n.code]), [["s0", "no-scheduler"]])
    for (const id of ["s1", "s2"]) {
      h.in("frontend", id, Command.Inform.make({ msgid: `i-${id}`, queues: [], peerType: "scheduler" }))
      assert.deepStrictEqual(h.take(id).map((c) => c._tag), ["Ack"])
    }
    for (let i = 1; i <= 4; i++) h.in("frontend", "c", schedule(`job${i}`))
    assert.deepStrictEqual(h.take("s1", "Schedule").map((s) => s.msgid), ["job1", "job3"])
    assert.deepStrictEqual(h.take("s2", "Schedule").map((s) => s.msgid), ["job2", "job4"])
    const { _tag, ...fields } = schedule("u")
    h.in("frontend", "c", Command.Unschedule.make({ ...fields, interval: -1 }))
    assert.lengthOf(h.take("s1", "Unschedule"), 1)
    assert.lengthOf(h.take("s2", "Unschedule"), 1)
    h.in("frontend", "s1", Command.Kbye.make({ msgid: "bye" }))
    h.in("frontend", "c", schedule("job5"))
    assert.lengthOf(h.take("s2", "Schedule"), 1)
  })
})

describe("BrokerCore: admin and shutdown", () => {
  it("STATUS and ROUTER_SHOW_WORKERS answer JSON with the reference's keys", () => {
    const h = new Harness()
    h.worker("w", [{ weight: 15, name: "email" }], 2)
    h.request("c", "email")
    h.in("admin", "cli", Command.Status.make({ msgid: "admin:1", subCommand: "" }))
    h.in("admin", "cli", Command.ShowWorkers.make({ msgid: "admin:2" }))
    h.in("admin", "cli", Command.Hello.make({ msgid: "admin:3" }))
    const [status, workers] = h.take("cli", "Reply").map((r) => JSON.parse(r.body))
    assert.deepStrictEqual(status.processed_messages_by_queue, { email: 1 })
    assert.deepStrictEqual(status.processed_messages_by_worker, { w: 1 })
    assert.deepStrictEqual(workers.connected_workers.w.queues, [[15, "email"]])
    assert.strictEqual(workers.connected_workers.w.available_slots, 1)
    assert.deepStrictEqual(workers.connected_queues.email, [[15, "w"]])
  })

  it("admin DISCONNECT: ACK, KBYE to schedulers and workers, NACK shutdown to waiting requests, then stop", () => {
    const h = new Harness()
    h.worker("w", [], 0)
    h.in("frontend", "s", Command.Inform.make({ msgid: "i", queues: [], peerType: "scheduler" }))
    const waiting = h.request("c")
    h.sent.length = 0
    h.in("admin", "cli", Command.Disconnect.make({ msgid: "admin:d" }))
    assert.deepStrictEqual(h.take("cli").map((c) => c._tag === "Ack" && c.acked), ["admin:d"])
    assert.deepStrictEqual(h.take("s").map((c) => c._tag), ["Kbye"])
    assert.deepStrictEqual(h.take("w").map((c) => c._tag), ["Kbye"])
    assert.deepStrictEqual(h.take("c", "Nack").map((n) => [n.requestId, n.code]), [[waiting, "shutdown"]])
    assert.isTrue(h.shutdown)
    h.request("c")
    assert.lengthOf(h.sent, 0, "a stopped broker sends nothing")
  })

  it("DISCONNECT on the frontend is ignored unless configured", () => {
    const h = new Harness()
    h.in("frontend", "c", Command.Disconnect.make({ msgid: "d" }))
    assert.isFalse(h.shutdown)
    const obeying = new Harness({ frontendDisconnect: true })
    obeying.in("frontend", "c", Command.Disconnect.make({ msgid: "d" }))
    assert.isTrue(obeying.shutdown)
  })
})

describe("BrokerCore: properties", () => {
  const op = FastCheck.oneof(
    FastCheck.record({ _tag: FastCheck.constant("inform" as const), worker: FastCheck.integer({ min: 0, max: 3 }) }),
    FastCheck.record({ _tag: FastCheck.constant("ready" as const), worker: FastCheck.integer({ min: 0, max: 3 }) }),
    FastCheck.record({ _tag: FastCheck.constant("kbye" as const), worker: FastCheck.integer({ min: 0, max: 3 }) }),
    FastCheck.record({
      _tag: FastCheck.constant("request" as const),
      guarantee: FastCheck.boolean(),
      reply: FastCheck.boolean()
    }),
    FastCheck.record({ _tag: FastCheck.constant("finish" as const), index: FastCheck.nat() }),
    FastCheck.record({ _tag: FastCheck.constant("tick" as const), ms: FastCheck.integer({ min: 0, max: 4_000 }) })
  )

  it.prop("no request disappears: each is acked, refused or still waiting; guaranteed jobs are never given up", [
    FastCheck.array(op, { maxLength: 120 })
  ], ([ops]) => {
    const h = new Harness({ queueCapacity: 5, peerTimeout: 6_000 })
    const requests: Array<{ msgid: string; guarantee: boolean }> = []
    const running: Array<{ worker: string; msgid: string }> = []
    for (const o of ops) {
      switch (o._tag) {
        case "inform":
          h.worker(`w${o.worker}`)
          break
        case "ready":
          h.ready(`w${o.worker}`)
          break
        case "kbye":
          h.in("backend", `w${o.worker}`, Command.Kbye.make({ msgid: h.id("bye") }))
          break
        case "request":
          requests.push({ msgid: h.request("c", "default", { guarantee: o.guarantee, replyRequested: o.reply }), guarantee: o.guarantee })
          break
        case "finish": {
          const job = running.splice(o.index % Math.max(running.length, 1), 1)[0]
          if (job) h.result(job.worker, job.msgid)
          break
        }
        case "tick":
          h.tick(o.ms)
          break
      }
      for (const s of h.sent) if (s.command._tag === "Request") running.push({ worker: s.peer, msgid: s.command.msgid })
      h.sent.splice(0, h.sent.length, ...h.sent.filter((s) => s.command._tag !== "Request"))
    }
    const acked = new Set(h.take("c", "Reply").map((r) => r.body))
    const nacks = h.take("c", "Nack")
    const refused = new Set(nacks.map((n) => n.requestId))
    h.in("admin", "cli", Command.Status.make({ msgid: "s", subCommand: "" }))
    const status = JSON.parse(h.take("cli", "Reply")[0]!.body)
    const waiting = Object.values(status.waiting_messages_by_queue as Record<string, number>).reduce((a, b) => a + b, 0)
    const neverAcked = requests.filter((r) => !acked.has(r.msgid) && !refused.has(r.msgid))
    // Waiting = never dispatched yet + guaranteed jobs queued again after their worker died.
    assert.isAtMost(neverAcked.length, waiting, "a request neither acked nor refused is waiting")
    assert.isAtMost(waiting, requests.length - refused.size)
    for (const nack of nacks) {
      const request = requests.find((r) => r.msgid === nack.requestId)!
      assert.isFalse(request.guarantee && nack.code === "worker-lost")
    }
  }, { fastCheck: { numRuns: 300 } })
})
