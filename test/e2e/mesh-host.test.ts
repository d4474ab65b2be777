/**
 * One service hosted the way each mesh child (`tt-rpc serve`) hosts it, here
 * ticket-service in-process on free ports: a generated client gets demo data
 * over gRPC (unary and streaming), and the Connect protocol (JSON over
 * HTTP/1.1, what curl speaks) reaches the same handlers under the same
 * security.
 */
import { execFile } from "node:child_process";
import { request } from "node:https";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hostService, type HostedService } from "../../services/host/host.ts";
import { createMaterialSource, type MaterialSource } from "../../src/runtime/identity/material.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { createContextTokenMinter } from "../../src/runtime/auth/context-token.ts";
import { initPki, loadContextSigningKey, pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { ACME as DEMO_TENANT } from "../../services/shared/demo-data.ts";

const DEMO_EVENT = "e-1";

let dir: string;
let mesh: HostedService;
let payment: MaterialSource;
let ops: MaterialSource;
let ctx: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "tt-mesh-"));
  await initPki({ dir });
  mesh = await hostService({ service: "ticket-service", certs: dir, data: join(dir, "data"), host: "127.0.0.1", port: 0, connectPort: 0, logger: silentLogger() });
  payment = await createMaterialSource({ dir, workload: "payment-service", pollMs: 0 });
  ops = await createMaterialSource({ dir, workload: "ops", pollMs: 0 });
  const key = await loadContextSigningKey(dir);
  ctx = await createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: key.current }).mint({ tenantId: DEMO_TENANT, userId: "u-1", scopes: [] });
});

afterAll(async () => {
  await mesh?.stop();
  payment?.close();
  ops?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("a hosted service (as tt-rpc serve runs it)", () => {
  it("serves ticket-service demo data over gRPC to an allowed caller", async () => {
    const server = mesh.server;
    const client = createTicketServiceClient({ identity: payment, address: `127.0.0.1:${server.port}` });
    try {
      const res = await client.getTicketStatus({ tenantId: DEMO_TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctx }, timeoutMs: 5000 });
      expect(res).toMatchObject({ ticketId: "t-1", status: TicketStatus.SOLD, canRefund: true });
      await expect(
        client.getTicketStatus({ tenantId: DEMO_TENANT, ticketId: "nope" }, { headers: { "tt-context": ctx }, timeoutMs: 5000 }),
      ).rejects.toMatchObject({ code: 5 });
    } finally {
      closeClient(client);
    }
  });

  it("streams ListTicketsByEvent (operators may read)", async () => {
    const server = mesh.server;
    const client = createTicketServiceClient({ identity: ops, address: `127.0.0.1:${server.port}` });
    try {
      const ids: string[] = [];
      for await (const r of client.listTicketsByEvent({ tenantId: DEMO_TENANT, eventId: DEMO_EVENT }, { headers: { "tt-context": ctx }, timeoutMs: 5000 })) {
        ids.push(r.ticket!.id);
      }
      expect(ids).toEqual(["t-1", "t-2", "t-3"]);
    } finally {
      closeClient(client);
    }
  });

  it("answers the Connect protocol (JSON over HTTP/1.1 + mTLS) from the same handlers and security", async () => {
    const server = mesh.server;
    const m = ops.current();
    const path = "/tickettoken.ticket.v1.TicketService/GetTicketStatus";
    const token = await createCallTokenMinter({ identity: m.workload.spiffeId, key: m.workload.jwt.current }).mint({
      audience: workloadSpiffeId("ticket-service"),
      method: path,
      contextToken: ctx,
    });
    const post = (headers: Record<string, string>) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          {
            host: "127.0.0.1",
            port: server.connectPort,
            path,
            method: "POST",
            ca: readFileSync(pkiPaths(dir).bundleCa),
            cert: m.workload.certPem,
            key: m.workload.keyPem,
            headers: { "content-type": "application/json", ...headers },
            timeout: 5000,
          },
          (res) => {
            let body = "";
            res.on("data", (c: Buffer) => (body += c.toString()));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on("error", reject);
        req.end(JSON.stringify({ tenantId: DEMO_TENANT, ticketId: "t-2" }));
      });
    const ok = await post({ authorization: `Bearer ${token}`, "tt-context": ctx });
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toMatchObject({ ticketId: "t-2", status: "TICKET_STATUS_SOLD" });
    const replay = await post({ authorization: `Bearer ${token}`, "tt-context": ctx });
    expect(replay.status).toBe(401);
    expect(JSON.parse(replay.body)).toEqual({ code: "unauthenticated", message: "unauthenticated" });
  });

  it("answers plain curl on the Connect port, as the README shows", async () => {
    const server = mesh.server;
    const m = ops.current();
    const w = pkiPaths(dir).workload("ops");
    const path = "/tickettoken.ticket.v1.TicketService/CountOrderTickets";
    const token = await createCallTokenMinter({ identity: m.workload.spiffeId, key: m.workload.jwt.current }).mint({
      audience: workloadSpiffeId("ticket-service"),
      method: path,
      contextToken: ctx,
    });
    const out = await new Promise<string>((resolve, reject) =>
      execFile(
        "curl",
        [
          "--silent", "--show-error", "--max-time", "10",
          "--cacert", pkiPaths(dir).bundleCa, "--cert", w.cert, "--key", w.key,
          "-H", "content-type: application/json",
          "-H", `authorization: Bearer ${token}`,
          "-H", `tt-context: ${ctx}`,
          "--data", JSON.stringify({ tenantId: DEMO_TENANT, orderId: "o-1" }),
          `https://127.0.0.1:${server.connectPort}${path}`,
        ],
        { timeout: 15_000 },
        (err, stdout, stderr) => (err ? reject(new Error(`${err.message}: ${stderr}`)) : resolve(stdout)),
      ),
    );
    expect(JSON.parse(out)).toEqual({ orderId: "o-1", count: 3, hasTickets: true });
  });
});
