/**
 * The eMQP suite's one-process placement, alone and repeated, for profiling (`node --cpu-prof --import tsx
 * bench/support/emqp-profile.ts [workers] [prefetch] [jobs]`): prints jobs/s, CPU per job and socket writes per job
 * for each of three rounds.
 *
 * Writes per job tell how well the ZMTP writers coalesce: a job is six messages, and a write costs a system call
 * on each side, more than any message's own encoding.
 */
import * as Net from "node:net"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Worker from "../../src/emqp/Worker.js"

const workers = Number(process.argv[2] ?? 1)
const prefetch = Number(process.argv[3] ?? 0)
const jobs = Number(process.argv[4] ?? 5000)

// Counts the writes that reach a socket: corked writes leave as one.
let writes = 0
const write = Net.Socket.prototype.write
Net.Socket.prototype.write = function(this: Net.Socket, ...args: Parameters<Net.Socket["write"]>) {
  if (this.writableCorked === 0) writes++
  return write.apply(this, args)
} as Net.Socket["write"]

const freePort = () =>
  new Promise<number>((resolve) => {
    const server = Net.createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address() as Net.AddressInfo
      server.close(() => resolve(address.port))
    })
  })

const program = Effect.gen(function*() {
  const frontend = `tcp://127.0.0.1:${yield* Effect.promise(freePort)}`
  const backend = `tcp://127.0.0.1:${yield* Effect.promise(freePort)}`
  yield* Broker.make({ frontend, backend, admin: false })
  for (let i = 0; i < workers; i++) yield* Worker.make((job) => Effect.succeed(job.payload), { address: backend, prefetch })
  const client = yield* Client.make({ address: frontend })
  yield* Effect.sleep(Duration.millis(300))
  const one = (i: number) => client.request({ i })
  yield* Effect.forEach(Array.from({ length: 500 }, (_, i) => i), one, { concurrency: 64, discard: true })
  for (let round = 0; round < 3; round++) {
    const cpu = process.cpuUsage()
    const writesBefore = writes
    const start = performance.now()
    yield* Effect.forEach(Array.from({ length: jobs }, (_, i) => i), one, { concurrency: 64, discard: true })
    const perSecond = jobs / ((performance.now() - start) / 1000)
    const used = process.cpuUsage(cpu)
    process.stdout.write(
      `workers ${workers} prefetch ${prefetch}: ${perSecond.toFixed(0)} jobs/s, CPU per job ${
        ((used.user + used.system) / 1000 / jobs).toFixed(4)
      } ms, writes per job ${((writes - writesBefore) / jobs).toFixed(2)}\n`
    )
  }
}).pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None))

await Effect.runPromise(program)
process.exit(0)
