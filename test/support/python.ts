/**
 * Python peers: the venv that `test/interop/setup.sh python` builds at `<peersDir>/venv`, holding pyzmq
 * (with its bundled libzmq) and the EventMQ 0.3.13 reference (`emq-router`, `emq-jobmanager`,
 * `emq-scheduler`, `emq-pubsub`, `emq-cli`).
 */
import * as Path from "node:path"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { missingCommand, peersDir } from "./peers.js"
import { type PeerProcess, type PeerProcessError, runPeer, spawnPeer, type SpawnOptions } from "./process.js"

export const venvDir = Path.join(peersDir, "venv")

/** The venv's interpreter. */
export const venvPython = Path.join(venvDir, "bin", "python")

/** A console script installed in the venv, e.g. `venvBin("emq-router")`. */
export const venvBin = (name: string): string => Path.join(venvDir, "bin", name)

const hint = "build it with test/interop/setup.sh python"

/** For `requirePeer`: why pyzmq cannot be used, or `undefined`. */
export const missingPyzmq = (): string | undefined => missingCommand(venvPython, ["-c", "import zmq"], hint)

/** For `requirePeer`: why the EventMQ reference cannot be used, or `undefined`. */
export const missingEventmq = (): string | undefined =>
  missingCommand(venvPython, ["-c", "import zmq, eventmq.router, eventmq.jobmanager, eventmq.scheduler"], hint)

// Unbuffered, so that a peer's "ready" line arrives when it is printed.
const pythonEnv = { PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" }

const withPythonEnv = (options: SpawnOptions): SpawnOptions => ({
  ...options,
  env: { ...pythonEnv, ...options.env }
})

/** Runs `python -c code args...` as a scoped peer; `sys.argv[1:]` are `args`. */
export const spawnPython = (
  code: string,
  args: ReadonlyArray<string> = [],
  options: SpawnOptions = {}
): Effect.Effect<PeerProcess, PeerProcessError, Scope.Scope> =>
  spawnPeer(venvPython, ["-c", code, ...args], { name: "python", ...withPythonEnv(options) })

/** Runs `python -c code args...` to completion and returns its stdout. */
export const runPython = (
  code: string,
  args: ReadonlyArray<string> = [],
  options: SpawnOptions & { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<string, PeerProcessError> =>
  runPeer(venvPython, ["-c", code, ...args], { name: "python", ...withPythonEnv(options) })

/** EventMQ's programs. */
export type EventmqProgram = "emq-router" | "emq-jobmanager" | "emq-scheduler" | "emq-pubsub" | "emq-cli"

/**
 * The EventMQ settings a reference program reads from its environment (`EVENTMQ_<NAME>` overrides
 * `eventmq.conf`), e.g. `{ FRONTEND_ADDR: "tcp://127.0.0.1:47291" }`.
 */
export type EventmqSettings = Readonly<Record<string, string>>

/**
 * Starts a reference EventMQ program as a scoped peer. `settings` become `EVENTMQ_*` variables, which the
 * reference prefers over its config file; the config file defaults to one that does not exist, so nothing
 * on the machine leaks in.
 */
export const spawnEventmq = (
  program: EventmqProgram,
  settings: EventmqSettings = {},
  args: ReadonlyArray<string> = [],
  options: SpawnOptions = {}
): Effect.Effect<PeerProcess, PeerProcessError, Scope.Scope> => {
  const env: Record<string, string> = { EVENTMQ_CONFIG_FILE: Path.join(venvDir, "no-eventmq.conf") }
  for (const [key, value] of Object.entries(settings)) env[`EVENTMQ_${key}`] = value
  return spawnPeer(venvBin(program), args, {
    name: program,
    ...withPythonEnv({ ...options, env: { ...env, ...options.env } })
  })
}
