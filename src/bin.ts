#!/usr/bin/env node
/**
 * The `effect-wire` command: `effect-wire emqp broker|worker …`.
 *
 * A file of its own so that it runs whatever path it is started through (npm's `.bin` links included).
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { run } from "./emqp/cli.js"

NodeRuntime.runMain(run(process.argv.slice(2)))
