import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    // Interop suites start real peers (RabbitMQ, Go, Python, libzmq): one file at a time per worker is enough.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    sequence: { hooks: "list" },
    projects: [
      { extends: true, test: { name: "unit", include: ["test/**/*.test.ts"], exclude: ["test/interop/**"] } },
      {
        // Interop suites share one RabbitMQ node and fixed-port peers, and some restart or pause the broker:
        // one file at a time, after the unit suites.
        extends: true,
        test: {
          name: "interop",
          include: ["test/interop/**/*.test.ts"],
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 }
        }
      }
    ]
  }
})
