/**
 * muxado over loopback TCP: one-stream and 8-stream bulk throughput, and small request/response round trips.
 *
 * Every contender runs as a client in one process and a server in another, so each gets the same two
 * processes: ours (TS client → TS server), Go muxado (Go client → Go server, both modules), @chainsafe/libp2p-yamux
 * (over a plain Node socket, no libp2p stack), and plain TCP between two Node processes as the limit.
 *
 * Each bulk row has a CPU twin: the CPU time both processes used per MiB moved, over every measured round. On a
 * shared machine throughput follows the load of the moment; CPU per byte is what a contender costs.
 *
 * This file is also the TS server: `tsx bench/suites/mux.ts serve <mux|tcp|yamux>` prints `listening <port>`.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Path from "node:path"
import { constants, PerformanceObserver } from "node:perf_hooks"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import { yamux } from "@chainsafe/libp2p-yamux"
import { logger } from "@libp2p/logger"
import { AbstractMultiaddrConnection } from "@libp2p/utils"
import { multiaddr } from "@multiformats/multiaddr"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import { metrics as muxMetrics } from "../../src/mux/internal/metrics.js"
import * as Session from "../../src/mux/Session.js"
import * as MuxStream from "../../src/mux/Stream.js"
import * as Server from "../../src/transport/Server.js"
import type { Row, Suite } from "../harness.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const root = Path.resolve(here, "..", "..")
const goBin = (lib: string) => Path.join(process.env.EFFECT_WIRE_PEERS ?? Path.join(root, ".peers"), "bin", `muxado-${lib}`)

const MiB = 1024 * 1024
const bulkBytes = Number(process.env.MUX_BENCH_MIB ?? 128) * MiB
const chunkSize = 64 * 1024
const rrRounds = 5_000
const rrSize = 64
const runs = Number(process.env.MUX_BENCH_RUNS ?? 5)
const warmUpMillis = Number(process.env.MUX_BENCH_WARMUP_MS ?? 3000)

/**
 * `MUX_BENCH_DIAG=1`: the TS server reports on stderr, per stream, its reads and the process's counters since the
 * previous report (frames and bytes in, bytes out: mostly 12-byte WNDINCs), to see how the window-update cadence
 * follows the reads. The counters are the process's, so only the one-stream rows give per-stream figures. Every
 * measured round also reports each contender's result and its client's and server's CPU per MiB.
 */
const diagnose = process.env.MUX_BENCH_DIAG === "1"

const counters = Effect.all({
  framesIn: Metric.value(muxMetrics.framesReceived),
  bytesIn: Metric.value(muxMetrics.bytesReceived),
  bytesOut: Metric.value(muxMetrics.bytesSent)
})

let lastCounters = { framesIn: 0, bytesIn: 0, bytesOut: 0 }

/** Garbage collections since the previous report (diagnostics only): count and milliseconds, minor and major. */
const gc = { minor: 0, minorMs: 0, major: 0, majorMs: 0 }

const observeGc = () =>
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry.detail as { readonly kind?: number } | undefined)?.kind
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) {
        gc.minor++
        gc.minorMs += entry.duration
      } else {
        gc.major++
        gc.majorMs += entry.duration
      }
    }
  }).observe({ entryTypes: ["gc"] })

const gcReport = () => {
  const text = `gc: ${gc.minor} minor ${gc.minorMs.toFixed(1)} ms, ${gc.major} major ${gc.majorMs.toFixed(1)} ms`
  gc.minor = gc.minorMs = gc.major = gc.majorMs = 0
  return text
}

const report = (what: string) =>
  Effect.flatMap(counters, (now) =>
    Effect.sync(() => {
      const c = { framesIn: now.framesIn.count, bytesIn: now.bytesIn.count, bytesOut: now.bytesOut.count }
      const d = {
        framesIn: c.framesIn - lastCounters.framesIn,
        bytesIn: c.bytesIn - lastCounters.bytesIn,
        bytesOut: c.bytesOut - lastCounters.bytesOut
      }
      lastCounters = c
      const mib = d.bytesIn / MiB
      if (mib === 0) return
      process.stderr.write(
        `[mux diag] ${what}; per MiB in: ${(d.framesIn / mib).toFixed(1)} frames, ${
          (d.bytesOut / mib).toFixed(0)
        } B out; ${gcReport()}; heap ${(process.memoryUsage().heapUsed / MiB).toFixed(0)} MiB\n`
      )
    }))

// ---- the TS server side ---------------------------------------------------------------------------------------

/** Sink: reads a stream to its end, answers the byte count (u64 BE). Echo: copies back. Per stream. */
const serveStream = (stream: MuxStream.MuxStream) =>
  Effect.gen(function*() {
    let total = 0
    let reads = 0
    let first: Uint8Array | undefined
    for (;;) {
      const result = yield* stream.read
      if (result === MuxStream.Eof) break
      reads++
      for (const chunk of result) {
        // A stream that starts with "E" is an echo stream; anything else is a sink.
        if (first === undefined) first = chunk
        if (first[0] === 0x45) yield* stream.write(chunk)
        total += chunk.length
      }
    }
    const count = new Uint8Array(8)
    new DataView(count.buffer).setBigUint64(0, BigInt(total))
    if (first?.[0] !== 0x45) yield* stream.write(count)
    yield* stream.closeWrite
    if (diagnose) yield* report(`stream ${total} B in ${reads} reads`)
  }).pipe(Effect.ignore)

const serveMux = Effect.gen(function*() {
  const server = yield* Session.serve({
    listen: Server.tcp({ host: "127.0.0.1", port: 0 }),
    handler: (session) =>
      Effect.forever(Effect.flatMap(session.accept, (stream) => Effect.forkScoped(serveStream(stream)))).pipe(Effect.ignore)
  })
  process.stdout.write(`listening ${server.address._tag === "TcpAddress" ? server.address.port : 0}\n`)
  return yield* Effect.never
})

const serveTcp = () =>
  new Promise<never>(() => {
    const server = Net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      let total = 0
      let echo: boolean | undefined
      socket.on("data", (chunk: Buffer) => {
        if (echo === undefined) echo = chunk[0] === 0x45
        total += chunk.length
        if (echo && !socket.write(chunk)) socket.pause()
      })
      socket.on("drain", () => socket.resume())
      socket.on("end", () => {
        const count = Buffer.alloc(8)
        count.writeBigUInt64BE(BigInt(total))
        if (echo === true) socket.end()
        else socket.end(count)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      process.stdout.write(`listening ${typeof address === "object" && address !== null ? address.port : 0}\n`)
    })
  })

// ---- @chainsafe/libp2p-yamux over a Node socket ----------------------------------------------------------------

// libp2p 3 uses Promise.withResolvers (Node ≥ 22); this bench also runs on Node 20.
const promiseStatics = Promise as unknown as { withResolvers?: () => unknown }
if (typeof promiseStatics.withResolvers !== "function") {
  promiseStatics.withResolvers = () => {
    let resolve: unknown
    let reject: unknown
    const promise = new Promise((ok, fail) => {
      resolve = ok
      reject = fail
    })
    return { promise, resolve, reject }
  }
}

// libp2p's own byte-list type, taken from its API rather than imported (its package version floats).
type Uint8ArrayList = Parameters<AbstractMultiaddrConnection["sendData"]>[0]

/** libp2p's connection interface over a plain `net.Socket` (what @libp2p/tcp does, without the rest of libp2p). */
class SocketConnection extends AbstractMultiaddrConnection {
  constructor(private readonly socket: Net.Socket, direction: "inbound" | "outbound") {
    super({ remoteAddr: multiaddr("/ip4/127.0.0.1/tcp/1"), direction, log: logger("bench:yamux") })
    socket.on("data", (data: Buffer) => this.onData(data))
    socket.on("end", () => this.onRemoteCloseWrite())
    socket.on("close", () => this.onTransportClosed())
    socket.on("drain", () => this.safeDispatchEvent("drain"))
  }
  sendData(data: Uint8ArrayList) {
    let canSendMore = true
    for (const buf of data) canSendMore = this.socket.write(buf)
    return { sentBytes: data.byteLength, canSendMore }
  }
  sendReset() {
    this.socket.resetAndDestroy()
  }
  sendPause() {
    this.socket.pause()
  }
  sendResume() {
    this.socket.resume()
  }
  async sendClose() {
    this.socket.end()
  }
}

const yamuxMuxer = (socket: Net.Socket, direction: "inbound" | "outbound") =>
  yamux()().createStreamMuxer(new SocketConnection(socket, direction))

type YamuxStream = Awaited<ReturnType<ReturnType<typeof yamuxMuxer>["createStream"]>>

const bytesOf = (data: Uint8Array | { subarray: () => Uint8Array }): Uint8Array =>
  data instanceof Uint8Array ? data : data.subarray()

const serveYamux = () =>
  new Promise<never>(() => {
    const server = Net.createServer({ noDelay: true, allowHalfOpen: true }, (socket) => {
      const muxer = yamuxMuxer(socket, "inbound")
      muxer.addEventListener("stream", (event) => {
        const stream = event.detail
        let total = 0
        let echo: boolean | undefined
        stream.addEventListener("message", (message) => {
          const data = bytesOf(message.data)
          if (echo === undefined) echo = data[0] === 0x45
          total += data.length
          if (echo) stream.send(data)
        })
        stream.addEventListener("remoteCloseWrite", () => {
          const count = Buffer.alloc(8)
          count.writeBigUInt64BE(BigInt(total))
          if (echo !== true) stream.send(count)
          void stream.close()
        })
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      process.stdout.write(`listening ${typeof address === "object" && address !== null ? address.port : 0}\n`)
    })
  })

const yamuxConnect = async (port: number) => yamuxMuxer(await connectTcp(port), "outbound")

const send = async (stream: YamuxStream, data: Uint8Array) => {
  if (!stream.send(data)) await stream.onDrain()
}

const yamuxBulk = async (port: number, streams: number): Promise<number> => {
  const muxer = await yamuxConnect(port)
  const perStream = bulkBytes / streams
  const startNs = process.hrtime.bigint()
  await Promise.all(Array.from({ length: streams }, async () => {
    const stream = await muxer.createStream()
    const counted = new Promise<void>((ok) => stream.addEventListener("message", () => ok()))
    for (let sent = 0; sent < perStream; sent += chunkSize) await send(stream, chunk)
    await stream.close()
    await counted
  }))
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
  await muxer.close()
  return bulkBytes / seconds / 1e6
}

const yamuxRoundTrips = async (port: number): Promise<number> => {
  const muxer = await yamuxConnect(port)
  const stream = await muxer.createStream()
  const message = new Uint8Array(rrSize).fill(0x45)
  let pending = 0
  let wake: (() => void) | undefined
  stream.addEventListener("message", (event) => {
    pending += event.data.byteLength
    if (pending >= rrSize && wake !== undefined) {
      const w = wake
      wake = undefined
      pending -= rrSize
      w()
    }
  })
  const roundTrip = () =>
    new Promise<void>((ok) => {
      wake = ok
      stream.send(message)
    })
  for (let i = 0; i < rrRounds / 10; i++) await roundTrip()
  const startNs = process.hrtime.bigint()
  for (let i = 0; i < rrRounds; i++) await roundTrip()
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
  await muxer.close()
  return rrRounds / seconds
}

// ---- process helpers ------------------------------------------------------------------------------------------

interface Child {
  readonly pid: number
  readonly port: number
  readonly lines: Array<string>
  readonly done: Promise<void>
  readonly kill: () => void
}

const start = (command: string, args: ReadonlyArray<string>, waitListening: boolean): Promise<Child> =>
  new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { stdio: ["ignore", "pipe", "inherit"], cwd: root })
    const lines: Array<string> = []
    const done = new Promise<void>((ok) => child.on("exit", () => ok()))
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
    }
    Readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      lines.push(line)
      if (waitListening && line.startsWith("listening ")) {
        resolve({ pid: child.pid!, port: Number(line.slice(line.lastIndexOf(" ") + 1).split(":").pop()), lines, done, kill })
      }
    })
    child.on("error", reject)
    if (!waitListening) resolve({ pid: child.pid!, port: 0, lines, done, kill })
    else child.on("exit", (code) => reject(new Error(`${command} exited (${code}) before listening: ${lines.join(" | ")}`)))
  })

// Node itself with tsx's loader (not the tsx wrapper), so killing the child kills the server.
const tsServer = (kind: "mux" | "tcp" | "yamux") =>
  start(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "serve", kind], true)

/** CPU time (user + system) a live process has used, in milliseconds (Linux; 0 elsewhere). */
const processCpuMillis = (pid: number): number => {
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100 per second).
    const fields = Fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ")
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return 0
  }
}

/** One measurement, and the CPU time its client used when the client is another process (Go). */
interface Measured {
  readonly value: number
  readonly clientCpuMillis?: number
}

/** Runs a Go client to completion; the number after `key=` in its result line, and its `cpu_ms` if given. */
const goClient = async (lib: string, port: number, args: ReadonlyArray<string>, key: string): Promise<Measured> => {
  const child = await start(goBin(lib), ["-role", "client", "-addr", `127.0.0.1:${port}`, ...args], false)
  await child.done
  const line = child.lines.find((l) => l.includes(`${key}=`))
  if (line === undefined) throw new Error(`go client gave no ${key}: ${child.lines.join(" | ")}`)
  const field = (name: string) => Number(line.split(`${name}=`)[1]?.split(" ")[0])
  const cpu = field("cpu_ms")
  return Number.isFinite(cpu) ? { value: field(key), clientCpuMillis: cpu } : { value: field(key) }
}

// ---- our client -----------------------------------------------------------------------------------------------

const chunk = new Uint8Array(chunkSize).fill(7)

const muxBulk = (port: number, streams: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const session = yield* Session.connect({ host: "127.0.0.1", port })
    const perStream = bulkBytes / streams
    const startNs = process.hrtime.bigint()
    yield* Effect.forEach(Array.from({ length: streams }), () =>
      Effect.scoped(Effect.gen(function*() {
        const stream = yield* session.open()
        for (let sent = 0; sent < perStream; sent += chunkSize) yield* stream.write(chunk)
        yield* stream.closeWrite
        const count = yield* stream.readExactly(8)
        const got = Number(new DataView(count.buffer, count.byteOffset, 8).getBigUint64(0))
        if (got !== perStream) return yield* Effect.dieMessage(`sink got ${got} of ${perStream}`)
      })), { concurrency: "unbounded", discard: true })
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
    return bulkBytes / seconds / 1e6
  })))

const muxRoundTrips = (port: number) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const session = yield* Session.connect({ host: "127.0.0.1", port })
    const stream = yield* session.open()
    const message = new Uint8Array(rrSize).fill(0x45)
    for (let i = 0; i < rrRounds / 10; i++) {
      yield* stream.write(message)
      yield* stream.readExactly(rrSize)
    }
    const startNs = process.hrtime.bigint()
    for (let i = 0; i < rrRounds; i++) {
      yield* stream.write(message)
      yield* stream.readExactly(rrSize)
    }
    const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
    yield* stream.closeWrite
    return rrRounds / seconds
  })))

// ---- plain TCP client -----------------------------------------------------------------------------------------

const connectTcp = (port: number) =>
  new Promise<Net.Socket>((resolve, reject) => {
    const socket = Net.connect({ host: "127.0.0.1", port, noDelay: true, allowHalfOpen: true }, () => resolve(socket))
    socket.on("error", reject)
  })

const tcpBulk = async (port: number, streams: number): Promise<number> => {
  const perStream = bulkBytes / streams
  const buffer = Buffer.from(chunk)
  const startNs = process.hrtime.bigint()
  await Promise.all(Array.from({ length: streams }, async () => {
    const socket = await connectTcp(port)
    const counted = new Promise<void>((ok) => socket.on("end", () => ok()))
    socket.resume()
    for (let sent = 0; sent < perStream; sent += chunkSize) {
      if (!socket.write(buffer)) await new Promise((ok) => socket.once("drain", ok))
    }
    socket.end()
    await counted
    socket.destroy()
  }))
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
  return bulkBytes / seconds / 1e6
}

const tcpRoundTrips = async (port: number): Promise<number> => {
  const socket = await connectTcp(port)
  const message = Buffer.alloc(rrSize, 0x45)
  let pending = 0
  let wake: (() => void) | undefined
  socket.on("data", (data: Buffer) => {
    pending += data.length
    if (pending >= rrSize && wake !== undefined) {
      const w = wake
      wake = undefined
      w()
    }
  })
  const roundTrip = () =>
    new Promise<void>((ok) => {
      wake = () => {
        pending -= rrSize
        ok()
      }
      socket.write(message)
    })
  for (let i = 0; i < rrRounds / 10; i++) await roundTrip()
  const startNs = process.hrtime.bigint()
  for (let i = 0; i < rrRounds; i++) await roundTrip()
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9
  socket.destroy()
  return rrRounds / seconds
}

// ---- the suite ------------------------------------------------------------------------------------------------

/** One contender of a row: its server, and one measurement against that server. */
interface Contender {
  readonly server: () => Promise<Child>
  /** A number, from a client in this process; or a `Measured` from a client process that reports its CPU. */
  readonly measure: (port: number) => Promise<number | Measured>
  /** JIT warm-up before measuring (the Node contenders; Go needs none). */
  readonly warmUp: boolean
}

interface Outcome {
  /** Each contender's best measurement. */
  readonly best: Record<string, number>
  /** Each contender's CPU time, client and server processes, over all measured rounds. */
  readonly cpuMillis: Record<string, number>
}

/** One measurement and the CPU time both processes spent on it. */
const measureWithCpu = async (
  name: string,
  contender: Contender,
  child: Child
): Promise<{ value: number; cpuMillis: number }> => {
  const self = process.cpuUsage()
  const server = processCpuMillis(child.pid)
  const result = await contender.measure(child.port)
  const serverCpu = processCpuMillis(child.pid) - server
  const used = process.cpuUsage(self)
  const value = typeof result === "number" ? result : result.value
  const clientCpu = typeof result === "number" ? (used.user + used.system) / 1000 : result.clientCpuMillis ?? Number.NaN
  if (diagnose) {
    const mib = bulkBytes / MiB
    process.stderr.write(
      `[mux diag] ${name}: ${value.toFixed(0)}; CPU per MiB if bulk: client ${(clientCpu / mib).toFixed(2)} ms, server ${
        (serverCpu / mib).toFixed(2)
      } ms\n`
    )
  }
  return { value, cpuMillis: clientCpu + serverCpu }
}

/**
 * Runs one row: every contender's server is started, the Node contenders warm up, then `runs` rounds measure
 * each contender in turn, and each keeps its best. Interleaving matters on a shared two-core machine: load comes
 * and goes over seconds, and every contender should see the same weather.
 *
 * The warm-up is the same time budget for every Node contender: measurements repeated until `warmUpMillis` have
 * passed. One run is not enough for V8 to optimise a protocol stack's per-frame code on a busy machine (plain TCP
 * has almost none), and a multiplexer's steady state is what long-lived sessions see.
 */
const interleaved = async (contenders: Readonly<Record<string, Contender>>): Promise<Outcome> => {
  const entries = Object.entries(contenders)
  const children: Array<Child> = []
  try {
    for (const [, contender] of entries) children.push(await contender.server())
    for (let i = 0; i < entries.length; i++) {
      const [, contender] = entries[i]!
      if (!contender.warmUp) continue
      const until = Date.now() + warmUpMillis
      do await contender.measure(children[i]!.port)
      while (Date.now() < until)
    }
    const best: Record<string, number> = {}
    const cpuMillis: Record<string, number> = {}
    for (let round = 0; round < runs; round++) {
      for (let i = 0; i < entries.length; i++) {
        const [name, contender] = entries[i]!
        const { value, cpuMillis: cpu } = await measureWithCpu(name, contender, children[i]!)
        best[name] = Math.max(best[name] ?? -Infinity, value)
        cpuMillis[name] = (cpuMillis[name] ?? 0) + cpu
      }
    }
    return { best, cpuMillis }
  } finally {
    for (const child of children) child.kill()
  }
}

const goServer = (lib: string, mode: string) => start(goBin(lib), ["-role", "server", "-mode", mode], true)

const ours = "effect-wire"
const libs = ["upstream", "ngrok"]

const toRow = (metric: string, unit: string, better: Row["better"], values: Record<string, number>): Row => {
  const { [ours]: oursValue, ...peers } = values
  return { metric, unit, better, ours: oursValue!, peers }
}

const row = async (metric: string, unit: string, contenders: Record<string, Contender>): Promise<Row> =>
  toRow(metric, unit, "higher", (await interleaved(contenders)).best)

/** A throughput row and its CPU twin: milliseconds of CPU (client + server processes) per MiB moved. */
const bulkRows = async (metric: string, contenders: Record<string, Contender>): Promise<ReadonlyArray<Row>> => {
  const { best, cpuMillis } = await interleaved(contenders)
  const mib = (runs * bulkBytes) / MiB
  const perMiB = Object.fromEntries(Object.entries(cpuMillis).map(([name, ms]) => [name, ms / mib]))
  return [
    toRow(metric, "MB/s", "higher", best),
    toRow(`CPU per MiB, ${metric} (client + server processes)`, "ms/MiB", "lower", perMiB)
  ]
}

const suite: Suite = {
  name: "mux",
  run: async () => {
    const rows: Array<Row> = []
    for (const streams of [1, 8]) {
      const perStream = String(bulkBytes / streams)
      rows.push(
        ...await bulkRows(
          `bulk throughput, ${streams} stream${streams > 1 ? "s" : ""} (${bulkBytes / MiB} MiB, 64 KiB writes)`,
          {
            [ours]: { server: () => tsServer("mux"), measure: (port) => muxBulk(port, streams), warmUp: true },
            ...Object.fromEntries(libs.map((lib): [string, Contender] => [`go muxado ${lib}`, {
              server: () => goServer(lib, "sink"),
              measure: (port) =>
                goClient(lib, port, ["-mode", "bulk", "-streams", String(streams), "-bytes", perStream, "-concurrency", "8"], "MBps"),
              warmUp: false
            }])),
            "libp2p-yamux 8.0.1": { server: () => tsServer("yamux"), measure: (port) => yamuxBulk(port, streams), warmUp: true },
            "plain tcp (node, a connection per stream)": {
              server: () => tsServer("tcp"),
              measure: (port) => tcpBulk(port, streams),
              warmUp: true
            }
          }
        )
      )
    }
    rows.push(
      await row(`round trips, ${rrSize} B request/response on one stream`, "ops/s", {
        [ours]: { server: () => tsServer("mux"), measure: muxRoundTrips, warmUp: true },
        ...Object.fromEntries(libs.map((lib): [string, Contender] => [`go muxado ${lib}`, {
          server: () => goServer(lib, "echo"),
          measure: (port) => goClient(lib, port, ["-mode", "rr", "-n", String(rrRounds), "-bytes", String(rrSize)], "ops"),
          warmUp: false
        }])),
        "libp2p-yamux 8.0.1": { server: () => tsServer("yamux"), measure: yamuxRoundTrips, warmUp: true },
        "plain tcp (node)": { server: () => tsServer("tcp"), measure: tcpRoundTrips, warmUp: true }
      })
    )
    return rows
  }
}

export default suite

if (process.argv[2] === "serve" && process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[3] === "tcp") void serveTcp()
  else if (process.argv[3] === "yamux") void serveYamux()
  else {
    if (diagnose) observeGc()
    void Effect.runPromise(Effect.scoped(serveMux))
  }
}
