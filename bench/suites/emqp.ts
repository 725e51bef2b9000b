/**
 * eMQP: jobs/s and request → reply latency through a broker, effect-wire against the Python EventMQ 0.3.13
 * reference in the same run.
 *
 * Placement. Ours: broker, workers (4 slots each, the reference's `CONCURRENT_JOBS`) and client all in this one
 * Node process — one event loop, so one core at most — talking over TCP on 127.0.0.1 through the public API
 * (`Broker.make`, `Worker.make`, `Client.make`; `client.request` waits for each job's result, 64 in flight).
 * The reference: `emq-router`, `emq-jobmanager` (4 worker processes) and its client library's `defer_job`, each
 * in its own process, so it may use every core. The reference never returns results to clients, so its jobs
 * append to a file and completion is counted there; its latency is send → line in that file.
 *
 * A job is six eMQP messages on the wire (REQUEST client → broker → worker, dispatch-ack REPLY, result REPLY
 * worker → broker → client, READY); "CPU per job" is this process's user + system time over the jobs it ran,
 * which is what the shared machine's load cannot distort.
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
const IN_FLIGHT = 64
const LATENCY_SAMPLES = 1_000

/** Our broker with `workers` workers (4 slots each); returns jobs/s, CPU per job and latency samples. */
const ours = (workers: number, prefetch = 0) =>
  Effect.gen(function*() {
    const a = yield* Effect.promise(addresses)
    yield* Broker.make(a)
    for (let i = 0; i < workers; i++) {
      yield* Worker.make((job) => Effect.succeed(job.payload), { address: a.backend, prefetch })
    }
    const client = yield* Client.make({ address: a.frontend })
    yield* Effect.sleep(Duration.millis(300))
    const one = (i: number) => client.request({ i })
    yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => i), one, { concurrency: IN_FLIGHT }) // warm-up
    const cpu = process.cpuUsage()
    const start = performance.now()
    yield* Effect.forEach(Array.from({ length: JOBS }, (_, i) => i), one, { concurrency: IN_FLIGHT, discard: true })
    const jobsPerSecond = JOBS / ((performance.now() - start) / 1000)
    const used = process.cpuUsage(cpu)
    const cpuPerJob = (used.user + used.system) / 1000 / JOBS
    const latencies: Array<number> = []
    for (let i = 0; i < LATENCY_SAMPLES; i++) {
      const t = performance.now()
      yield* one(i)
      latencies.push(performance.now() - t)
    }
    return { jobsPerSecond, cpuPerJob, latencies }
  }).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))

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
      { metric: "request → reply p99, 1 worker", unit: "ms", better: "lower", ours: percentile(one.latencies, 99), peers: peers(ref && percentile(ref.latencies, 99)) }
    ]
    return rows
  }
}

export default suite
