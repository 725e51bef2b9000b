/**
 * Runs the Go muxado peers (test/interop/go/cmd/muxado-*) as child processes, scoped: each is killed when the
 * scope closes, whatever happened.
 */
import { spawn } from "node:child_process"
import * as Path from "node:path"
import * as Readline from "node:readline"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { peersDir } from "../support/peers.js"

export type GoLib = "upstream" | "ngrok"

export const goLibs: ReadonlyArray<GoLib> = ["upstream", "ngrok"]

export const goBinary = (lib: GoLib) => Path.join(peersDir, "bin", `muxado-${lib}`)

export interface GoPeer {
  /** Every stdout line so far. */
  readonly lines: ReadonlyArray<string>
  /** The first line (past or future) matching `pattern`. */
  readonly waitFor: (pattern: RegExp, timeoutMs?: number) => Effect.Effect<string>
  /** The exit code, once the process has exited. */
  readonly exited: Effect.Effect<number | null>
  readonly stderr: () => string
}

export const spawnGo = (lib: GoLib, args: ReadonlyArray<string>): Effect.Effect<GoPeer, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = spawn(goBinary(lib), [...args], { stdio: ["ignore", "pipe", "pipe"] })
      const lines: Array<string> = []
      const listeners = new Set<() => void>()
      let stderr = ""
      let exitCode: number | null | undefined
      child.stderr.on("data", (chunk: Buffer) => {
        if (stderr.length < 64 * 1024) stderr += chunk.toString()
      })
      Readline.createInterface({ input: child.stdout }).on("line", (line) => {
        lines.push(line)
        for (const listener of listeners) listener()
      })
      child.on("exit", (code) => {
        exitCode = code
        for (const listener of listeners) listener()
      })
      const waitFor = (pattern: RegExp, timeoutMs = 20_000) =>
        Effect.async<string>((resume) => {
          const check = () => {
            const found = lines.find((l) => pattern.test(l))
            if (found !== undefined) {
              listeners.delete(check)
              resume(Effect.succeed(found))
            } else if (exitCode !== undefined) {
              listeners.delete(check)
              resume(Effect.dieMessage(`go peer exited (${exitCode}) before ${pattern}: ${lines.join(" | ")} ${stderr}`))
            }
          }
          listeners.add(check)
          check()
          return Effect.sync(() => listeners.delete(check))
        }).pipe(
          Effect.timeoutFail({
            duration: timeoutMs,
            onTimeout: () => new Error(`timed out waiting for ${pattern}; lines: ${lines.join(" | ")} ${stderr}`)
          }),
          Effect.orDie
        )
      const exited = Effect.async<number | null>((resume) => {
        const check = () => {
          if (exitCode !== undefined) {
            listeners.delete(check)
            resume(Effect.succeed(exitCode))
          }
        }
        listeners.add(check)
        check()
        return Effect.sync(() => listeners.delete(check))
      })
      const peer: GoPeer = { lines, waitFor, exited, stderr: () => stderr }
      return { child, peer }
    }),
    ({ child }) =>
      Effect.sync(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL")
      })
  ).pipe(Effect.map(({ peer }) => peer))

/** A Go server peer; returns it with the port it listens on. */
export const goServer = (lib: GoLib, mode: string, extra: ReadonlyArray<string> = []) =>
  Effect.gen(function*() {
    const peer = yield* spawnGo(lib, ["-role", "server", "-mode", mode, "-addr", "127.0.0.1:0", ...extra])
    const line = yield* peer.waitFor(/^listening /)
    const port = Number(line.slice(line.lastIndexOf(":") + 1))
    return { peer, port }
  })
