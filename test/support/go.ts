/**
 * Go peers: the programs under `test/interop/go/cmd/<name>`, built by `test/interop/setup.sh go` into
 * `<peersDir>/bin/<name>`.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { missingFile, peersDir, repoRoot } from "./peers.js"
import { type PeerProcess, type PeerProcessError, spawnPeer, type SpawnOptions } from "./process.js"

/** The Go module holding the peer programs. */
export const goModuleDir = Path.join(repoRoot, "test", "interop", "go")

/** Where the built binaries go. */
export const goBinDir = Path.join(peersDir, "bin")

/** The path of a built Go peer. */
export const goPeerPath = (name: string): string => Path.join(goBinDir, name)

/** The names of the Go peer programs in the source tree (each `cmd/<name>` directory). */
export const goPeerNames = (): ReadonlyArray<string> => {
  const cmd = Path.join(goModuleDir, "cmd")
  if (!Fs.existsSync(cmd)) return []
  return Fs.readdirSync(cmd, { withFileTypes: true })
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
}

/** For `requirePeer`: why the Go peer `name` cannot run, or `undefined` when it is built. */
export const missingGoPeer = (name: string): string | undefined =>
  missingFile(goPeerPath(name), "build it with test/interop/setup.sh go")

/** Starts a built Go peer as a scoped child process (see `spawnPeer`). */
export const spawnGoPeer = (
  name: string,
  args: ReadonlyArray<string> = [],
  options: SpawnOptions = {}
): Effect.Effect<PeerProcess, PeerProcessError, Scope.Scope> =>
  spawnPeer(goPeerPath(name), args, { name, ...options })
