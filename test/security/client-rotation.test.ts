/**
 * Client-side rotation and the server's connection age cap: a client whose
 * certificate is rotated on disk keeps running; once the server's GOAWAY
 * (maxConnectionAgeMs) retires the old connection, its next call arrives on a
 * new connection that presents the new certificate. No restart anywhere.
 */
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import type { ServerInterceptor } from "../../src/runtime/contract/call.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { pkiPaths, rotateLeaf } from "../../src/devtools/pki/dev-ca.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-rot";
let pki: TestPki;
let server: RpcServer;
let client: MaterialSource;
let ctx: string;
/** SHA-256 fingerprint of the client certificate of each call, in order. */
const seen: string[] = [];

const recordPeer: ServerInterceptor = (next) => async (call) => {
  seen.push(call.peer?.certificate()?.fingerprint256 ?? "none");
  return next(call);
};

const diskFingerprint = () => new X509Certificate(readFileSync(pkiPaths(pki.dir).workload("payment-service").cert)).fingerprint256;

beforeAll(async () => {
  pki = await createTestPki();
  client = await pki.material("payment-service");
  ctx = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    maxConnectionAgeMs: 400,
    interceptors: [recordPeer],
    services: [implement(TicketServiceContract, { getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD }) })],
  });
});

afterAll(async () => {
  await server?.stop(1000);
  pki?.cleanup();
});

describe("client certificate rotation", () => {
  it("a long-lived client presents its rotated certificate on the connection after GOAWAY", async () => {
    const tickets = createTicketServiceClient({ identity: client, address: `127.0.0.1:${server.port}` });
    const call = () => tickets.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctx }, timeoutMs: 5000 });
    try {
      const before = diskFingerprint();
      expect((await call()).status).toBe(TicketStatus.SOLD);
      expect(seen.at(-1)).toBe(before);

      await rotateLeaf({ dir: pki.dir, workload: "payment-service" });
      expect(await client.refresh()).toBe(true);
      const after = diskFingerprint();
      expect(after).not.toBe(before);

      // Keep calling until the server has retired the old connection (bounded: ~5 s).
      for (let i = 0; i < 50 && seen.at(-1) !== after; i++) {
        await new Promise((r) => setTimeout(r, 100));
        expect((await call()).status).toBe(TicketStatus.SOLD);
      }
      expect(seen.at(-1)).toBe(after);
    } finally {
      closeClient(tickets);
    }
  });
});
