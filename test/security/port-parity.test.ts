/**
 * Same rules on every port (issue #7.2): every adversarial token /
 * authorization case (test/support/adversarial-cases.ts) runs against the
 * gRPC port (raw grpc-js), and the Connect port over HTTP/2 and over
 * HTTP/1.1 (raw requests, as curl sends them), on real createServer
 * instances with mTLS from the test PKI. Each port must give the same code,
 * the same generic message, never run the handler for a rejection, and log
 * the same reason. Then the repeated-`authorization`-field case, which each
 * transport hides differently (HTTP/2 keeps one value, Node's HTTP/1.1 parser
 * keeps only the first), must be refused on every port too.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { EventServiceContract } from "../../src/contracts/gen/tickettoken/event/v1/event_service_rpc.ts";
import {
  GetTicketStatusRequestSchema,
  GetTicketStatusResponseSchema,
  TicketStatus,
} from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { GetEventRequestSchema, GetEventResponseSchema } from "../../src/contracts/gen/tickettoken/event/v1/event_service_pb.ts";
import { callContext } from "../../src/runtime/auth/call-context.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import {
  createAdversarialKit,
  EVENT_PATH,
  OK,
  TENANT,
  TICKET_ID,
  TICKET_PATH,
  UNAUTHENTICATED,
  type Attempt,
  type HandledCall,
  type Outcome,
} from "../support/adversarial-cases.ts";
import { rawGrpcUnary } from "../support/adversarial-h2.ts";
import { connectH1, connectH2, type ConnectRequest } from "../support/connect-raw.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs } from "../support/log-capture.ts";

const DEADLINE_MS = 5000;
/** SNI names a service (the server check is off here): an IP as TLS server name is deprecated (DEP0123). */
const SNI = { "grpc.ssl_target_name_override": "ticket-service" };
type Port = "grpc" | "connect-h2" | "connect-h1";
const PORTS: readonly Port[] = ["grpc", "connect-h2", "connect-h1"];

const { logger, lines: logLines } = captureLogs();
const reasonsSince = (mark: number) =>
  logLines
    .slice(mark)
    .map((l) => (JSON.parse(l) as { reason?: string }).reason)
    .filter((r) => r !== undefined)
    .join("\n");
const secrets = new Set<string>();
const secret = <T extends string>(t: T): T => (secrets.add(t), t);

const handled: HandledCall[] = [];
let pki: TestPki;
let caPem: string;
const mats = new Map<WorkloadName, MaterialSource>();
let ticketServer: RpcServer;
let eventServer: RpcServer;
let ctxToken: string;
let ctxNoScope: string;
let ctxOtherTenant: string;
const grpcClients = new Map<string, grpc.Client>();
const h2Clients = new Map<string, ReturnType<typeof connectH2>>();

const m = (w: WorkloadName) => mats.get(w)!.current();
const kit = createAdversarialKit({ material: m, pkiDir: () => pki.dir, tokens: () => ({ ctxToken, ctxNoScope, ctxOtherTenant }), secret });

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  for (const w of ["ticket-service", "event-service", "payment-service", "order-service", "ops"] as const) mats.set(w, await pki.material(w));
  ticketServer = await createServer({
    identity: mats.get("ticket-service")!,
    port: 0,
    connectPort: 0,
    logger,
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: (req, ctx: HandlerContext) => {
          handled.push({ ctx: callContext(ctx), tenantField: req.tenantId });
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
      }),
    ],
  });
  eventServer = await createServer({
    identity: mats.get("event-service")!,
    port: 0,
    connectPort: 0,
    logger,
    services: [
      implement(EventServiceContract, {
        getEvent: (req, ctx: HandlerContext) => {
          handled.push({ ctx: callContext(ctx), tenantField: req.tenantId });
          return { event: { id: req.eventId, tenantId: req.tenantId, name: "Jazz Night" } };
        },
      }),
    ],
  });
  ctxToken = secret(await pki.contextToken({ tenantId: TENANT, userId: "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11", scopes: ["events:read"] }));
  ctxNoScope = secret(await pki.contextToken({ tenantId: TENANT, userId: "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11", scopes: [] }));
  ctxOtherTenant = secret(
    await pki.contextToken({ tenantId: "0b6f3c1e-9f7e-4d1a-8c55-3e2d1f0a9b77", userId: "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11", scopes: ["events:read"] }),
  );
});

afterAll(async () => {
  for (const c of grpcClients.values()) c.close();
  for (const c of h2Clients.values()) c.close();
  await Promise.all([ticketServer?.stop(500), eventServer?.stop(500)]);
  pki?.cleanup();
});

// ---------------------------------------------------------------- one attempt, three ways

function target(a: Attempt) {
  const server = a.target === "ticket" ? ticketServer : eventServer;
  const request = { tenantId: a.tenantId ?? TENANT };
  return a.target === "ticket"
    ? { server, path: TICKET_PATH, input: GetTicketStatusRequestSchema as DescMessage, output: GetTicketStatusResponseSchema as DescMessage, request: { ...request, ticketId: "t-1" } }
    : { server, path: EVENT_PATH, input: GetEventRequestSchema as DescMessage, output: GetEventResponseSchema as DescMessage, request: { ...request, eventId: "e-1" } };
}

function fields(a: Attempt): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const v of a.authorization ?? []) out.push(["authorization", v]);
  if (a.context !== undefined) out.push(["tt-context", a.context]);
  for (const [k, v] of Object.entries(a.headers ?? {})) out.push([k, v]);
  return out;
}

function peerOf(a: Attempt, port: number) {
  const w = m(a.caller).workload;
  return { port, ca: caPem, cert: w.certPem, key: w.keyPem };
}

async function sendGrpc(a: Attempt): Promise<Outcome> {
  const t = target(a);
  const key = `${a.caller}@${t.server.port}`;
  let client = grpcClients.get(key);
  if (!client) {
    const w = m(a.caller).workload;
    client = new grpc.Client(
      `127.0.0.1:${t.server.port}`,
      grpc.credentials.createSsl(Buffer.from(caPem), Buffer.from(w.keyPem), Buffer.from(w.certPem), { checkServerIdentity: () => undefined }),
      SNI,
    );
    grpcClients.set(key, client);
  }
  const md = new grpc.Metadata();
  for (const [k, v] of fields(a)) md.add(k, v);
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      t.path,
      (msg: unknown) => Buffer.from(toBinary(t.input, msg as never)),
      (buf: Buffer) => fromBinary(t.output, buf),
      create(t.input, t.request as never),
      md,
      { deadline: Date.now() + DEADLINE_MS },
      (err, value) => resolve(err ? { code: err.code, details: err.details } : { code: OK, details: "", value }),
    );
  });
}

async function sendConnect(a: Attempt, http: "h1" | "h2"): Promise<Outcome> {
  const t = target(a);
  const req: ConnectRequest = { path: t.path, headers: fields(a), body: toBinary(t.input, create(t.input, t.request as never)), timeoutMs: DEADLINE_MS };
  let res;
  if (http === "h1") {
    res = await connectH1(peerOf(a, t.server.connectPort!), req);
  } else {
    const key = `${a.caller}@${t.server.connectPort}`;
    let c = h2Clients.get(key);
    if (!c) h2Clients.set(key, (c = connectH2(peerOf(a, t.server.connectPort!))));
    res = await c.call(req);
  }
  return res.code === OK ? { code: OK, details: "", value: fromBinary(t.output, res.body) } : { code: res.code, details: res.message };
}

const send = (port: Port, a: Attempt) => (port === "grpc" ? sendGrpc(a) : sendConnect(a, port === "connect-h2" ? "h2" : "h1"));

// ---------------------------------------------------------------- the table on every port

describe.each(PORTS)("token and authorization cases on the %s port", (port) => {
  for (const c of kit.tokenCases) {
    it(`${c.name} -> ${c.code}`, async () => {
      const attempt = await c.build();
      const handledBefore = handled.length;
      const mark = logLines.length;
      const out = await send(port, attempt);
      expect(out.code, `${out.code} ${out.details}`).toBe(c.code);
      if (c.code === OK) {
        expect(handled.length).toBe(handledBefore + 1);
        c.then?.(out, handled.at(-1));
      } else {
        expect(handled.length, "a rejected call reached the handler").toBe(handledBefore);
        expect(out.details).toBe(c.code === UNAUTHENTICATED ? "unauthenticated" : "permission denied");
        const rejected = logLines.slice(mark).map((l) => JSON.parse(l) as { msg: string; peer?: string }).find((l) => l.msg === "call rejected");
        // Every case presents a valid certificate: the line names the verified identity, not just ip:port.
        expect(rejected?.peer).toMatch(new RegExp(`^spiffe://tickettoken\\.internal/ns/dev/sa/${attempt.caller} \\(127\\.0\\.0\\.1:\\d+\\)$`));
      }
      if (c.reason) expect(reasonsSince(mark)).toMatch(c.reason);
    });
  }
});

// ---------------------------------------------------------------- two authorization fields on the wire

describe("two authorization header fields (valid token first, garbage second) are refused on every port", () => {
  async function twoFields() {
    const good = secret(await kit.realToken("payment-service", TICKET_ID, TICKET_PATH, ctxToken));
    return {
      good,
      headers: [
        ["authorization", `Bearer ${good}`],
        ["authorization", "Bearer second-value-the-server-must-not-ignore"],
        ["tt-context", ctxToken],
        ["x-request-id", `two-authz-${randomBytes(4).toString("hex")}`],
      ] as Array<[string, string]>,
    };
  }
  const body = () => toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "t-1" }));
  const payment = () => m("payment-service").workload;

  async function expectRefused(run: () => Promise<unknown>) {
    const handledBefore = handled.length;
    const mark = logLines.length;
    await run();
    expect(handled.length, "the handler ran for a call carrying two authorization fields").toBe(handledBefore);
    expect(reasonsSince(mark)).toMatch(/expected exactly one authorization value, got 2/);
  }

  it.each(["grpc", "connect-h2"] as const)("%s (hand-built HTTP/2 frames)", async (port) => {
    const { headers } = await twoFields();
    await expectRefused(async () => {
      const res = await rawGrpcUnary({
        port: port === "grpc" ? ticketServer.port : ticketServer.connectPort!,
        ca: caPem,
        cert: payment().certPem,
        key: payment().keyPem,
        headers: [
          [":method", "POST"],
          [":scheme", "https"],
          [":path", TICKET_PATH],
          [":authority", "127.0.0.1"],
          ...(port === "grpc" ? ([["content-type", "application/grpc"], ["te", "trailers"]] as const) : ([["content-type", "application/proto"]] as const)),
          ...headers,
        ],
        message: body(),
        timeoutMs: DEADLINE_MS,
        framing: port === "grpc" ? "grpc" : "none",
      });
      expect(res.endedWithTrailers || res.rstCode !== undefined || res.dataBytes > 0, "the server never answered").toBe(true);
    });
  });

  it("connect-h1 (Node's HTTP/1.1 parser keeps only the first value)", async () => {
    const { headers } = await twoFields();
    await expectRefused(async () => {
      const res = await connectH1(
        { port: ticketServer.connectPort!, ca: caPem, cert: payment().certPem, key: payment().keyPem },
        { path: TICKET_PATH, headers, body: body() },
      );
      expect({ status: res.status, code: res.code, message: res.message }).toEqual({ status: 401, code: UNAUTHENTICATED, message: "unauthenticated" });
    });
  });
});

describe("logs", () => {
  it("no token ever reached the log", () => {
    const all = logLines.join("");
    for (const s of secrets) expect(all.includes(s), "a token was logged").toBe(false);
  });
});
