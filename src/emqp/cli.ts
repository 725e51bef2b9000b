#!/usr/bin/env node
/**
 * `effect-wire emqp broker|worker|scheduler`: an eMQP broker, worker or scheduler as a process.
 *
 * ```sh
 * effect-wire emqp broker [--frontend tcp://127.0.0.1:47291] [--backend tcp://127.0.0.1:47290]
 *                         [--admin tcp://127.0.0.1:47293] [--queue-capacity 10000]
 * effect-wire emqp worker --module ./jobs.js [--address tcp://127.0.0.1:47290]
 *                         [--queues 10:default,15:email] [--concurrency 4] [--prefetch 0]
 * effect-wire emqp scheduler [--address tcp://127.0.0.1:47291] [--store schedule.json]
 * ```
 *
 * Unset flags fall back to the reference's environment variables (`EVENTMQ_FRONTEND_ADDR`,
 * `EVENTMQ_BACKEND_ADDR`, `EVENTMQ_ADMINISTRATIVE_ADDR`, `EVENTMQ_HWM`, `EVENTMQ_WORKER_ADDR`,
 * `EVENTMQ_QUEUES` as JSON `[[10, "default"]]`, `EVENTMQ_CONCURRENT_JOBS`, `EVENTMQ_SCHEDULER_ADDR`, and
 * `EVENTMQ_SCHEDULER_STORE`, which the reference lacks), then to the reference's defaults. Without a store the
 * scheduler keeps its jobs in memory; with one, a restarted scheduler resumes them.
 * A worker module default-exports `(job) => result`, where the result may be a value, a Promise or an Effect.
 * SIGINT/SIGTERM shut down gracefully (the broker says KBYE, the worker drains its jobs).
 *
 * @since 0.1.0
 */
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Broker from "./Broker.js"
import type * as Command from "./Command.js"
import { EmqpError } from "./EmqpError.js"
import * as ScheduleStore from "./ScheduleStore.js"
import * as Scheduler from "./Scheduler.js"
import * as Worker from "./Worker.js"

const usage = "usage: effect-wire emqp broker [--frontend addr] [--backend addr] [--admin addr|none] " +
  "[--queue-capacity n] | effect-wire emqp worker --module file [--address addr] [--queues w:name,…] " +
  "[--concurrency n] [--prefetch n] | effect-wire emqp scheduler [--address addr] [--store file]"

const usageError = (detail: string) => new EmqpError({ reason: "Malformed", command: "cli", detail: `${detail}\n${usage}` })

/** `--name value` pairs; anything else is an error. */
const flags = (args: ReadonlyArray<string>): Either.Either<Map<string, string>, EmqpError> => {
  const out = new Map<string, string>()
  for (let i = 0; i < args.length; i += 2) {
    const name = args[i]!
    const value = args[i + 1]
    if (!name.startsWith("--") || value === undefined) return Either.left(usageError(`unexpected argument ${name}`))
    out.set(name.slice(2), value)
  }
  return Either.right(out)
}

const fromFlag = <A>(value: string | undefined, parse: (s: string) => A | undefined, name: string) =>
  value === undefined
    ? Effect.succeed(Option.none<A>())
    : Effect.suspend(() => {
      const parsed = parse(value)
      return parsed === undefined ? Effect.fail(usageError(`invalid --${name} ${value}`)) : Effect.succeed(Option.some(parsed))
    })

const integer = (s: string) => (/^[0-9]+$/.test(s) ? Number(s) : undefined)

/** `10:default,15:email` */
const parseQueues = (s: string): ReadonlyArray<Command.Queue> | undefined => {
  const queues = s.split(",").map((item) => {
    const colon = item.indexOf(":")
    const weight = colon < 0 ? undefined : integer(item.slice(0, colon))
    return weight === undefined ? undefined : { weight, name: item.slice(colon + 1) }
  })
  return queues.every((q) => q !== undefined && q.name.length > 0) ? (queues as Array<Command.Queue>) : undefined
}

const QueuesJson = Schema.parseJson(Schema.Array(Schema.Tuple(Schema.Int, Schema.String)))
const env = Config.nested("EVENTMQ")

const broker = (options: Map<string, string>) =>
  Effect.gen(function*() {
    const settings = yield* env(Broker.config)
    const capacity = yield* fromFlag(options.get("queue-capacity"), integer, "queue-capacity")
    const admin = options.get("admin")
    yield* Layer.launch(Broker.layer({
      ...settings,
      frontend: options.get("frontend") ?? settings.frontend,
      backend: options.get("backend") ?? settings.backend,
      admin: admin === "none" ? false : admin ?? settings.admin,
      queueCapacity: Option.getOrElse(capacity, () => settings.queueCapacity)
    }))
  })

const loadHandler = (file: string) =>
  Effect.tryPromise({
    try: () => import(pathToFileURL(Path.resolve(file)).href) as Promise<{ readonly default?: unknown }>,
    catch: (cause) => new EmqpError({ reason: "Malformed", command: "cli", detail: `cannot load ${file}`, cause })
  }).pipe(
    Effect.flatMap((module) => {
      const handler = module.default
      if (typeof handler !== "function") {
        return Effect.fail(usageError(`${file} must default-export a function (job) => result`))
      }
      return Effect.succeed((job: Worker.Job): Effect.Effect<unknown, unknown> =>
        Effect.suspend(() => {
          const result: unknown = handler(job)
          if (Effect.isEffect(result)) return result as Effect.Effect<unknown, unknown>
          if (result instanceof Promise) return Effect.tryPromise({ try: () => result, catch: (error) => error })
          return Effect.succeed(result)
        })
      )
    })
  )

const worker = (options: Map<string, string>) =>
  Effect.gen(function*() {
    const file = options.get("module")
    if (file === undefined) return yield* usageError("worker needs --module")
    const handler = yield* loadHandler(file)
    const address = options.get("address") ??
      (yield* env(Config.withDefault(Config.string("WORKER_ADDR"), "tcp://127.0.0.1:47290")))
    const envQueues = yield* env(Config.option(Config.string("QUEUES")))
    const queuesFromEnv = Option.flatMap(envQueues, (json) =>
      Option.map(
        Either.getRight(Schema.decodeUnknownEither(QueuesJson)(json)),
        (pairs) => pairs.map(([weight, name]) => ({ weight, name }))
      ))
    const queues = yield* fromFlag(options.get("queues"), parseQueues, "queues")
    const concurrency = yield* fromFlag(options.get("concurrency"), integer, "concurrency")
    const envConcurrency = yield* env(Config.withDefault(Config.integer("CONCURRENT_JOBS"), 4))
    const prefetch = yield* fromFlag(options.get("prefetch"), integer, "prefetch")
    yield* Layer.launch(Worker.layer(handler, {
      address,
      queues: Option.getOrUndefined(Option.orElse(queues, () => queuesFromEnv)),
      concurrency: Option.getOrElse(concurrency, () => envConcurrency),
      prefetch: Option.getOrUndefined(prefetch)
    }))
  })

const scheduler = (options: Map<string, string>) =>
  Effect.gen(function*() {
    const address = options.get("address") ??
      (yield* env(Config.withDefault(Config.string("SCHEDULER_ADDR"), "tcp://127.0.0.1:47291")))
    const path = options.get("store") ?? Option.getOrUndefined(yield* env(Config.option(Config.string("SCHEDULER_STORE"))))
    const store = path === undefined
      ? undefined
      : yield* Effect.provide(ScheduleStore.file({ path }), NodeFileSystem.layer)
    yield* Effect.scoped(Effect.zipRight(Scheduler.make({ address, store }), Effect.never))
  })

/**
 * Runs the command line (`[emqp] broker|worker|scheduler …`) until interrupted.
 *
 * @since 0.1.0
 * @category cli
 */
export const run = (args: ReadonlyArray<string>) =>
  Effect.gen(function*() {
    const rest = args[0] === "emqp" ? args.slice(1) : args
    const [command, ...tail] = rest
    const options = yield* flags(tail)
    switch (command) {
      case "broker":
        return yield* broker(options)
      case "worker":
        return yield* worker(options)
      case "scheduler":
        return yield* scheduler(options)
      default:
        return yield* usageError(command === undefined ? "missing command" : `unknown command ${command}`)
    }
  })

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(run(process.argv.slice(2)))
}
