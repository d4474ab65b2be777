import { defineConfig } from "vitest/config";

// Workspace packages (@tickettoken/*) resolve to their TypeScript sources, in the tests and in
// every child process a test starts (NODE_OPTIONS), never to a possibly stale dist/.
const SOURCE_CONDITIONS = ["tt-rpc-source", "node", "import", "default"];

export default defineConfig({
  resolve: { conditions: SOURCE_CONDITIONS },
  ssr: { resolve: { conditions: SOURCE_CONDITIONS } },
  test: {
    include: ["test/**/*.test.ts"],
    env: { NODE_OPTIONS: "--conditions=tt-rpc-source" },
    // Real sockets and real crypto: give slow machines room, but never hang CI.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // A test that makes the process print a DeprecationWarning fails (a clean run prints none).
    setupFiles: ["test/support/no-deprecations.setup.ts"],
  },
});
