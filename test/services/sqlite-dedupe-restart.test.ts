/**
 * The durable dedupe store behind a real server: a keyed RecordScan over
 * mTLS, the server stopped and its database closed (a restart), a new server
 * on the same database file: the retry with the same key gets the first
 * answer and the handler does not run again; a new key runs it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterAll, beforeAll, expect, it } from "vitest";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { createTicketServiceClient, TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { createSqliteDedupeStore } from "../../services/shared/sqlite-dedupe-store.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
let pki: TestPki;
let dir: string;
let handlerRuns = 0;

beforeAll(async () => {
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), "tt-dedupe-restart-"));
});
afterAll(() => {
  pki?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** One "process lifetime": database open, server up, `fn` runs, server stopped, database closed. */
async function lifetime<T>(fn: (address: string) => Promise<T>): Promise<T> {
  const db = new DatabaseSync(join(dir, "ticket-service.db"));
  let server: RpcServer | undefined;
  try {
    server = await createServer({
      identity: await pki.material("ticket-service"),
      port: 0,
      logger: silentLogger(),
      dedupeStore: createSqliteDedupeStore(db),
      services: [
        implement(TicketServiceContract, {
          recordScan(req) {
            handlerRuns++;
            return { ticketId: req.ticketId, scanCount: handlerRuns, status: TicketStatus.USED };
          },
        }),
      ],
    });
    return await fn(`127.0.0.1:${server.port}`);
  } finally {
    await server?.stop(1_000);
    db.close();
  }
}

it("a keyed retry after a restart gets the stored answer; the handler ran once", async () => {
  const ctx = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
  const call = async (address: string, key: string) => {
    const client = createTicketServiceClient({ identity: await pki.material("scanning-service"), address });
    try {
      return await client.recordScan({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctx, "idempotency-key": key }, timeoutMs: 5_000 });
    } finally {
      closeClient(client);
    }
  };
  const first = await lifetime((a) => call(a, "scan-key-1"));
  expect(first.scanCount).toBe(1);
  const retried = await lifetime((a) => call(a, "scan-key-1"));
  expect(retried).toEqual(first);
  expect(handlerRuns).toBe(1);
  const other = await lifetime((a) => call(a, "scan-key-2"));
  expect(other.scanCount).toBe(2);
});
