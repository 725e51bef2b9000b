/**
 * eMQP: jobs/s and request → reply latency through a broker, effect-wire against the Python EventMQ 0.3.13
 * reference in the same run.
 *
 * What a job is. One `client.request` whose result the client waits for: six eMQP messages on the wire (REQUEST
 * client → broker → worker, the broker's dispatch-ack REPLY to the client, the worker's result REPLY worker →
 * broker → client, and the worker's READY). 64 jobs are in flight; each worker runs 4 at a time (the reference's
 * `CONCURRENT_JOBS`); the job handler returns its payload. Everything talks TCP on 127.0.0.1 through the public API
 * (`Broker.make`, `Worker.make`, `Client.make`).
 *
 * The rows:
 *
 * - "jobs/s through the broker" and "CPU per job (broker + worker + client)": broker, workers and client all in
 *   this one Node process — one event loop, so at most one core. CPU per job is this process's user + system time
 *   over the jobs: the cost of a whole job, every party included, which the shared machine's load distorts far
 *   less than it does jobs/s. `bench/support/emqp-profile.ts` runs this placement alone, for `node --cpu-prof`.
 * - "separate processes: …": the broker, each worker and the client each in a Node process of its own
 *   (`bench/support/emqp-process.ts`), as the reference runs, so they may use every core. CPU per job adds up the
 *   user + system time of all those processes over the jobs; "of the busiest process" is the most any one of
 *   them spent, so 1 / that is the jobs/s ceiling when every process has a core of its own (this machine has 2).
 * - "request → reply p50/p99, 1 worker": one job at a time, `client.request` to its result.
 *
 * Jobs/s is the best and CPU per job the lowest of three rounds of 5,000 jobs (after 2,000 to warm up): load from
 * other work on the machine only ever makes a round worse.
 *
 * The reference: `emq-router`, `emq-jobmanager` (4 worker processes) and its client library's `defer_job`, each
 * in its own process. It never returns results to clients, so its jobs append to a file and completion is
 * counted there; its latency is send → line in that file. The same reference figures stand beside both
 * placements of ours.
 */
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Worker from "../../src/emqp/Worker.js"
import { percentile, type Row, type Suite } from "../harness.js"
import * as Roles from "../support/emqp-process.js"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")
const pythonDir = Path.join(root, "test", "interop", "python")
const venv = Path.join(process.env.EFFECT_WIRE_PEERS ?? Path.join(root, ".peers"), "venv", "bin")

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
    })
  })

const addresses = async () => ({
  frontend: `tcp://127.0.0.1:${await freePort()}`,
  backend: `tcp://127.0.0.1:${await freePort()}`,
  admin: `tcp://127.0.0.1:${await freePort()}`
})

const JOBS = 5_000
const WARM_UP = 2_000
const ROUNDS = 3
const IN_FLIGHT = 64
const LATENCY_SAMPLES = 1_000

interface Measured {
  readonly jobsPerSecond: number
  readonly cpuPerJob: number
  readonly latencies: ReadonlyArray<number>
}

/** The best of the rounds for each figure: the shared machine's load only ever makes a round worse. */
const best = (rounds: ReadonlyArray<{ readonly jobsPerSecond: number; readonly cpuPerJob: number }>) => ({
  jobsPerSecond: Math.max(...rounds.map((r) => r.jobsPerSecond)),
  cpuPerJob: Math.min(...rounds.map((r) => r.cpuPerJob))
})

/** Our broker with `workers` workers (4 slots each), all in this process. */
const ours = (workers: number, prefetch = 0): Effect.Effect<Measured> =>
  Effect.gen(function*() {
    const a = yield* Effect.promise(addresses)
    yield* Broker.make(a)
    for (let i = 0; i < workers; i++) {
      yield* Worker.make((job) => Effect.succeed(job.payload), { address: a.backend, prefetch })
    }
    const client = yield* Client.make({ address: a.frontend })
    yield* Effect.sleep(Duration.millis(300))
    const one = (i: number) => client.request({ i })
    const jobs = (n: number) => Effect.forEach(Array.from({ length: n }, (_, i) => i), one, { concurrency: IN_FLIGHT, discard: true })
    yield* jobs(WARM_UP)
    const rounds: Array<{ jobsPerSecond: number; cpuPerJob: number }> = []
    for (let round = 0; round < ROUNDS; round++) {
      const cpu = process.cpuUsage()
      const start = performance.now()
      yield* jobs(JOBS)
      const jobsPerSecond = JOBS / ((performance.now() - start) / 1000)
      const used = process.cpuUsage(cpu)
      rounds.push({ jobsPerSecond, cpuPerJob: (used.user + used.system) / 1000 / JOBS })
    }
    const latencies: Array<number> = []
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const t = performance.now()
      yield* one(i)
      latencies.push(performance.now() - t)
    }
    return { ...best(rounds), latencies }
  }).pipe(Effect.scoped, Effect.orDie, Logger.withMinimumLogLevel(LogLevel.None))

/**
 * Broker, `workers` workers and the client each in a Node process of its own. CPU per job adds up every process's
 * user + system time over the measured jobs; `busiestCpuPerJob` is that of the process that spent the most, which
 * bounds jobs/s when each process has a core to itself.
 */
const separate = async (workers: number, prefetch = 0): Promise<Measured & { readonly busiestCpuPerJob: number }> => {
  const a = await addresses()
  const started: Array<Roles.Running> = []
  try {
    started.push(await Roles.start({ role: "broker", ...a }))
    for (let i = 0; i < workers; i++) started.push(await Roles.start({ role: "worker", backend: a.backend, prefetch }))
    const client = await Roles.start({ role: "client", frontend: a.frontend })
    started.push(client)
    const cpu = () => Promise.all(started.map(async (p) => (await p.ask({ type: "cpu" }, "cpu")).micros))
    await client.ask({ type: "run", jobs: WARM_UP, inFlight: IN_FLIGHT }, "ran")
    const rounds: Array<{ jobsPerSecond: number; cpuPerJob: number; busiest: number }> = []
    for (let round = 0; round < ROUNDS; round++) {
      const before = await cpu()
      const { seconds } = await client.ask({ type: "run", jobs: JOBS, inFlight: IN_FLIGHT }, "ran")
      const spent = (await cpu()).map((micros, i) => (micros - before[i]!) / 1000 / JOBS)
      rounds.push({ jobsPerSecond: JOBS / seconds, cpuPerJob: spent.reduce((n, ms) => n + ms, 0), busiest: Math.max(...spent) })
    }
    const { millis } = await client.ask({ type: "latency", samples: LATENCY_SAMPLES }, "latency")
    return { ...best(rounds), busiestCpuPerJob: Math.min(...rounds.map((r) => r.busiest)), latencies: millis }
  } finally {
    for (const p of started) p.stop()
  }
}

const spawn = (program: string, env: Record<string, string>, args: ReadonlyArray<string> = []) =>
  ChildProcess.spawn(Path.join(venv, program), args, {
    env: { ...process.env, EVENTMQ_CONFIG_FILE: "/nonexistent", PYTHONPATH: pythonDir, ...env },
    stdio: "ignore",
    detached: true
  })

const kill = (child: ChildProcess.ChildProcess) => {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL")
  } catch {
    // gone already
  }
}

const countLines = (file: string) => (Fs.existsSync(file) ? Fs.readFileSync(file, "utf8").split("\n").length - 1 : 0)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** The reference: router + one job manager (4 processes); N jobs deferred by its client; jobs/s and latency. */
const reference = async (jobs: number) => {
  const a = await addresses()
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "emqp-bench-"))
  const file = Path.join(dir, "runs.txt")
  const router = spawn("emq-router", { EVENTMQ_FRONTEND_ADDR: a.frontend, EVENTMQ_BACKEND_ADDR: a.backend, EVENTMQ_ADMINISTRATIVE_ADDR: a.admin })
  const jm = spawn("emq-jobmanager", { EVENTMQ_WORKER_ADDR: a.backend, EVENTMQ_CONCURRENT_JOBS: "4" })
  try {
    await sleep(5_000) // worker processes start after the router's first heartbeat
    const client = (count: number, tag: string) =>
      ChildProcess.execFileSync(Path.join(venv, "python"), [
        Path.join(pythonDir, "emqp_client.py"),
        "defer",
        a.frontend,
        String(count),
        "default",
        "emqp_jobs.record",
        JSON.stringify([file, `${tag}{i}`])
      ], { env: { ...process.env, PYTHONPATH: pythonDir, EVENTMQ_CONFIG_FILE: "/nonexistent" }, stdio: "ignore" })
    const latencies: Array<number> = []
    for (let i = 0; i < 5; i++) {
      const before = countLines(file)
      const t = performance.now()
      client(1, "latency")
      while (countLines(file) === before && performance.now() - t < 30_000) await sleep(5)
      // The client script lingers 1.3 s around its send; count from the send.
      latencies.push(performance.now() - t - 300)
    }
    const start = performance.now()
    const before = countLines(file)
    client(jobs, "throughput")
    while (countLines(file) - before < jobs && performance.now() - start < 120_000) await sleep(20)
    const done = countLines(file) - before
    return { jobsPerSecond: done / ((performance.now() - start - 300) / 1000), latencies }
  } finally {
    kill(jm)
    kill(router)
    Fs.rmSync(dir, { recursive: true, force: true })
  }
}

const suite: Suite = {
  name: "emqp",
  run: async () => {
    const one = await Effect.runPromise(ours(1))
    const four = await Effect.runPromise(ours(4))
    const prefetched = await Effect.runPromise(ours(4, 16))
    const apartOne = await separate(1)
    const apartFour = await separate(4, 16)
    const hasReference = Fs.existsSync(Path.join(venv, "emq-router"))
    const ref = hasReference ? await reference(40) : undefined
    const peers = (value: number | undefined): Record<string, number> =>
      value === undefined ? {} : { "eventmq-0.3.13 (router + jobmanager)": value }
    const rows: Array<Row> = [
      { metric: "jobs/s through the broker, 1 worker", unit: "jobs/s", better: "higher", ours: one.jobsPerSecond, peers: peers(ref?.jobsPerSecond) },
      { metric: "jobs/s through the broker, 4 workers", unit: "jobs/s", better: "higher", ours: four.jobsPerSecond, peers: peers(ref?.jobsPerSecond) },
      { metric: "jobs/s through the broker, 4 workers, prefetch 16", unit: "jobs/s", better: "higher", ours: prefetched.jobsPerSecond, peers: peers(ref?.jobsPerSecond) },
      { metric: "CPU per job (broker + worker + client), 1 worker", unit: "ms", better: "lower", ours: one.cpuPerJob, peers: {} },
      { metric: "CPU per job (broker + worker + client), 4 workers, prefetch 16", unit: "ms", better: "lower", ours: prefetched.cpuPerJob, peers: {} },
      { metric: "request → reply p50, 1 worker", unit: "ms", better: "lower", ours: percentile(one.latencies, 50), peers: peers(ref && percentile(ref.latencies, 50)) },
      { metric: "request → reply p99, 1 worker", unit: "ms", better: "lower", ours: percentile(one.latencies, 99), peers: peers(ref && percentile(ref.latencies, 99)) },
      { metric: "separate processes: jobs/s, 1 worker", unit: "jobs/s", better: "higher", ours: apartOne.jobsPerSecond, peers: peers(ref?.jobsPerSecond) },
      { metric: "separate processes: jobs/s, 4 workers, prefetch 16", unit: "jobs/s", better: "higher", ours: apartFour.jobsPerSecond, peers: peers(ref?.jobsPerSecond) },
      { metric: "separate processes: CPU per job (all processes), 1 worker", unit: "ms", better: "lower", ours: apartOne.cpuPerJob, peers: {} },
      { metric: "separate processes: CPU per job (all processes), 4 workers, prefetch 16", unit: "ms", better: "lower", ours: apartFour.cpuPerJob, peers: {} },
      { metric: "separate processes: CPU per job of the busiest process, 1 worker", unit: "ms", better: "lower", ours: apartOne.busiestCpuPerJob, peers: {} },
      { metric: "separate processes: request → reply p50, 1 worker", unit: "ms", better: "lower", ours: percentile(apartOne.latencies, 50), peers: peers(ref && percentile(ref.latencies, 50)) },
      { metric: "separate processes: request → reply p99, 1 worker", unit: "ms", better: "lower", ours: percentile(apartOne.latencies, 99), peers: peers(ref && percentile(ref.latencies, 99)) }
    ]
    return rows
  }
}

export default suite
