/**
 * Prompt revocation: a key removed from the trust bundle stops being accepted
 * at the server's next reload, even for a context token that was verified and
 * cached moments before, and for call tokens signed with the removed JWT key.
 * Real server, real client, real PKI files rewritten on disk.
 */
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { generateSigningKey, publicJwk } from "../../src/runtime/auth/keys.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-rev";
let pki: TestPki;
let server: RpcServer;
let serverMaterial: MaterialSource;
let client: MaterialSource;
let tickets: ReturnType<typeof createTicketServiceClient>;
let originalBundle: string;
let handled = 0;

beforeAll(async () => {
  pki = await createTestPki();
  originalBundle = readFileSync(pkiPaths(pki.dir).bundleJson, "utf8");
  client = await pki.material("payment-service");
  serverMaterial = await pki.material("ticket-service");
  server = await createServer({
    identity: serverMaterial,
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: (req) => {
          handled++;
          return { ticketId: req.ticketId, status: TicketStatus.SOLD };
        },
      }),
    ],
  });
  tickets = createTicketServiceClient({ identity: client, address: `127.0.0.1:${server.port}` });
});

afterAll(async () => {
  if (tickets) closeClient(tickets);
  await server?.stop(1000);
  pki?.cleanup();
});

/** Rewrites bundle.json atomically (as the PKI tooling does) and reloads the server's material. */
async function publishBundle(edit: (bundle: Record<string, any>) => void): Promise<void> {
  const path = pkiPaths(pki.dir).bundleJson;
  const bundle = JSON.parse(readFileSync(path, "utf8"));
  edit(bundle);
  writeFileSync(`${path}.tmp`, JSON.stringify(bundle, null, 2));
  renameSync(`${path}.tmp`, path);
  expect(await serverMaterial.refresh()).toBe(true);
}

afterEach(async () => {
  const path = pkiPaths(pki.dir).bundleJson;
  writeFileSync(`${path}.tmp`, originalBundle);
  renameSync(`${path}.tmp`, path);
  await serverMaterial.refresh();
});

const call = (ctx: string) => tickets.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctx }, timeoutMs: 5000 });

describe("revocation on reload", () => {
  it("a cached context token stops being accepted once its key leaves the bundle", async () => {
    const ctx = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
    expect((await call(ctx)).status).toBe(TicketStatus.SOLD); // verified, now cached
    expect((await call(ctx)).status).toBe(TicketStatus.SOLD); // served from the cache
    const before = handled;

    const replacement = publicJwk(await generateSigningKey());
    await publishBundle((b) => (b.context_keys = [replacement]));

    await expect(call(ctx)).rejects.toMatchObject({ code: 16 }); // UNAUTHENTICATED
    expect(handled).toBe(before);

    // Control: published again, the same token passes, so the refusal was the removal.
    await publishBundle((b) => (b.context_keys = JSON.parse(originalBundle).context_keys));
    expect((await call(ctx)).status).toBe(TicketStatus.SOLD);
  });

  it("call tokens signed with a JWT key removed from the bundle stop verifying at the next reload", async () => {
    const ctx = await pki.contextToken({ tenantId: TENANT, userId: "u-2" });
    expect((await call(ctx)).status).toBe(TicketStatus.SOLD); // the verify-key cache now holds the caller's key
    const before = handled;

    const replacement = publicJwk(await generateSigningKey());
    await publishBundle((b) => (b.jwt_keys[workloadSpiffeId("payment-service")] = [replacement]));

    await expect(call(ctx)).rejects.toMatchObject({ code: 16 });
    expect(handled).toBe(before);

    await publishBundle((b) => (b.jwt_keys = JSON.parse(originalBundle).jwt_keys));
    expect((await call(ctx)).status).toBe(TicketStatus.SOLD);
  });
});
