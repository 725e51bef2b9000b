/**
 * `node --import ./bench/loader/register.mjs`: runs the benchmarks' TypeScript (and the library's) through
 * esbuild with its defaults. tsx, which the tests and examples use, forces esbuild's `keepNames`: every named
 * closure our code creates then costs a `defineProperty` call, which the peers' compiled JavaScript never pays and
 * the published package (compiled by tsc) does not either.
 */
import { register } from "node:module"

register("./hooks.mjs", import.meta.url)
