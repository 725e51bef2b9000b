/**
 * A typed RPC between two processes over one muxado connection: each call is its own stream (the request,
 * then FIN; the reply, then FIN), so slow calls never hold up fast ones and a cancelled call resets only its
 * stream. Requests and replies are Schemas; a stream type tags which procedure a stream calls.
 *
 *   npm run example examples/mux-rpc.ts            # starts the server as a child process, then calls it
 *   npm run example examples/mux-rpc.ts -- server  # the server alone (prints its port)
 *
 * A Go muxado peer can call it too: open a typed stream with the procedure's type and send the JSON request.
 */
import { spawn } from "node:child_process"
import * as Readline from "node:readline"
import { fileURLToPath } from "node:url"
import * as Console from "effect/Console"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { Heartbeat, Session, Stream as MuxStream, TypedSession } from "../src/mux/index.js"
import { Server } from "../src/transport/index.js"

// ---- the procedures: a stream type, a request Schema and a reply Schema each --------------------------------

const Procedures = {
  add: {
    type: 1,
    request: Schema.Struct({ a: Schema.Number, b: Schema.Number }),
    reply: Schema.Struct({ sum: Schema.Number })
  },
  slowUpper: {
    type: 2,
    request: Schema.Struct({ text: Schema.String, delayMillis: Schema.Int }),
    reply: Schema.Struct({ text: Schema.String })
  }
} as const

type Procedures = typeof Procedures
type Name = keyof Procedures

// Replies travel as a tagged union, so a failure reaches the caller as a typed error, not a closed stream.
const Reply = <A, I>(ok: Schema.Schema<A, I>) =>
  Schema.Union(
    Schema.TaggedStruct("Ok", { value: ok }),
    Schema.TaggedStruct("Err", { message: Schema.String })
  )

class RpcError extends Schema.TaggedError<RpcError>()("RpcError", { message: Schema.String }) {}

const json = <A, I>(schema: Schema.Schema<A, I>) => Schema.parseJson(schema)
const utf8 = new TextEncoder()
const fromUtf8 = new TextDecoder()

const readAll = (stream: MuxStream.MuxStream) =>
  Effect.gen(function*() {
    const parts: Array<Uint8Array> = []
    for (;;) {
      const result = yield* stream.read
      if (MuxStream.isEof(result)) return fromUtf8.decode(Buffer.concat(parts))
      parts.push(...result)
    }
  })

// ---- the server ------------------------------------------------------------------------------------------------

const handlers: { readonly [K in Name]: (request: Procedures[K]["request"]["Type"]) => Effect.Effect<Procedures[K]["reply"]["Type"], string> } = {
  add: ({ a, b }) => Effect.succeed({ sum: a + b }),
  slowUpper: ({ delayMillis, text }) =>
    text.length === 0
      ? Effect.fail("nothing to upper-case")
      : Effect.as(Effect.sleep(Duration.millis(delayMillis)), { text: text.toUpperCase() })
}

const serveCall = (stream: TypedSession.TypedStream) =>
  Effect.gen(function*() {
    const entry = Object.entries(Procedures).find(([, p]) => p.type === stream.streamType)
    if (entry === undefined) return yield* stream.reset(7)
    const [name, procedure] = entry as [Name, Procedures[Name]]
    const body = yield* readAll(stream)
    const request = yield* Schema.decode(json(procedure.request as Schema.Schema<unknown, unknown>))(body)
    const handler = handlers[name] as (request: unknown) => Effect.Effect<unknown, string>
    const reply = yield* handler(request).pipe(
      Effect.map((value) => ({ _tag: "Ok" as const, value })),
      Effect.catchAll((message) => Effect.succeed({ _tag: "Err" as const, message }))
    )
    const encoded = yield* Schema.encode(json(Reply(procedure.reply as Schema.Schema<unknown, unknown>)))(reply)
    yield* stream.write(utf8.encode(encoded))
    yield* stream.closeWrite
  }).pipe(Effect.ignore)

const server = Effect.gen(function*() {
  const listening = yield* Session.serve({
    listen: Server.tcp({ host: "127.0.0.1", port: 0 }),
    handler: (session) =>
      Effect.gen(function*() {
        // The typed session answers the client's heartbeats by itself.
        const typed = yield* TypedSession.make(session)
        yield* Effect.forever(Effect.flatMap(typed.acceptTyped, (stream) => Effect.forkScoped(serveCall(stream))))
      }).pipe(Effect.scoped, Effect.ignore)
  })
  const address = listening.address
  yield* Console.log(`listening ${address._tag === "TcpAddress" ? address.port : 0}`)
  return yield* Effect.never
})

// ---- the client ------------------------------------------------------------------------------------------------

const makeClient = (typed: TypedSession.TypedSession) =>
  <K extends Name>(name: K, request: Procedures[K]["request"]["Type"]) =>
    Effect.scoped(Effect.gen(function*() {
      const procedure = Procedures[name] as Procedures[Name]
      const body = yield* Schema.encode(json(procedure.request as Schema.Schema<unknown, unknown>))(request)
      const stream = yield* typed.openTyped(procedure.type, utf8.encode(body))
      yield* stream.closeWrite
      const reply = yield* Schema.decode(json(Reply(procedure.reply as Schema.Schema<unknown, unknown>)))(yield* readAll(stream))
      if (reply._tag === "Err") return yield* new RpcError({ message: reply.message })
      return reply.value as Procedures[K]["reply"]["Type"]
    }))

const client = (port: number) =>
  Effect.gen(function*() {
    const session = yield* Session.connect({ host: "127.0.0.1", port })
    const typed = yield* TypedSession.make(session)
    const heartbeat = yield* Heartbeat.make(typed, { interval: "200 millis", tolerance: "1 second" })
    const call = makeClient(typed)

    yield* Console.log("add(2, 40) =", yield* call("add", { a: 2, b: 40 }))
    // Concurrent calls share the connection; the fast ones do not wait for the slow one.
    const started = Date.now()
    const results = yield* Effect.all([
      call("slowUpper", { text: "slow", delayMillis: 400 }).pipe(Effect.map((r) => `${r.text} after ${Date.now() - started} ms`)),
      ...Array.from({ length: 5 }, (_, i) =>
        call("add", { a: i, b: i }).pipe(Effect.map((r) => `${i}+${i}=${r.sum} after ${Date.now() - started} ms`)))
    ], { concurrency: "unbounded" })
    for (const line of results) yield* Console.log(line)
    const failed = yield* Effect.flip(call("slowUpper", { text: "", delayMillis: 0 }))
    yield* Console.log("slowUpper(\"\") failed:", failed.message)
    yield* Effect.sleep("500 millis")
    const latest = yield* heartbeat.latest
    yield* Console.log(
      "latest heartbeat:",
      latest._tag === "Some" && latest.value._tag === "Beat" ? Duration.format(latest.value.latency) : latest
    )
  }).pipe(Effect.scoped)

// ---- two processes -----------------------------------------------------------------------------------------------

const startServer = Effect.acquireRelease(
  Effect.async<{ readonly port: number; readonly kill: () => void }, Error>((resume) => {
    const child = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), "server"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const kill = () => {
      if (child.exitCode === null) child.kill()
    }
    Readline.createInterface({ input: child.stdout }).on("line", (line) => {
      if (line.startsWith("listening ")) resume(Effect.succeed({ port: Number(line.slice(10)), kill }))
    })
    child.on("exit", (code) => resume(Effect.fail(new Error(`server exited with ${code}`))))
  }),
  ({ kill }) => Effect.sync(kill)
)

const main = process.argv.includes("server")
  ? Effect.scoped(server)
  : Effect.scoped(Effect.flatMap(startServer, ({ port }) => client(port)))

Effect.runPromise(main).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
