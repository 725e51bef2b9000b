/**
 * The README's TypeScript examples compile against the real modules, so the README stays true as the code changes.
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import ts from "typescript"
import { repoRoot } from "./support/peers.js"

const readme = Fs.readFileSync(Path.join(repoRoot, "README.md"), "utf8")
const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!)

// `effect-wire/<module>` resolves to the sources; the files sit under node_modules so `effect` resolves as usual.
const toSource = (code: string) =>
  code.replace(/from "effect-wire(?:\/([a-z]+))?"/g, (_, module: string | undefined) =>
    `from ${JSON.stringify(Path.join(repoRoot, "src", module ?? "", "index.js"))}`)

describe("README", () => {
  it("has TypeScript examples", () => {
    assert.isAtLeast(blocks.length, 4)
  })

  it("examples typecheck", () => {
    const dir = Path.join(repoRoot, "node_modules", ".cache", "readme-examples")
    Fs.rmSync(dir, { recursive: true, force: true })
    Fs.mkdirSync(dir, { recursive: true })
    const files = blocks.map((code, i) => {
      const file = Path.join(dir, `example-${i}.ts`)
      // Each block is a module of its own; its values are unused on purpose.
      Fs.writeFileSync(file, `${toSource(code)}\nexport {}\n`)
      return file
    })
    const config = ts.getParsedCommandLineOfConfigFile(Path.join(repoRoot, "tsconfig.json"), {}, {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: () => {}
    })!
    const program = ts.createProgram(files, { ...config.options, noUnusedLocals: false, noEmit: true })
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file !== undefined && files.includes(d.file.fileName))
    const messages = diagnostics.map((d) => {
      const { line } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0)
      return `${Path.basename(d.file!.fileName)}:${line + 1}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`
    })
    assert.deepStrictEqual(messages, [])
  }, 120_000)
})
