/**
 * The peer-process helper keeps its promises: lines arrive in order, waits fail with the peer's own words,
 * and closing the scope leaves no process of the peer's group running, grandchildren included.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Stream from "effect/Stream"
import { runPeer, spawnPeer } from "./process.js"

/** Running, as opposed to gone or a zombie (a killed orphan waits for init to reap it, which may never come). */
const alive = (pid: number): boolean => {
  try {
    const stat = Fs.readFileSync(`/proc/${pid}/stat`, "utf8")
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
  } catch {
    return false
  }
}

const sh = (script: string) => spawnPeer("/bin/sh", ["-c", script], { name: "sh", killGrace: Duration.millis(500) })

describe("spawnPeer", () => {
  it.live("streams stdout lines in order and reports the exit", () =>
    Effect.scoped(Effect.gen(function*() {
      const peer = yield* sh("for i in 1 2 3 4 5; do echo line $i; done; exit 7")
      const lines = yield* Stream.runCollect(peer.lines)
      assert.deepStrictEqual(Chunk.toReadonlyArray(lines), ["line 1", "line 2", "line 3", "line 4", "line 5"])
      assert.deepStrictEqual(yield* peer.exit, { code: 7, signal: null })
    })))

  it.live("waitForLine skips to the matching line; the lines after it stay readable", () =>
    Effect.scoped(Effect.gen(function*() {
      const peer = yield* sh("echo starting; echo 'listening on 127.0.0.1:4242'; echo after")
      assert.strictEqual(yield* peer.waitForLine(/^listening on /), "listening on 127.0.0.1:4242")
      assert.strictEqual(yield* peer.waitForLine(() => true), "after")
    })))

  it.live("closing the scope kills the whole process group, grandchildren included", () =>
    Effect.gen(function*() {
      const [leader, grandchild] = yield* Effect.scoped(Effect.gen(function*() {
        // The shell ignores SIGTERM, so the helper must escalate to SIGKILL after the grace period.
        const peer = yield* sh("trap '' TERM; sleep 60 & echo $!; wait")
        const child = Number(yield* peer.waitForLine(/^\d+$/))
        assert.isTrue(alive(peer.pid))
        assert.isTrue(alive(child))
        return [peer.pid, child] as const
      }))
      assert.isFalse(alive(leader))
      yield* Effect.sleep(Duration.millis(100))
      assert.isFalse(alive(grandchild))
    }))

  it.live("interrupting the fiber that owns the scope kills the peer too", () =>
    Effect.gen(function*() {
      let pid = 0
      const fiber = yield* Effect.fork(Effect.scoped(Effect.gen(function*() {
        const peer = yield* sh("echo up; exec sleep 60")
        pid = peer.pid
        yield* peer.waitForLine(/^up$/)
        yield* Effect.never
      })))
      while (pid === 0) yield* Effect.sleep(Duration.millis(10))
      yield* Effect.sleep(Duration.millis(100))
      yield* Fiber.interrupt(fiber)
      assert.isFalse(alive(pid))
    }))

  it.live("waitForLine times out with the peer's stderr in the message", () =>
    Effect.scoped(Effect.gen(function*() {
      const peer = yield* sh("echo 'config file missing' >&2; exec sleep 60")
      const error = yield* Effect.flip(peer.waitForLine(/^ready$/, Duration.millis(300)))
      assert.strictEqual(error.reason, "Timeout")
      assert.include(error.message, "config file missing")
    })))

  it.live("waitForLine fails as soon as the peer ends without the line", () =>
    Effect.scoped(Effect.gen(function*() {
      const peer = yield* sh("echo 'bind: address in use' >&2; exit 3")
      const error = yield* Effect.flip(peer.waitForLine(/^ready$/))
      assert.strictEqual(error.reason, "ExitedEarly")
      assert.include(error.message, "bind: address in use")
    })))

  it.live("a program that does not exist fails to spawn", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Effect.scoped(spawnPeer("/nonexistent/peer", [])))
      assert.strictEqual(error.reason, "SpawnFailed")
      assert.include(error.message, "ENOENT")
    }))

  it.live("a peer that prints far more than the line buffer holds still delivers every line, in order", () =>
    Effect.scoped(Effect.gen(function*() {
      const peer = yield* spawnPeer("/bin/sh", ["-c", "i=0; while [ $i -lt 20000 ]; do echo $i; i=$((i+1)); done"], {
        lineBuffer: 16
      })
      const lines = yield* Stream.runCollect(peer.lines)
      assert.strictEqual(lines.length, 20000)
      assert.strictEqual(Chunk.unsafeGet(lines, 19999), "19999")
    })))
})

describe("runPeer", () => {
  it.live("returns stdout of a successful run and fails with stderr on a non-zero exit", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* runPeer("/bin/sh", ["-c", "echo a; echo b"]), "a\nb")
      const error = yield* Effect.flip(runPeer("/bin/sh", ["-c", "echo oops >&2; exit 2"]))
      assert.strictEqual(error.reason, "NonZeroExit")
      assert.include(error.message, "exited with code 2")
      assert.include(error.message, "oops")
    }))

  it.live("fails a run that outlives its timeout", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(runPeer("/bin/sh", ["-c", "exec sleep 60"], { timeout: Duration.millis(200) }))
      assert.strictEqual(error.reason, "Timeout")
    }))
})
