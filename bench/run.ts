/**
 * `npm run bench -- <suite> [<suite> …]`: runs benchmark suites from `bench/suites/<suite>.ts`, prints a table and
 * writes `bench/results/<suite>.json`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { finish, printTable, type Suite } from "./harness.js"

const here = Path.dirname(fileURLToPath(import.meta.url))
const available = Fs.readdirSync(Path.join(here, "suites"))
  .filter((f) => f.endsWith(".ts"))
  .map((f) => f.slice(0, -3))

const requested = process.argv.slice(2)
if (requested.length === 0) {
  process.stderr.write(`usage: npm run bench -- <suite> …\nsuites: ${available.join(", ")}\n`)
  process.exit(2)
}

for (const name of requested) {
  if (!available.includes(name)) {
    process.stderr.write(`unknown suite ${name}; suites: ${available.join(", ")}\n`)
    process.exit(2)
  }
  const suite: Suite = (await import(`./suites/${name}.ts`)).default
  const rows = await suite.run()
  printTable(finish(suite.name, rows, Path.join(here, "results")))
}
process.exit(0)
