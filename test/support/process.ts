/**
 * Real peers as scoped child processes.
 *
 * `spawnPeer` starts a program in its own process group and ties it to the current `Scope`: closing the scope
 * (or interrupting the fiber) sends SIGTERM to the whole group, then SIGKILL after a grace period, and waits for
 * the exit, so a peer's own children (worker processes, forks) die with it. Its stdout arrives as lines through a
 * bounded mailbox (a peer that prints faster than the test reads is paused by the pipe, not buffered without
 * bound); its stderr is kept as a short tail for error messages.
 *
 * Timers here are real `setTimeout`s, not the Effect `Clock`: a peer lives in real time even inside a test that
 * runs on `TestClock`.
 */
import * as ChildProcess from "node:child_process"
import * as Readline from "node:readline"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Mailbox from "effect/Mailbox"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

export class PeerProcessError extends Data.TaggedError("PeerProcessError")<{
  readonly reason: "SpawnFailed" | "Timeout" | "ExitedEarly" | "NonZeroExit"
  readonly peer: string
  readonly message: string
}> {}

export interface ExitStatus {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface SpawnOptions {
  /** A short name for messages and logs; defaults to the command's base name. */
  readonly name?: string
  readonly cwd?: string
  /** Added to the parent's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** Keep stdin open as a pipe (for `writeStdin`); otherwise it is /dev/null. */
  readonly stdin?: boolean
  /** stdout lines buffered before the peer is paused. Default 1024. */
  readonly lineBuffer?: number
  /** Between SIGTERM and SIGKILL when the scope closes. Default 2 seconds. */
  readonly killGrace?: Duration.DurationInput
}

export interface PeerProcess {
  readonly name: string
  readonly pid: number
  /** stdout, line by line, ending when the peer closes its stdout. Lines taken by `waitForLine` are gone. */
  readonly lines: Stream.Stream<string>
  /** Takes stdout lines until one matches and returns it; fails if the peer exits or the time runs out first. */
  readonly waitForLine: (
    match: RegExp | ((line: string) => boolean),
    timeout?: Duration.DurationInput
  ) => Effect.Effect<string, PeerProcessError>
  readonly writeStdin: (text: string) => Effect.Effect<void, PeerProcessError>
  /** The last lines the peer wrote to stderr. */
  readonly stderrTail: Effect.Effect<ReadonlyArray<string>>
  /** Waits for the peer to exit. */
  readonly exit: Effect.Effect<ExitStatus>
  /** Signals the whole process group. */
  readonly signal: (signal: NodeJS.Signals) => Effect.Effect<void>
}

const STDERR_TAIL = 60

interface Spawned {
  readonly child: ChildProcess.ChildProcess
  readonly stdoutLines: Readline.Interface
  readonly stderrLines: Readline.Interface
  readonly iterator: AsyncIterator<string>
}

/**
 * Fails with `onTimeout` after `duration` of real time. Both sides are interruptible, so that the loser can be
 * stopped even inside a finalizer (which runs uninterruptibly).
 */
const realTimeout = <A, E, E2>(
  self: Effect.Effect<A, E>,
  duration: Duration.DurationInput,
  onTimeout: () => E2
): Effect.Effect<A, E | E2> =>
  Effect.raceFirst(
    Effect.interruptible(self),
    Effect.interruptible(Effect.async<never, E2>((resume) => {
      const timer = setTimeout(() => resume(Effect.fail(onTimeout())), Duration.toMillis(duration))
      return Effect.sync(() => clearTimeout(timer))
    }))
  )

const signalGroup = (pid: number, signal: NodeJS.Signals): void => {
  try {
    process.kill(-pid, signal)
  } catch {
    // Already gone.
  }
}

const describeExit = (status: ExitStatus): string =>
  status.signal !== null ? `killed by ${status.signal}` : `exited with code ${status.code}`

/**
 * Starts `command args` as a peer owned by the current scope.
 */
export const spawnPeer = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions = {}
): Effect.Effect<PeerProcess, PeerProcessError, Scope.Scope> =>
  Effect.gen(function*() {
    const name = options.name ?? command.split("/").pop() ?? command
    const lines = yield* Mailbox.make<string>(options.lineBuffer ?? 1024)
    const exited = yield* Deferred.make<ExitStatus>()
    const stderrClosed = yield* Deferred.make<void>()
    const stderr: Array<string> = []
    const grace = options.killGrace ?? Duration.seconds(2)

    // Everything is wired inside the spawn callback, so that no exit, stdout line or stderr line can slip by.
    const spawned = yield* Effect.async<Spawned, PeerProcessError>((resume) => {
      const child = ChildProcess.spawn(command, args, {
        cwd: options.cwd,
        env: { ...process.env, ...options.env },
        stdio: [options.stdin === true ? "pipe" : "ignore", "pipe", "pipe"],
        detached: true
      })
      const onError = (error: Error) =>
        resume(Effect.fail(new PeerProcessError({ reason: "SpawnFailed", peer: name, message: `${name}: ${error.message}` })))
      child.once("error", onError)
      child.once("spawn", () => {
        child.off("error", onError)
        child.once("exit", (code, signal) => Deferred.unsafeDone(exited, Exit.succeed({ code, signal })))
        const stderrLines = Readline.createInterface({ input: child.stderr!, crlfDelay: Infinity })
        stderrLines.on("line", (line) => {
          stderr.push(line)
          if (stderr.length > STDERR_TAIL) stderr.shift()
          if (process.env.EFFECT_WIRE_PEER_LOG) process.stderr.write(`[${name}!] ${line}\n`)
        })
        stderrLines.once("close", () => Deferred.unsafeDone(stderrClosed, Exit.void))
        const stdoutLines = Readline.createInterface({ input: child.stdout!, crlfDelay: Infinity })
        // Created now so that it buffers from the first line; it pauses stdout when the test reads slowly.
        const iterator = stdoutLines[Symbol.asyncIterator]()
        resume(Effect.succeed({ child, stdoutLines, stderrLines, iterator }))
      })
    })
    const { child, iterator, stderrLines, stdoutLines } = spawned
    const pid = child.pid!

    const reader = yield* Stream.fromAsyncIterable({ [Symbol.asyncIterator]: () => iterator }, (error) => error).pipe(
      Stream.tap((line) =>
        process.env.EFFECT_WIRE_PEER_LOG ? Effect.sync(() => process.stderr.write(`[${name}] ${line}\n`)) : Effect.void
      ),
      Stream.runForEach((line) => lines.offer(line)),
      Effect.ignore,
      Effect.zipRight(lines.end),
      Effect.forkDaemon
    )

    // One finalizer does it all, in order: stop the group, then close the pipes so the reader ends by itself.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (!(yield* Deferred.isDone(exited))) {
          signalGroup(pid, "SIGTERM")
          yield* realTimeout(Deferred.await(exited), grace, () => "grace" as const).pipe(
            Effect.catchAll(() => Effect.sync(() => signalGroup(pid, "SIGKILL")).pipe(Effect.zipRight(Deferred.await(exited))))
          )
        }
        // The leader may be gone while its children live on (holding the pipes open): sweep the group.
        signalGroup(pid, "SIGKILL")
        stdoutLines.close()
        stderrLines.close()
        child.stdout?.destroy()
        child.stderr?.destroy()
        child.stdin?.destroy()
        yield* Fiber.interrupt(reader)
      })
    )

    const context = (what: string) =>
      Effect.gen(function*() {
        // A peer whose stdout just closed is probably exiting, with its last words still in the stderr pipe.
        if (what.startsWith("stdout closed")) {
          yield* realTimeout(
            Effect.zipRight(Deferred.await(exited), Deferred.await(stderrClosed)),
            Duration.millis(500),
            () => "late"
          ).pipe(Effect.ignore)
        }
        const status = yield* Deferred.poll(exited)
        const state = Option.isSome(status) ? `; ${describeExit(yield* status.value)}` : ""
        const tail = stderr.length > 0 ? `\n--- ${name} stderr (tail) ---\n${stderr.slice(-20).join("\n")}` : ""
        return `${name}: ${what}${state}${tail}`
      })

    const waitForLine: PeerProcess["waitForLine"] = (match, timeout = Duration.seconds(20)) => {
      const test = typeof match === "function" ? match : (line: string) => match.test(line)
      const find: Effect.Effect<string, PeerProcessError> = lines.take.pipe(
        Effect.catchAll(() =>
          Effect.flatMap(
            context(`stdout closed before a line matched ${String(match)}`),
            (message) => Effect.fail(new PeerProcessError({ reason: "ExitedEarly", peer: name, message }))
          )
        ),
        Effect.flatMap((line) => (test(line) ? Effect.succeed(line) : find))
      )
      return realTimeout(find, timeout, () => "timeout" as const).pipe(
        Effect.catchIf(
          (e): e is "timeout" => e === "timeout",
          () =>
            Effect.flatMap(
              context(`no line matched ${String(match)} within ${Duration.format(timeout)}`),
              (message) => Effect.fail(new PeerProcessError({ reason: "Timeout", peer: name, message }))
            )
        )
      )
    }

    const writeStdin = (text: string) =>
      Effect.async<void, PeerProcessError>((resume) => {
        const stdin = child.stdin
        if (stdin === null || stdin.destroyed) {
          resume(Effect.fail(new PeerProcessError({ reason: "ExitedEarly", peer: name, message: `${name}: stdin is closed` })))
          return
        }
        stdin.write(text, (error) =>
          resume(
            error
              ? Effect.fail(new PeerProcessError({ reason: "ExitedEarly", peer: name, message: `${name}: ${error.message}` }))
              : Effect.void
          ))
      })

    return {
      name,
      pid,
      lines: Mailbox.toStream(lines),
      waitForLine,
      writeStdin,
      stderrTail: Effect.sync(() => stderr.slice()),
      exit: Deferred.await(exited),
      signal: (signal) => Effect.sync(() => signalGroup(pid, signal))
    } satisfies PeerProcess
  })

/**
 * Runs a program to completion and returns its stdout; fails with its stderr when it exits non-zero or
 * outlives `timeout`.
 */
export const runPeer = (
  command: string,
  args: ReadonlyArray<string>,
  options: SpawnOptions & { readonly timeout?: Duration.DurationInput } = {}
): Effect.Effect<string, PeerProcessError> =>
  Effect.scoped(
    Effect.gen(function*() {
      const peer = yield* spawnPeer(command, args, options)
      const output = yield* Effect.fork(Stream.runCollect(peer.lines))
      const timeout = options.timeout ?? Duration.seconds(60)
      const status = yield* realTimeout(peer.exit, timeout, () =>
        new PeerProcessError({
          reason: "Timeout",
          peer: peer.name,
          message: `${peer.name}: still running after ${Duration.format(timeout)}`
        }))
      const stdout = Array.from(yield* Fiber.join(output)).join("\n")
      if (status.code !== 0) {
        const tail = (yield* peer.stderrTail).join("\n")
        return yield* new PeerProcessError({
          reason: "NonZeroExit",
          peer: peer.name,
          message: `${peer.name} ${args.join(" ")}: ${describeExit(status)}\n${tail}`
        })
      }
      return stdout
    })
  )
