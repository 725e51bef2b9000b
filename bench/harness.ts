/**
 * Benchmark plumbing shared by every suite: timing loops, percentiles, and the results file.
 *
 * A suite measures effect-wire and its named peers in the same run and returns rows; `ratio` is always
 * ours / peer, and `better` says which direction wins for that unit.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

export interface Row {
  readonly metric: string
  readonly unit: string
  readonly better: "higher" | "lower"
  readonly ours: number
  readonly peers: Readonly<Record<string, number>>
}

export interface Suite {
  readonly name: string
  readonly run: () => Promise<ReadonlyArray<Row>>
}

export interface Results {
  readonly suite: string
  readonly machine: { readonly cpu: string; readonly cores: number; readonly node: string; readonly platform: string }
  readonly date: string
  readonly rows: ReadonlyArray<Row & { readonly ratio: Readonly<Record<string, number>> }>
}

export const machine = () => ({
  cpu: Os.cpus()[0]?.model ?? "unknown",
  cores: Os.cpus().length,
  node: process.version,
  platform: `${process.platform}-${process.arch}`
})

const round = (n: number) => Number(n.toPrecision(4))

export const finish = (suite: string, rows: ReadonlyArray<Row>, dir: string): Results => {
  const results: Results = {
    suite,
    machine: machine(),
    date: new Date().toISOString(),
    rows: rows.map((row) => ({
      ...row,
      ours: round(row.ours),
      peers: Object.fromEntries(Object.entries(row.peers).map(([k, v]) => [k, round(v)])),
      ratio: Object.fromEntries(Object.entries(row.peers).map(([k, v]) => [k, round(row.ours / v)]))
    }))
  }
  Fs.mkdirSync(dir, { recursive: true })
  Fs.writeFileSync(Path.join(dir, `${suite}.json`), JSON.stringify(results, null, 2) + "\n")
  return results
}

export const printTable = (results: Results): void => {
  const lines: Array<Array<string>> = [["metric", "unit", "ours", "peer", "value", "ratio (ours/peer)"]]
  for (const row of results.rows) {
    const names = Object.keys(row.peers)
    if (names.length === 0) lines.push([row.metric, row.unit, String(row.ours), "-", "-", "-"])
    names.forEach((name, i) =>
      lines.push([
        i === 0 ? row.metric : "",
        i === 0 ? `${row.unit} (${row.better} is better)` : "",
        i === 0 ? String(row.ours) : "",
        name,
        String(row.peers[name]),
        String(row.ratio[name])
      ])
    )
  }
  const widths = lines[0]!.map((_, c) => Math.max(...lines.map((l) => l[c]!.length)))
  process.stdout.write(`suite ${results.suite} on ${results.machine.cpu} (${results.machine.cores} cores, ${results.machine.node})\n`)
  for (const line of lines) process.stdout.write(line.map((cell, c) => cell.padEnd(widths[c]!)).join("  ") + "\n")
}

/** Runs `body` `iterations` times after `warmup` runs and returns operations per second. */
export const opsPerSecond = async (
  body: () => unknown | Promise<unknown>,
  options: { readonly iterations: number; readonly warmup?: number }
): Promise<number> => {
  for (let i = 0; i < (options.warmup ?? Math.ceil(options.iterations / 10)); i++) await body()
  const start = process.hrtime.bigint()
  for (let i = 0; i < options.iterations; i++) await body()
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return options.iterations / seconds
}

/** The p-th percentile (0..100) of samples, in the samples' unit. */
export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] ?? Number.NaN
}

/** Best of `runs` measurements: on shared machines the best run is the least disturbed one. */
export const bestOf = async (runs: number, measure: () => Promise<number>, better: "higher" | "lower" = "higher") => {
  let best = better === "higher" ? -Infinity : Infinity
  for (let i = 0; i < runs; i++) {
    const value = await measure()
    best = better === "higher" ? Math.max(best, value) : Math.min(best, value)
  }
  return best
}
