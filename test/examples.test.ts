/**
 * The README's main job runs and prints its results: `npm run example examples/emqp-jobs.ts`.
 */
import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = Path.resolve(Path.dirname(fileURLToPath(import.meta.url)), "..")

describe("examples", () => {
  it("emqp-jobs: a broker, a worker and a client with a typed job", async () => {
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "examples/emqp-jobs.ts"],
        { cwd: root, timeout: 50_000 },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout))
      )
    })
    const lines = output.trim().split("\n")
    assert.deepStrictEqual(lines.slice(0, 2), ["ada: 28", "grace: 99"])
    assert.match(lines[2]!, /^invalid invoice: JobFailed/)
  }, 60_000)
})
