import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real sockets and real crypto: give slow machines room, but never hang CI.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // A test that makes the process print a DeprecationWarning fails (a clean run prints none).
    setupFiles: ["test/support/no-deprecations.setup.ts"],
  },
});
