/**
 * A broker, a worker and a client in one program: the client asks for invoices to be totalled, the worker does
 * it, results come back typed.
 *
 *   npm run example examples/emqp-jobs.ts           # in-process endpoints
 *   npm run example examples/emqp-jobs.ts -- tcp    # the reference's TCP ports (47290/47291/47293)
 *
 * With `tcp`, Python EventMQ 0.3.13 peers can join: `emq-jobmanager` workers, `defer_job` clients.
 */
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { Broker, Client, Worker } from "../src/emqp/index.js"

const tcp = process.argv.includes("tcp")
const addresses = tcp
  ? Broker.defaultAddresses
  : { frontend: "memory://jobs-frontend", backend: "memory://jobs-backend", admin: "memory://jobs-admin" }

// The job's input and output, shared by the client and the worker.
const Invoice = Schema.Struct({
  customer: Schema.String,
  lines: Schema.Array(Schema.Struct({ price: Schema.Number, quantity: Schema.Int }))
})
const Total = Schema.Struct({ customer: Schema.String, total: Schema.Number })

const totalInvoice = (job: Worker.Job) =>
  Effect.map(Schema.decodeUnknown(Invoice)(job.payload), (invoice) => ({
    customer: invoice.customer,
    total: invoice.lines.reduce((sum, line) => sum + line.price * line.quantity, 0)
  }))

const program = Effect.gen(function*() {
  yield* Broker.make(addresses)
  yield* Worker.make(totalInvoice, { address: addresses.backend, queues: [{ weight: 10, name: "invoices" }] })
  const client = yield* Client.make({ address: addresses.frontend })

  const invoices = [
    { customer: "ada", lines: [{ price: 12.5, quantity: 2 }, { price: 3, quantity: 1 }] },
    { customer: "grace", lines: [{ price: 99, quantity: 1 }] }
  ]
  const totals = yield* Effect.forEach(
    invoices,
    (invoice) => client.request(Schema.encodeSync(Invoice)(invoice), { queue: "invoices", schema: Total }),
    { concurrency: "unbounded" }
  )
  for (const { customer, total } of totals) yield* Console.log(`${customer}: ${total}`)

  // A job that fails reaches the client as a typed error.
  const failure = yield* Effect.flip(client.request({ customer: "nobody" }, { queue: "invoices", schema: Total }))
  yield* Console.log(`invalid invoice: ${failure.reason} (${failure.detail?.split("\n")[0]})`)
})

Effect.runPromise(program.pipe(Effect.scoped, Logger.withMinimumLogLevel(LogLevel.Warning))).then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`${error}\n`)
    process.exit(1)
  }
)
