import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Real sockets and real crypto: give slow machines room, but never hang CI.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
