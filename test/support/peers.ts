/**
 * How interop suites find their real peers.
 *
 * A suite asks for a peer with `requirePeer`. Outside CI a missing peer skips the suite with one loud line;
 * under `CI=true` a missing peer fails the run, never skips.
 */
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export const isCI = process.env.CI === "true" || process.env.CI === "1"

export const repoRoot = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..", "..")

/** Where `.ci/run` (or `test/interop/setup.sh`) puts built peers: Go binaries, the Python venv. */
export const peersDir = process.env.EFFECT_WIRE_PEERS ?? Path.join(repoRoot, ".peers")

/**
 * `undefined` when the peer is there, else the reason it is not. In CI a missing peer throws, failing the
 * suite; elsewhere it prints `SKIP <suite>: <reason>` once and the caller skips.
 */
export const requirePeer = (suite: string, missing: string | undefined): boolean => {
  if (missing === undefined) return true
  if (isCI) throw new Error(`${suite}: required peer missing in CI: ${missing}`)
  process.stderr.write(`\nSKIP ${suite}: ${missing}\n`)
  return false
}

/** The reason an executable is missing, or `undefined` when it exists. */
export const missingFile = (file: string, hint: string): string | undefined =>
  Fs.existsSync(file) ? undefined : `${file} not found (${hint})`

/** Runs a probe command; `undefined` when it exits 0, else its error. */
export const missingCommand = (command: string, args: ReadonlyArray<string>, hint: string): string | undefined => {
  try {
    execFileSync(command, args, { stdio: "ignore", timeout: 10_000 })
    return undefined
  } catch (error) {
    return `${command} ${args.join(" ")} failed (${hint}): ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`
  }
}
