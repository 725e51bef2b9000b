import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Interop suites start real peers (RabbitMQ, Go, Python, libzmq): one file at a time per worker is enough.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    sequence: { hooks: "list" }
  }
})
