/**
 * The broker as a state machine: commands and clock ticks in, commands to send out. No I/O, no fibers, time is
 * an argument, so every rule can be tested by feeding it messages.
 *
 * Behaviour is the 0.3.13 router's where peers can observe it (queues with weights, rotation among equal
 * weights, one slot per READY, waiting buffers served in the worker's queue order, dispatch-ack REPLY,
 * heartbeats, KBYE, schedulers, admin answers), plus what the reference lacks:
 *
 * - a full waiting buffer refuses the request with `NACK queue-full` instead of dropping it;
 * - buffered requests are acknowledged when they are dispatched;
 * - job results are forwarded to clients that asked for them (`reply-requested`);
 * - `guarantee` and `retry-count:N` re-dispatch jobs whose worker died; `retry-count:N` also retries jobs that
 *   failed (result with an `error` key) or passed their `timeout:N` deadline; clients that wait are told when
 *   the broker gives up (`NACK worker-lost` / `timeout`);
 * - SCHEDULE is spread round-robin over schedulers, `NACK no-scheduler` when there is none;
 * - DISCONNECT is obeyed on the admin socket only (configurable);
 * - waiting requests are refused with `NACK shutdown` on shutdown instead of being discarded.
 *
 * Commands built here are valid by construction: `make(…, true)` skips re-validating them, and the ones sent per
 * job are plain literals of the command types.
 */
import * as Either from "effect/Either"
import * as Schema from "effect/Schema"
import * as Command from "../Command.js"
import type { EmqpError } from "../EmqpError.js"
import * as Headers from "../Headers.js"
import { Deque } from "./deque.js"

export type SocketName = "frontend" | "backend" | "admin"

export type Output =
  | {
    readonly _tag: "Send"
    readonly socket: SocketName
    readonly peer: string
    readonly command: Command.Command
    /** For a REQUEST to a worker: the request, to route again if the worker is unreachable. */
    readonly pending?: Pending | undefined
  }
  | { readonly _tag: "Log"; readonly level: "Debug" | "Info" | "Warning"; readonly message: string }
  | { readonly _tag: "Shutdown" }

export interface CoreOptions {
  /** Queues of a worker whose INFORM lists none. */
  readonly defaultQueues: ReadonlyArray<Command.Queue>
  /** Where requests for a queue no worker serves go (the reference: `default`). */
  readonly defaultQueueName: string
  /** Waiting requests per queue before new ones are refused. */
  readonly queueCapacity: number
  /** Milliseconds between HEARTBEATs to workers and schedulers. */
  readonly heartbeatInterval: number
  /** Milliseconds of silence after which a worker or scheduler is dead. */
  readonly peerTimeout: number
  /** Milliseconds added to a job's `timeout:N` before the broker gives up on its result. */
  readonly resultGrace: number
  /** Obey DISCONNECT from the frontend too, as the reference does. */
  readonly frontendDisconnect: boolean
}

export const defaultOptions: CoreOptions = {
  defaultQueues: [{ weight: 10, name: "default" }],
  defaultQueueName: "default",
  queueCapacity: 10_000,
  heartbeatInterval: 3_000,
  peerTimeout: 10_000,
  resultGrace: 5_000,
  frontendDisconnect: false
}

interface Worker {
  readonly id: string
  queues: ReadonlyArray<Command.Queue>
  lastSeen: number
  slots: number
  /** Tracked jobs running on this worker. */
  readonly jobs: Set<string>
  processed: number
}

interface Entry {
  readonly weight: number
  readonly worker: string
}

/** A request on its way: waiting in a buffer, or running (then it is tracked in `jobs`). */
export interface Pending {
  readonly client: string
  readonly request: Command.Request
  readonly queue: string
  /** 1 for the first dispatch. */
  readonly attempt: number
  /** The client got its dispatch ack already (retries are not acked again). */
  readonly acked: boolean
  readonly enqueuedAt: number
}

interface Job extends Pending {
  readonly worker: string
  readonly dispatchedAt: number
  readonly deadline: number | undefined
}

interface Scheduler {
  lastSeen: number
}

const tracked = (h: Headers.Headers) => h.replyRequested || h.guarantee || h.retryCount > 0 || h.timeout > 0

const decodeFailure = Schema.decodeUnknownEither(Schema.parseJson(Schema.Struct({ error: Schema.Unknown })))
const isFailure = (result: string) => Either.isRight(decodeFailure(result))

export class BrokerCore {
  private readonly workers = new Map<string, Worker>()
  private readonly queues = new Map<string, Array<Entry>>()
  private readonly waiting = new Map<string, Deque<Pending>>()
  private readonly jobs = new Map<string, Job>()
  private readonly schedulers = new Map<string, Scheduler>()
  private schedulerTurn = 0
  private lastHeartbeat = Number.NEGATIVE_INFINITY
  private out: Array<Output> = []
  private stopped = false
  private readonly processedByQueue = new Map<string, number>()
  private readonly latency = new Map<string, { last: number; max: number }>()

  constructor(readonly options: CoreOptions = defaultOptions) {
    for (const queue of options.defaultQueues) this.queues.set(queue.name, [])
    if (!this.queues.has(options.defaultQueueName)) this.queues.set(options.defaultQueueName, [])
  }

  get isStopped(): boolean {
    return this.stopped
  }

  // -------------------------------------------------------------------------------------------------------------
  // inputs
  // -------------------------------------------------------------------------------------------------------------

  /** A decoded command from `peer` on `socket`. */
  handle(socket: SocketName, peer: string, command: Command.Command, now: number): Array<Output> {
    if (!this.stopped) {
      switch (socket) {
        case "frontend":
          this.onFrontend(peer, command, now)
          break
        case "backend":
          this.onBackend(peer, command, now)
          break
        case "admin":
          this.onAdmin(peer, command, now)
          break
      }
    }
    return this.flush()
  }

  /** A message that did not decode: logged; the peer still counts as alive. */
  malformed(socket: SocketName, peer: string, error: EmqpError, now: number): Array<Output> {
    const worker = socket === "backend" ? this.workers.get(peer) : undefined
    if (worker) worker.lastSeen = now
    const scheduler = socket === "frontend" ? this.schedulers.get(peer) : undefined
    if (scheduler) scheduler.lastSeen = now
    this.log("Warning", `ignored a message from ${printable(peer)} on ${socket}: ${error.message}`)
    return this.flush()
  }

  /** Heartbeats, reaping of silent peers and job deadlines; call it about once a second. */
  tick(now: number): Array<Output> {
    if (this.stopped) return this.flush()
    for (const worker of [...this.workers.values()]) {
      if (now - worker.lastSeen >= this.options.peerTimeout) this.removeWorker(worker, "silent", now)
    }
    for (const [id, scheduler] of [...this.schedulers]) {
      if (now - scheduler.lastSeen >= this.options.peerTimeout) {
        this.removeScheduler(id)
        this.log("Info", `scheduler ${printable(id)} is silent, removed`)
      }
    }
    if (now - this.lastHeartbeat >= this.options.heartbeatInterval) {
      this.lastHeartbeat = now
      const timestamp = (now / 1000).toFixed(3)
      for (const id of this.workers.keys()) this.heartbeat("backend", id, timestamp)
      for (const id of this.schedulers.keys()) this.heartbeat("frontend", id, timestamp)
    }
    for (const job of [...this.jobs.values()]) {
      if (job.deadline !== undefined && now >= job.deadline) {
        this.untrack(job)
        this.log("Warning", `job ${job.request.msgid} on ${printable(job.worker)} passed its deadline`)
        this.retryOrGiveUp(job, job.attempt <= job.request.headers.retryCount, "timeout", now)
      }
    }
    return this.flush()
  }

  /**
   * A send failed because the peer is gone (`EHOSTUNREACH`): forget the worker or scheduler, and route a
   * REQUEST that was on its way to it again (as the reference does).
   */
  unreachable(output: Extract<Output, { _tag: "Send" }>, now: number): Array<Output> {
    if (this.stopped) return this.flush()
    if (output.socket === "backend") {
      const worker = this.workers.get(output.peer)
      const pending = output.pending
      if (pending) {
        const job = this.jobs.get(pending.request.msgid)
        if (job && job.worker === output.peer) this.untrack(job)
      }
      if (worker) this.removeWorker(worker, "is unreachable", now)
      if (pending) this.route({ ...pending, acked: true }, now, true)
    } else if (output.socket === "frontend" && this.schedulers.has(output.peer)) {
      this.removeScheduler(output.peer)
      this.log("Info", `scheduler ${printable(output.peer)} is unreachable, removed`)
    }
    return this.flush()
  }

  /** Shuts down as on an admin DISCONNECT (without the ACK). */
  shutdown(): Array<Output> {
    if (!this.stopped) this.stop()
    return this.flush()
  }

  // -------------------------------------------------------------------------------------------------------------
  // sockets
  // -------------------------------------------------------------------------------------------------------------

  private onFrontend(peer: string, command: Command.Command, now: number): void {
    const scheduler = this.schedulers.get(peer)
    if (scheduler) scheduler.lastSeen = now
    switch (command._tag) {
      case "Request":
        return this.onRequest(peer, command, now)
      case "Schedule":
        return this.onSchedule(peer, command)
      case "Unschedule":
        for (const id of this.schedulers.keys()) this.send("frontend", id, command)
        return
      case "Inform":
        if (command.peerType !== "scheduler") {
          return this.log("Warning", `ignored a worker INFORM from ${printable(peer)} on the frontend`)
        }
        if (!scheduler) this.schedulers.set(peer, { lastSeen: now })
        this.log("Info", `scheduler ${printable(peer)} joined`)
        this.send("frontend", peer, Command.Ack.make({ msgid: Command.unsafeMessageId(), acked: command.msgid }, true))
        return
      case "Kbye":
        if (scheduler) {
          this.removeScheduler(peer)
          this.log("Info", `scheduler ${printable(peer)} left`)
        }
        return
      case "Heartbeat":
        return
      case "Disconnect":
        if (this.options.frontendDisconnect) return this.stop()
        return this.log("Warning", `ignored DISCONNECT from ${printable(peer)} on the frontend`)
      default:
        return this.log("Debug", `ignored ${command._tag} from ${printable(peer)} on the frontend`)
    }
  }

  private onBackend(peer: string, command: Command.Command, now: number): void {
    if (command._tag === "Inform") return this.onInform(peer, command, now)
    const worker = this.workers.get(peer)
    if (!worker) {
      return this.log("Warning", `ignored ${command._tag} from unknown worker ${printable(peer)}`)
    }
    worker.lastSeen = now
    switch (command._tag) {
      case "Ready":
        return this.onReady(worker, now)
      case "Result":
        return this.onResult(worker, command, now)
      case "Heartbeat":
        return
      case "Kbye":
        return this.removeWorker(worker, "said goodbye", now)
      default:
        return this.log("Debug", `ignored ${command._tag} from worker ${printable(peer)}`)
    }
  }

  private onAdmin(peer: string, command: Command.Command, now: number): void {
    switch (command._tag) {
      case "Status":
        return this.answer(peer, this.status(now))
      case "ShowWorkers":
        return this.answer(peer, this.showWorkers())
      case "ShowSchedulers":
        return this.answer(peer, this.showSchedulers())
      case "Disconnect":
        this.send("admin", peer, Command.Ack.make({ msgid: Command.unsafeMessageId(), acked: command.msgid }, true))
        return this.stop()
      default:
        return
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // workers and jobs
  // -------------------------------------------------------------------------------------------------------------

  private onInform(peer: string, command: Command.Inform, now: number): void {
    if (command.peerType !== "worker") {
      return this.log("Warning", `ignored a scheduler INFORM from ${printable(peer)} on the backend`)
    }
    const queues = command.queues.length === 0 ? this.options.defaultQueues : command.queues
    const known = this.workers.get(peer)
    if (known) {
      // A worker restarting its conversation: same record (its running jobs stay), new queues, no slots.
      this.unlist(known)
      known.queues = queues
      known.slots = 0
      known.lastSeen = now
    } else {
      this.workers.set(peer, { id: peer, queues, lastSeen: now, slots: 0, jobs: new Set(), processed: 0 })
    }
    for (const queue of queues) {
      const entries = this.queues.get(queue.name) ?? []
      entries.push({ weight: queue.weight, worker: peer })
      sortByWeight(entries)
      this.queues.set(queue.name, entries)
    }
    this.reclaimFromDefault(queues, now)
    this.log("Info", `worker ${printable(peer)} joined with queues ${queues.map((q) => `${q.name}:${q.weight}`).join(",")}`)
    this.send("backend", peer, Command.Ack.make({ msgid: Command.unsafeMessageId(), acked: command.msgid }, true))
    // The reference job manager starts its worker processes (and sends READY) on the first HEARTBEAT it gets.
    this.heartbeat("backend", peer, (now / 1000).toFixed(3))
  }

  /**
   * Requests that wait in the default queue only because nobody served their own queue when they came follow
   * their queue once a worker announces it. The reference leaves them in `default`, where they wait for ever when
   * no worker serves `default`: a client that starts before its worker would never be served.
   */
  private reclaimFromDefault(queues: ReadonlyArray<Command.Queue>, now: number): void {
    const fallback = this.waiting.get(this.options.defaultQueueName)
    if (!fallback || fallback.size === 0) return
    const announced = new Set(queues.map((queue) => queue.name))
    announced.delete(this.options.defaultQueueName)
    if (announced.size === 0) return
    const stay: Array<Pending> = []
    for (const pending of fallback.drain()) {
      if (announced.has(pending.request.queue)) this.route({ ...pending, queue: pending.request.queue }, now, false)
      else stay.push(pending)
    }
    for (const pending of stay) fallback.push(pending)
  }

  private onReady(worker: Worker, now: number): void {
    for (const queue of worker.queues) {
      const pending = this.waiting.get(queue.name)?.shift()
      if (pending) return this.dispatch(pending, worker, now)
    }
    worker.slots++
  }

  private onRequest(client: string, request: Command.Request, now: number): void {
    // As the reference: a queue no worker serves is the default queue (its job managers run whatever they are
    // sent); the request waits there if need be, and is forwarded with its queue frame unchanged.
    const served = (this.queues.get(request.queue)?.length ?? 0) > 0
    const queue = served ? request.queue : this.options.defaultQueueName
    if (!served && queue !== request.queue) {
      this.log("Debug", `no worker serves queue ${request.queue}: ${request.msgid} goes to ${queue}`)
    }
    this.route({ client, request, queue, attempt: 1, acked: false, enqueuedAt: now }, now, false)
  }

  /** Dispatches to a free worker, or buffers (at the front for retries); refuses when the buffer is full. */
  private route(pending: Pending, now: number, front: boolean): void {
    const worker = this.availableWorker(pending.queue)
    if (worker) return this.dispatch(pending, worker, now)
    let buffer = this.waiting.get(pending.queue)
    if (!buffer) {
      buffer = new Deque(this.options.queueCapacity)
      this.waiting.set(pending.queue, buffer)
    }
    if (front ? buffer.unshift(pending) : buffer.push(pending)) return
    this.log("Warning", `queue ${pending.queue} is full (${buffer.size}), refused ${pending.request.msgid}`)
    this.nack(pending, "queue-full", `queue ${pending.queue} has ${buffer.size} waiting requests`)
  }

  /** The 0.3.13 choice: highest weight first, rotation among equal weights. */
  private availableWorker(queue: string): Worker | undefined {
    const entries = this.queues.get(queue)
    if (!entries || entries.length === 0) return undefined
    let found: Worker | undefined
    let scanned = 0
    while (scanned < entries.length) {
      const worker = this.workers.get(entries[scanned]!.worker)
      scanned++
      if (worker && worker.slots > 0) {
        found = worker
        break
      }
    }
    if (!found) return undefined
    // Move the scanned entries to the back, then restore the weight order (stable): rotation among equals.
    const rotated = entries.splice(0, scanned)
    entries.push(...rotated)
    sortByWeight(entries)
    found.slots--
    return found
  }

  private dispatch(pending: Pending, worker: Worker, now: number): void {
    const { request } = pending
    const isTracked = tracked(request.headers)
    // A tracked job needs the worker's REPLY to know when it ends: ask for it even if the client did not.
    const forwarded = isTracked && !request.headers.replyRequested
      ? Command.Request.make({ ...request, headers: { ...request.headers, replyRequested: true } }, true)
      : request
    this.out.push({ _tag: "Send", socket: "backend", peer: worker.id, command: forwarded, pending })
    if (!pending.acked) {
      this.send("frontend", pending.client, { _tag: "Reply", msgid: Command.unsafeMessageId(), body: request.msgid })
    }
    if (isTracked) {
      const timeout = request.headers.timeout
      this.jobs.set(request.msgid, {
        ...pending,
        acked: true,
        worker: worker.id,
        dispatchedAt: now,
        deadline: timeout > 0 ? now + timeout * 1000 + this.options.resultGrace : undefined
      })
      worker.jobs.add(request.msgid)
    }
    worker.processed++
    this.processedByQueue.set(pending.queue, (this.processedByQueue.get(pending.queue) ?? 0) + 1)
  }

  private onResult(worker: Worker, result: Command.Result, now: number): void {
    const job = this.jobs.get(result.requestId)
    if (!job || job.worker !== worker.id) {
      return this.log("Debug", `result for untracked job ${result.requestId} from ${printable(worker.id)}`)
    }
    this.untrack(job)
    this.recordLatency(job.queue, now - job.dispatchedAt)
    const headers = job.request.headers
    if (headers.retryCount > 0 && job.attempt <= headers.retryCount && isFailure(result.result)) {
      this.log("Info", `job ${job.request.msgid} failed on attempt ${job.attempt}, retrying`)
      return this.route({ ...job, attempt: job.attempt + 1 }, now, true)
    }
    if (headers.replyRequested) {
      this.send(
        "frontend",
        job.client,
        { _tag: "Result", msgid: Command.unsafeMessageId(), result: result.result, requestId: job.request.msgid }
      )
    }
  }

  private retryOrGiveUp(job: Job, retry: boolean, code: "worker-lost" | "timeout", now: number): void {
    if (retry) return this.route({ ...job, attempt: job.attempt + 1 }, now, true)
    this.nack(job, code, `job ${job.request.msgid} gave up after ${job.attempt} attempt(s)`)
  }

  private untrack(job: Job): void {
    this.jobs.delete(job.request.msgid)
    this.workers.get(job.worker)?.jobs.delete(job.request.msgid)
  }

  private removeWorker(worker: Worker, why: string, now: number): void {
    this.workers.delete(worker.id)
    this.unlist(worker)
    this.log("Info", `worker ${printable(worker.id)} ${why}, removed with ${worker.jobs.size} tracked job(s)`)
    for (const msgid of worker.jobs) {
      const job = this.jobs.get(msgid)
      if (!job) continue
      this.jobs.delete(msgid)
      const headers = job.request.headers
      this.retryOrGiveUp(job, headers.guarantee || job.attempt <= headers.retryCount, "worker-lost", now)
    }
  }

  private unlist(worker: Worker): void {
    for (const queue of worker.queues) {
      const entries = this.queues.get(queue.name)
      if (!entries) continue
      for (let i = entries.length - 1; i >= 0; i--) if (entries[i]!.worker === worker.id) entries.splice(i, 1)
    }
  }

  private recordLatency(queue: string, latency: number): void {
    const stats = this.latency.get(queue)
    if (stats) {
      stats.last = latency
      stats.max = Math.max(stats.max, latency)
    } else {
      this.latency.set(queue, { last: latency, max: latency })
    }
  }

  // -------------------------------------------------------------------------------------------------------------
  // schedulers
  // -------------------------------------------------------------------------------------------------------------

  private onSchedule(client: string, command: Command.Schedule): void {
    const ids = [...this.schedulers.keys()]
    if (ids.length === 0) {
      this.log("Warning", `no scheduler for SCHEDULE ${command.msgid}`)
      this.send(
        "frontend",
        client,
        Command.Nack.make({
          msgid: Command.unsafeMessageId(),
          requestId: command.msgid,
          code: "no-scheduler",
          detail: "no scheduler is connected"
        }, true)
      )
      return
    }
    const id = ids[this.schedulerTurn++ % ids.length]!
    this.send("frontend", id, command)
  }

  private removeScheduler(id: string): void {
    this.schedulers.delete(id)
  }

  // -------------------------------------------------------------------------------------------------------------
  // shutdown, admin
  // -------------------------------------------------------------------------------------------------------------

  private stop(): void {
    this.stopped = true
    const kbye = () => Command.Kbye.make({ msgid: Command.unsafeMessageId() }, true)
    for (const id of this.schedulers.keys()) this.send("frontend", id, kbye())
    for (const buffer of this.waiting.values()) {
      for (const pending of buffer.drain()) this.nack(pending, "shutdown", "the broker is shutting down")
    }
    for (const id of this.workers.keys()) this.send("backend", id, kbye())
    this.log("Info", "shutting down")
    this.out.push({ _tag: "Shutdown" })
  }

  /** The admin STATUS answer. */
  status(now: number) {
    const inflight: Record<string, number> = {}
    for (const job of this.jobs.values()) inflight[job.queue] = (inflight[job.queue] ?? 0) + 1
    const waiting: Record<string, number> = {}
    for (const [name, buffer] of this.waiting) waiting[name] = buffer.size
    const processedByWorker: Record<string, number> = {}
    for (const worker of this.workers.values()) processedByWorker[worker.id] = worker.processed
    return {
      inflight_messages_by_queue: inflight,
      latency_messages_by_queue: Object.fromEntries([...this.latency].map(([q, s]) => [q, s.last])),
      max_latency_messages_by_queue: Object.fromEntries([...this.latency].map(([q, s]) => [q, s.max])),
      waiting_messages_by_queue: waiting,
      processed_messages_by_queue: Object.fromEntries(this.processedByQueue),
      processed_messages_by_worker: processedByWorker,
      time: now / 1000
    }
  }

  /** The admin ROUTER_SHOW_WORKERS answer. */
  showWorkers() {
    return {
      connected_workers: Object.fromEntries(
        [...this.workers.values()].map((w) => [
          w.id,
          { queues: w.queues.map((q) => [q.weight, q.name]), hb: w.lastSeen / 1000, available_slots: w.slots }
        ])
      ),
      connected_queues: Object.fromEntries(
        [...this.queues].map(([name, entries]) => [name, entries.map((e) => [e.weight, e.worker])])
      )
    }
  }

  /** The admin ROUTER_SHOW_SCHEDULERS answer. */
  showSchedulers() {
    return {
      connected_schedulers: Object.fromEntries([...this.schedulers].map(([id, s]) => [id, { hb: s.lastSeen / 1000 }]))
    }
  }

  private answer(peer: string, body: unknown): void {
    this.send("admin", peer, Command.Reply.make({ msgid: Command.unsafeMessageId(), body: JSON.stringify(body) }, true))
  }

  // -------------------------------------------------------------------------------------------------------------
  // output
  // -------------------------------------------------------------------------------------------------------------

  private nack(pending: Pending, code: Command.NackCode, detail: string): void {
    this.send(
      "frontend",
      pending.client,
      Command.Nack.make({ msgid: Command.unsafeMessageId(), requestId: pending.request.msgid, code, detail }, true)
    )
  }

  private heartbeat(socket: SocketName, peer: string, timestamp: string): void {
    this.send(socket, peer, Command.Heartbeat.make({ msgid: Command.unsafeMessageId(), timestamp }, true))
  }

  private send(socket: SocketName, peer: string, command: Command.Command): void {
    this.out.push({ _tag: "Send", socket, peer, command })
  }

  private log(level: "Debug" | "Info" | "Warning", message: string): void {
    this.out.push({ _tag: "Log", level, message })
  }

  private flush(): Array<Output> {
    const out = this.out
    this.out = []
    return out
  }
}

const sortByWeight = (entries: Array<Entry>) => entries.sort((a, b) => b.weight - a.weight)

/** Routing ids are kept as latin1 strings (one char per byte); show ASCII ones as they are, others in hex. */
export const printable = (peer: string): string =>
  /^[\x20-\x7e]*$/.test(peer) ? peer : `0x${Buffer.from(peer, "latin1").toString("hex")}`
