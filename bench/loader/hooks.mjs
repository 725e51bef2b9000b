/**
 * Module hooks for the benchmarks: `.js` imports that name a `.ts` source resolve to it (the NodeNext convention
 * of this repository), and `.ts` files outside node_modules are stripped of their types by esbuild.
 */
import { readFile } from "node:fs/promises"
import { fileURLToPath } from "node:url"
import { transform } from "esbuild"

const isLocal = (url) => url.startsWith("file:") && !url.includes("/node_modules/")

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context)
  } catch (error) {
    const relative = specifier.startsWith(".") || specifier.startsWith("/") || specifier.startsWith("file:")
    if (!relative || !specifier.endsWith(".js") || context.parentURL === undefined || !isLocal(context.parentURL)) {
      throw error
    }
    return nextResolve(`${specifier.slice(0, -3)}.ts`, context)
  }
}

export async function load(url, context, nextLoad) {
  if (!isLocal(url) || !url.endsWith(".ts")) return nextLoad(url, context)
  const source = await readFile(new URL(url), "utf8")
  const { code } = await transform(source, {
    loader: "ts",
    format: "esm",
    target: `node${process.versions.node}`,
    sourcefile: fileURLToPath(url)
  })
  return { format: "module", source: code, shortCircuit: true }
}
