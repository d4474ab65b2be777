/**
 * Prometheus metrics as an operator scrapes them: a real mTLS server with an
 * ops port, real clients making OK calls, a handler error, authorization and
 * authentication failures (raw HTTP/2 on both ports), a keyed call (dedupe),
 * a call held in flight and a bulkhead rejection; then a client to a dead
 * address for retries, the retry budget and the breaker. Each family is read
 * back from /metrics (server) or the client's registry with its labels and
 * the count the calls made.
 */
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { GetTicketStatusRequestSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { TicketServiceContract, createTicketServiceClient, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createMetrics } from "../../src/runtime/telemetry/metrics.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { httpRequest, parseMetrics, sampleValue, type Sample } from "../support/ops-http.ts";
import { freePort } from "../support/ports.ts";

const TENANT = "tenant-metrics";
const SERVICE = "tickettoken.ticket.v1.TicketService";
const STATUS = { grpc_service: SERVICE, grpc_method: "GetTicketStatus", grpc_type: "unary" };
const PATH = TicketServiceContract.methods.getTicketStatus.path;

let pki: TestPki;
let server: RpcServer;
const serverMetrics = createMetrics();
const clientMetrics = createMetrics();
const clients: object[] = [];
let releaseSlow: () => void = () => {};
let slowEntered: () => void = () => {};

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger: silentLogger(),
    metrics: serverMetrics,
    ops: { port: 0 },
    services: [
      implement(TicketServiceContract, {
        async getTicketStatus(req) {
          if (req.ticketId === "t-missing") throw new ConnectError("ticket not found", Code.NotFound);
          if (req.ticketId === "t-slow") {
            slowEntered();
            await new Promise<void>((resolve) => (releaseSlow = resolve));
          }
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
        handlePaymentSucceeded: (req) => ({ orderId: req.orderId, ticketIds: ["t-9"], duplicate: false }),
        async *listTicketsByEvent(req) {
          for (let i = 0; i < 3; i++) {
            yield { ticket: { id: `${req.eventId}-${i}`, status: TicketStatus.SOLD } };
            // Slow enough for the cancel of the consumer that stops early to arrive mid-stream.
            if (req.eventId === "e-stop") await new Promise((resolve) => setTimeout(resolve, 300));
          }
        },
      }),
    ],
  });
});

afterAll(async () => {
  releaseSlow();
  clients.forEach(closeClient);
  await server?.stop(1000);
  pki?.cleanup();
});

async function client(workload: "payment-service" | "order-service" | "scanning-service", address = `127.0.0.1:${server.port}`, limits: object = {}): Promise<TicketServiceClient> {
  const c = createTicketServiceClient({
    identity: await pki.material(workload),
    address,
    env: {},
    metrics: clientMetrics,
    // A registry of its own: this file's breakers and bulkheads start fresh.
    resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }), ...limits },
  });
  clients.push(c);
  return c;
}

async function scrape(): Promise<Sample[]> {
  const res = await httpRequest(server.opsPort!, "/metrics");
  expect(res.status).toBe(200);
  expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(res.body);
}

async function failure(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e).code;
  }
  throw new Error("the call succeeded");
}

/** A raw request with no or a garbage call token, on the gRPC or the Connect port: refused by authentication. */
async function unauthenticatedCall(port: number, grpcPort: boolean, authorization?: string): Promise<string> {
  const w = (await pki.material("payment-service")).current().workload;
  const session = http2.connect(`https://127.0.0.1:${port}`, { ca: readFileSync(pkiPaths(pki.dir).caCert, "utf8"), cert: w.certPem, key: w.keyPem, checkServerIdentity: () => undefined });
  session.on("error", () => {});
  const message = Buffer.from(toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "t-1" })));
  const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": PATH, ...(authorization ? { authorization } : {}) };
  if (grpcPort) Object.assign(headers, { "content-type": "application/grpc", te: "trailers" });
  else headers["content-type"] = "application/proto";
  try {
    return await new Promise((resolve) => {
      const req = session.request(headers);
      let answer = "none";
      req.on("response", (h) => (answer = grpcPort ? String(h["grpc-status"] ?? answer) : String(h[":status"])));
      req.on("trailers", (h) => (answer = String(h["grpc-status"] ?? answer)));
      req.on("error", () => {});
      req.on("data", () => {});
      req.on("close", () => resolve(answer));
      req.end(grpcPort ? Buffer.concat([Buffer.from([0, 0, 0, 0, message.length]), message]) : message);
    });
  } finally {
    session.destroy();
  }
}


describe("server metrics on the ops port after real calls", () => {
  let samples: Sample[];

  beforeAll(async () => {
    const payment = await client("payment-service");
    const order = await client("order-service");
    const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 5000 };
    await payment.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctx);
    await payment.getTicketStatus({ tenantId: TENANT, ticketId: "t-2" }, ctx);
    expect(await failure(payment.getTicketStatus({ tenantId: TENANT, ticketId: "t-missing" }, ctx))).toBe(Code.NotFound);
    // Authorization: a caller the contract does not allow, and a request for another tenant.
    expect(await failure(order.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctx))).toBe(Code.PermissionDenied);
    expect(await failure(payment.getTicketStatus({ tenantId: "another-tenant", ticketId: "t-1" }, ctx))).toBe(Code.PermissionDenied);
    // Authentication: no call token on the gRPC port, a garbled one on the Connect port (refused before the chain).
    expect(await unauthenticatedCall(server.port, true)).toBe(String(Code.Unauthenticated));
    expect(await unauthenticatedCall(server.connectPort!, false, "Bearer not.a.token")).toBe("401");
    // A keyed call: its response is kept by the dedupe store.
    await payment.handlePaymentSucceeded({ tenantId: TENANT, orderId: "o-1", paymentId: "p-1", ticketQuantity: 1 }, ctx);
    samples = await scrape();
  });

  it("grpc_server_started_total and grpc_server_handled_total count every call by method and code", () => {
    expect(sampleValue(samples, "grpc_server_started_total", STATUS)).toBe(7);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...STATUS, grpc_code: "OK" })).toBe(2);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...STATUS, grpc_code: "NotFound" })).toBe(1);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...STATUS, grpc_code: "PermissionDenied" })).toBe(2);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...STATUS, grpc_code: "Unauthenticated" })).toBe(2);
    const keyed = { grpc_service: SERVICE, grpc_method: "HandlePaymentSucceeded", grpc_type: "unary" };
    expect(sampleValue(samples, "grpc_server_started_total", keyed)).toBe(1);
    expect(sampleValue(samples, "grpc_server_handled_total", { ...keyed, grpc_code: "OK" })).toBe(1);
  });

  it("grpc_server_handling_seconds is a histogram per method; grpc_server_in_flight is back to 0", () => {
    expect(sampleValue(samples, "grpc_server_handling_seconds_count", STATUS)).toBe(7);
    expect(sampleValue(samples, "grpc_server_handling_seconds_bucket", { ...STATUS, le: "+Inf" })).toBe(7);
    const sum = sampleValue(samples, "grpc_server_handling_seconds_sum", STATUS);
    expect(sum).toBeGreaterThan(0);
    expect(sum).toBeLessThan(30);
    expect(sampleValue(samples, "grpc_server_in_flight", STATUS)).toBe(0);
  });

  it("authentication and authorization failures are counted by a bounded reason", () => {
    const by = (reason: string) => ({ grpc_service: SERVICE, grpc_method: "GetTicketStatus", reason });
    expect(sampleValue(samples, "tt_rpc_server_authentication_failures_total", by("missing_token"))).toBe(1);
    expect(sampleValue(samples, "tt_rpc_server_authentication_failures_total", by("malformed_token"))).toBe(1);
    expect(sampleValue(samples, "tt_rpc_server_authorization_failures_total", by("caller_not_allowed"))).toBe(1);
    expect(sampleValue(samples, "tt_rpc_server_authorization_failures_total", by("tenant_mismatch"))).toBe(1);
  });

  it("replay-cache and dedupe-store sizes are read at scrape time", () => {
    // One jti per call that passed the call-token check: 2 OK, NOT_FOUND, 2 refused by authorization, the keyed call.
    expect(sampleValue(samples, "tt_rpc_replay_cache_entries")).toBe(6);
    expect(sampleValue(samples, "tt_rpc_dedupe_store_entries")).toBe(1);
  });

  it("no label carries a tenant, a peer address or an id", () => {
    const text = samples.map((s) => JSON.stringify(s.labels)).join("\n");
    for (const leak of [TENANT, "127.0.0.1", "t-1", "o-1", "payment-service", "order-service", "spiffe://"]) expect(text).not.toContain(leak);
  });

  it("client families: started, handled by code, latency and in flight per method of the target", async () => {
    const client = parseMetrics(await clientMetrics.registry.metrics());
    expect(sampleValue(client, "grpc_client_started_total", STATUS)).toBe(5);
    expect(sampleValue(client, "grpc_client_handled_total", { ...STATUS, grpc_code: "OK" })).toBe(2);
    expect(sampleValue(client, "grpc_client_handled_total", { ...STATUS, grpc_code: "NotFound" })).toBe(1);
    expect(sampleValue(client, "grpc_client_handled_total", { ...STATUS, grpc_code: "PermissionDenied" })).toBe(2);
    expect(sampleValue(client, "grpc_client_handling_seconds_count", STATUS)).toBe(5);
    expect(sampleValue(client, "grpc_client_in_flight", STATUS)).toBe(0);
    expect(sampleValue(client, "tt_rpc_client_breaker_state", { target: "ticket-service" })).toBe(0);
  });
});

describe("server-streaming calls", () => {
  it("count as handled when the stream ends, or as Canceled when the consumer stops reading", async () => {
    const scanning = await client("scanning-service");
    const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 5000 };
    const ids: string[] = [];
    for await (const r of scanning.listTicketsByEvent({ tenantId: TENANT, eventId: "e-all" }, ctx)) ids.push(r.ticket!.id);
    expect(ids).toEqual(["e-all-0", "e-all-1", "e-all-2"]);
    // A consumer that stops reading cancels the call (connect-es streams end by their signal).
    const stop = new AbortController();
    for await (const r of scanning.listTicketsByEvent({ tenantId: TENANT, eventId: "e-stop" }, { ...ctx, signal: stop.signal })) {
      expect(r.ticket!.id).toBe("e-stop-0");
      stop.abort();
      break;
    }
    const stream = { grpc_service: SERVICE, grpc_method: "ListTicketsByEvent", grpc_type: "server_stream" };
    const c = parseMetrics(await clientMetrics.registry.metrics());
    expect(sampleValue(c, "grpc_client_started_total", stream)).toBe(2);
    expect(sampleValue(c, "grpc_client_handled_total", { ...stream, grpc_code: "OK" })).toBe(1);
    expect(sampleValue(c, "grpc_client_handled_total", { ...stream, grpc_code: "Canceled" })).toBe(1);
    expect(sampleValue(c, "grpc_client_in_flight", stream)).toBe(0);
    // The server learns of the cancel over the network: wait for it (bounded).
    let s = await scrape();
    for (let i = 0; i < 100 && sampleValue(s, "grpc_server_in_flight", stream) !== 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      s = await scrape();
    }
    expect(sampleValue(s, "grpc_server_started_total", stream)).toBe(2);
    expect(sampleValue(s, "grpc_server_handled_total", { ...stream, grpc_code: "OK" })).toBe(1);
    expect(sampleValue(s, "grpc_server_handled_total", { ...stream, grpc_code: "Canceled" })).toBe(1);
    expect(sampleValue(s, "grpc_server_in_flight", stream)).toBe(0);
  });
});

describe("in flight and bulkhead rejections", () => {
  it("a held call shows in grpc_server_in_flight; a second one over the bulkhead is refused and counted", async () => {
    const payment = await client("payment-service", undefined, { bulkheadLimit: 1 });
    const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 10_000 };
    const entered = new Promise<void>((resolve) => (slowEntered = resolve));
    const held = payment.getTicketStatus({ tenantId: TENANT, ticketId: "t-slow" }, ctx);
    try {
      await entered;
      expect(sampleValue(await scrape(), "grpc_server_in_flight", STATUS)).toBe(1);
      expect(await failure(payment.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctx))).toBe(Code.ResourceExhausted);
      const client = parseMetrics(await clientMetrics.registry.metrics());
      expect(sampleValue(client, "tt_rpc_client_bulkhead_rejected_total", { target: "ticket-service" })).toBe(1);
      expect(sampleValue(client, "grpc_client_in_flight", STATUS)).toBe(1);
    } finally {
      releaseSlow();
    }
    await held;
    expect(sampleValue(await scrape(), "grpc_server_in_flight", STATUS)).toBe(0);
    expect(sampleValue(parseMetrics(await clientMetrics.registry.metrics()), "grpc_client_in_flight", STATUS)).toBe(0);
  });
});

describe("resilience metrics against a dead target", () => {
  it("retries, an exhausted retry budget, the breaker's transition, state and fast failures", async () => {
    const dead = await client("payment-service", `127.0.0.1:${await freePort()}`, {
      retryInitialBackoffMs: 5,
      retryMaxBackoffMs: 10,
      // One retry in the budget, then refused; two failed attempts open the breaker.
      retryBudgetRatio: 0,
      retryBudgetMinRetries: 1,
      breakerMinCalls: 2,
    });
    const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 5000 };
    expect(await failure(dead.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctx))).toBe(Code.Unavailable);
    expect(await failure(dead.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctx))).toBe(Code.Unavailable);
    const s = parseMetrics(await clientMetrics.registry.metrics());
    const target = { target: "ticket-service" };
    expect(sampleValue(s, "tt_rpc_client_retries_total", { ...target, grpc_method: "GetTicketStatus" })).toBe(1);
    expect(sampleValue(s, "tt_rpc_client_retry_budget_exhausted_total", target)).toBe(1);
    expect(sampleValue(s, "tt_rpc_client_breaker_transitions_total", { ...target, from: "closed", to: "open" })).toBe(1);
    expect(sampleValue(s, "tt_rpc_client_breaker_rejected_total", target)).toBe(1);
    // This file's clients each have a registry of their own, all for ticket-service: the open one shows.
    expect(sampleValue(s, "tt_rpc_client_breaker_state", target)).toBe(1);
  });
});
