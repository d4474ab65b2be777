/**
 * Interop with an independent gRPC implementation: Python's grpcio (gRPC
 * C-core, Debian's python3-grpcio, installed by .ci/run) calls our grpc-js
 * server over mTLS with a per-call token and a context token, and gets the
 * same answers and status codes our own client gets.
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import {
  GetTicketStatusRequestSchema,
  GetTicketStatusResponseSchema,
  TicketStatus,
} from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const PY = "/usr/bin/python3";
const SCRIPT = fileURLToPath(new URL("../support/py_grpc_call.py", import.meta.url));
const PATH = "/tickettoken.ticket.v1.TicketService/GetTicketStatus";
const TENANT = "tenant-py";

let pki: TestPki;
let server: RpcServer;
let ctx: string;

interface PyResult {
  code: number;
  details?: string;
  response?: string;
}

function pyCall(job: { cert?: string; key?: string; metadata: [string, string][]; tenantId?: string }): Promise<PyResult> {
  const request = toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: job.tenantId ?? TENANT, ticketId: "t-9" }));
  const input = JSON.stringify({
    target: `127.0.0.1:${server.port}`,
    ca: pkiPaths(pki.dir).bundleCa,
    cert: job.cert,
    key: job.key,
    method: PATH,
    request: Buffer.from(request).toString("hex"),
    metadata: job.metadata,
  });
  return new Promise((resolve, reject) => {
    const child = execFile(PY, [SCRIPT], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python grpcio failed (is python3-grpcio installed? .ci/run installs it): ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout) as PyResult);
    });
    child.stdin!.end(input);
  });
}

async function token(contextToken: string | undefined): Promise<string> {
  const m = (await pki.material("payment-service")).current().workload;
  return createCallTokenMinter({ identity: m.spiffeId, key: m.jwt.current }).mint({
    audience: workloadSpiffeId("ticket-service"),
    method: PATH,
    contextToken,
  });
}

const payment = () => pkiPaths(pki.dir).workload("payment-service");

beforeAll(async () => {
  pki = await createTestPki();
  ctx = await pki.contextToken({ tenantId: TENANT, userId: "u-py" });
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    services: [implement(TicketServiceContract, { getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.TRANSFERRED }) })],
  });
});

afterAll(async () => {
  await server?.stop(1000);
  pki?.cleanup();
});

describe("interop: Python grpcio client -> our server", () => {
  it("gets a typed answer over mTLS with a call token and a context token", async () => {
    const r = await pyCall({ cert: payment().cert, key: payment().key, metadata: [["authorization", `Bearer ${await token(ctx)}`], ["tt-context", ctx]] });
    expect(r.code, r.details).toBe(0);
    const res = fromBinary(GetTicketStatusResponseSchema, Buffer.from(r.response!, "hex"));
    expect(res).toMatchObject({ ticketId: "t-9", status: TicketStatus.TRANSFERRED });
  });

  it("without a call token: UNAUTHENTICATED", async () => {
    const r = await pyCall({ cert: payment().cert, key: payment().key, metadata: [["tt-context", ctx]] });
    expect(r).toEqual({ code: 16, details: "unauthenticated" });
  });

  it("with a request tenant other than the context tenant: PERMISSION_DENIED", async () => {
    const r = await pyCall({ cert: payment().cert, key: payment().key, tenantId: "someone-else", metadata: [["authorization", `Bearer ${await token(ctx)}`], ["tt-context", ctx]] });
    expect(r).toEqual({ code: 7, details: "permission denied" });
  });

  it("without a client certificate: the TLS handshake fails (grpcio reports UNAVAILABLE; no gRPC status from us)", async () => {
    const r = await pyCall({ metadata: [["authorization", `Bearer ${await token(ctx)}`], ["tt-context", ctx]] });
    expect(r.code, r.details).toBe(14);
  });
});
