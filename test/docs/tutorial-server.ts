/**
 * ticket-service for test/docs/tutorial.test.ts, run as a child process in the
 * tutorial's scratch copy of the repository (so its imports are that copy's
 * freshly generated contracts and edited handlers): the real module (migrated,
 * seeded, in-memory SQLite) behind createServer over mTLS, with the identity
 * from TUTORIAL_CERTS. Prints "listening <address>"; stops on SIGTERM.
 */
import { createMaterialSource } from "../../src/runtime/identity/material.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createServer } from "../../src/runtime/server/server.ts";
import { openService } from "../../services/shared/runtime.ts";
import { ticketModule } from "../../services/ticket/index.ts";

const dir = process.env.TUTORIAL_CERTS;
if (!dir) throw new Error("TUTORIAL_CERTS is not set");
const logger = silentLogger();
const identity = await createMaterialSource({ dir, workload: "ticket-service", pollMs: 0 });
const service = openService(ticketModule, { identity, logger, database: ":memory:", env: {} });
const server = await createServer({ identity, services: [service.registration], host: "127.0.0.1", port: 0, logger });
process.stdout.write(`listening 127.0.0.1:${server.port}\n`);

process.once("SIGTERM", () => {
  void server.stop(1_000).finally(() => {
    service.close();
    identity.close();
    process.exit(0);
  });
});
// The test's end: if the test runner dies, so does this process.
process.stdin.resume();
process.stdin.once("end", () => process.kill(process.pid, "SIGTERM"));
