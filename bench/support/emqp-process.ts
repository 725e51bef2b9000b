/**
 * eMQP roles in processes of their own, for the suite's separate-process rows: a broker, workers and a client, each
 * a child Node process with its own event loop (and so able to use its own core), as the Python reference runs.
 *
 * The parent drives them over the IPC channel: each child says `ready` once its role is up; the client runs
 * warm-up, throughput and latency phases on request; every child answers `cpu` with its own user + system time, so
 * the parent can add up the CPU all processes spent on exactly the jobs of a phase.
 */
import { type ChildProcess, fork } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Broker from "../../src/emqp/Broker.js"
import * as Client from "../../src/emqp/Client.js"
import * as Worker from "../../src/emqp/Worker.js"

export type Role =
  | { readonly role: "broker"; readonly frontend: string; readonly backend: string; readonly admin: string }
  | { readonly role: "worker"; readonly backend: string; readonly prefetch: number }
  | { readonly role: "client"; readonly frontend: string }

type ToChild =
  | { readonly type: "cpu" }
  | { readonly type: "run"; readonly jobs: number; readonly inFlight: number }
  | { readonly type: "latency"; readonly samples: number }

type FromChild =
  | { readonly type: "ready" }
  | { readonly type: "cpu"; readonly micros: number }
  | { readonly type: "ran"; readonly seconds: number }
  | { readonly type: "latency"; readonly millis: ReadonlyArray<number> }

/** A running role: ask it something and wait for the answer of that type. */
export interface Running {
  readonly process: ChildProcess
  readonly ask: <T extends FromChild["type"]>(
    message: ToChild | undefined,
    answer: T
  ) => Promise<Extract<FromChild, { type: T }>>
  readonly stop: () => void
}

/** Starts a role in a child process and waits until it is up. */
export const start = async (role: Role): Promise<Running> => {
  const child = fork(fileURLToPath(import.meta.url), ["--child", JSON.stringify(role)], { stdio: "inherit" })
  const ask = <T extends FromChild["type"]>(message: ToChild | undefined, answer: T) =>
    new Promise<Extract<FromChild, { type: T }>>((resolve, reject) => {
      const onMessage = (reply: FromChild) => {
        if (reply.type !== answer) return
        child.off("message", onMessage)
        child.off("exit", onExit)
        resolve(reply as Extract<FromChild, { type: T }>)
      }
      const onExit = (code: number | null) => {
        child.off("message", onMessage)
        reject(new Error(`the ${role.role} process exited (${code}) before answering ${answer}`))
      }
      child.on("message", onMessage)
      child.once("exit", onExit)
      if (message !== undefined) child.send(message)
    })
  const running: Running = {
    process: child,
    ask,
    stop: () => {
      if (child.exitCode === null) child.kill("SIGKILL")
    }
  }
  await ask(undefined, "ready")
  return running
}

const child = (role: Role) => {
  const reply = (message: FromChild) => process.send!(message)
  const program = Effect.gen(function*() {
    let client: Client.ClientService | undefined
    switch (role.role) {
      case "broker":
        yield* Broker.make({ frontend: role.frontend, backend: role.backend, admin: role.admin })
        break
      case "worker":
        yield* Worker.make((job) => Effect.succeed(job.payload), { address: role.backend, prefetch: role.prefetch })
        break
      case "client":
        client = yield* Client.make({ address: role.frontend })
        // The workers' READYs reach the broker meanwhile.
        yield* Effect.sleep(Duration.millis(300))
        break
    }
    const runtime = yield* Effect.runtime<never>()
    const run = <A>(effect: Effect.Effect<A, unknown>) => Effect.runPromise(Effect.provide(effect, runtime))
    process.on("message", (message: ToChild) => {
      switch (message.type) {
        case "cpu": {
          const used = process.cpuUsage()
          reply({ type: "cpu", micros: used.user + used.system })
          break
        }
        case "run": {
          const one = (i: number) => client!.request({ i })
          const started = performance.now()
          void run(Effect.forEach(Array.from({ length: message.jobs }, (_, i) => i), one, {
            concurrency: message.inFlight,
            discard: true
          })).then(() => reply({ type: "ran", seconds: (performance.now() - started) / 1000 }))
          break
        }
        case "latency": {
          const millis: Array<number> = []
          void run(Effect.forEach(Array.from({ length: message.samples }, (_, i) => i), (i) => {
            const t = performance.now()
            return Effect.map(client!.request({ i }), () => {
              millis.push(performance.now() - t)
            })
          }, { discard: true })).then(() => reply({ type: "latency", millis }))
          break
        }
      }
    })
    reply({ type: "ready" })
    return yield* Effect.never
  })
  // Exits with the parent: a killed bench leaves no process behind.
  process.on("disconnect", () => process.exit(0))
  void Effect.runPromise(program.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.None)))
}

const index = process.argv.indexOf("--child")
if (index >= 0 && process.send !== undefined) child(JSON.parse(process.argv[index + 1]!) as Role)
