/**
 * Nothing sensitive leaves the server (issue #7.6, #7.8): a handler whose
 * outgoing call fails does not relay the dependency's status, message,
 * details or trailers; the failure is mapped to what it means for this call
 * (src/runtime/server/errors.ts) and the original is logged with its target. A
 * dependency whose breaker is open makes us tell our caller not to retry.
 * A handler's own deliberate error passes unchanged, but every status message
 * is capped, and health never echoes its input (a 1 MB service name must not
 * come back as a 1 MB grpc-message trailer and break the connection).
 *
 * Real servers: order-service (the dependency) and ticket-service (calls it
 * from its handler), both over mTLS; the caller is the framework client on
 * the gRPC port, and a raw Connect request on the Connect port.
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { Health } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import { OrderServiceContract, createOrderServiceClient, type OrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { CountOrderTicketsRequestSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { frameworkContract, HEALTH_CALLERS } from "../../src/runtime/server/framework-contracts.ts";
import { MAX_STATUS_MESSAGE } from "../../src/runtime/server/errors.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { markDownstream } from "../../src/runtime/wire/downstream.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { connectH2 } from "../support/connect-raw.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs } from "../support/log-capture.ts";

const TENANT = "tenant-boundary";
const SECRET_TRAILER = "x-order-internal";
const SECRET_TEXT = "order-db-7 refused: row lock held by txn 4411";

const { logger, lines: logLines } = captureLogs();

let pki: TestPki;
let order: RpcServer;
let ticket: RpcServer;
let orders: OrderServiceClient;
let caller: ReturnType<typeof createTicketServiceClient>;
let ctxToken: string;
/** Calls each handler saw, by order id: how many attempts each client made. */
const ticketCalls = new Map<string, number>();
const orderCalls = new Map<string, number>();
const count = (m: Map<string, number>, id: string) => m.set(id, (m.get(id) ?? 0) + 1);

/**
 * Both clients here exist to observe every mapped failure, one after another,
 * and this file provokes those failures on purpose: with the default limits
 * their breakers would open after a few of them (UNAVAILABLE and
 * DEADLINE_EXCEEDED count) and later cases would see "circuit breaker open"
 * instead of the mapping under test. So each gets its own registry (not the
 * process one) with a breaker that cannot open and a retry budget that never
 * runs dry, making the attempt counts below exact. The breaker case itself is
 * simulated by the handler.
 */
const observingLimits = () => ({ registry: new ResilienceRegistry({ logger }), breakerMinCalls: 1_000_000, retryBudgetMinRetries: 1000 });

/** The dependency fails with the code named by the order id, carrying trailers, details and an internal message. */
const DOWNSTREAM: Record<string, Code> = {
  "o-permission": Code.PermissionDenied,
  "o-unauthenticated": Code.Unauthenticated,
  "o-invalid": Code.InvalidArgument,
  "o-internal": Code.Internal,
  "o-notfound": Code.NotFound,
  "o-precondition": Code.FailedPrecondition,
  "o-unavailable": Code.Unavailable,
  "o-deadline": Code.DeadlineExceeded,
  "o-exhausted": Code.ResourceExhausted,
};

beforeAll(async () => {
  pki = await createTestPki();
  order = await createServer({
    identity: await pki.material("order-service"),
    port: 0,
    logger,
    services: [
      implement(OrderServiceContract, {
        getOrder: (req) => {
          count(orderCalls, req.orderId);
          const code = DOWNSTREAM[req.orderId];
          if (code === undefined) return { order: { id: req.orderId, tenantId: req.tenantId } };
          const err = new ConnectError(SECRET_TEXT, code, { [SECRET_TRAILER]: "shard=7" });
          err.details.push({ desc: CountOrderTicketsRequestSchema, value: { orderId: "leaked-detail" } });
          throw err;
        },
      }),
    ],
  });
  orders = createOrderServiceClient({
    identity: await pki.material("ticket-service"),
    address: `127.0.0.1:${order.port}`,
    resilience: observingLimits(),
  });
  ticket = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger,
    services: [
      implement(TicketServiceContract, {
        async countOrderTickets(req) {
          count(ticketCalls, req.orderId);
          if (req.orderId === "breaker-open") {
            // What the client-side breaker throws (src/runtime/resilience): fail fast, marked "do not retry".
            throw markDownstream(new ConnectError("circuit open for order-service", Code.Unavailable), { target: "order-service", noRetry: true });
          }
          if (req.orderId === "own-not-found") throw new ConnectError("no such order", Code.NotFound, { "x-mine": "kept" });
          if (req.orderId === "huge-message") throw new ConnectError("x".repeat(1024 * 1024), Code.FailedPrecondition);
          if (req.orderId.startsWith("rethrow:")) {
            try {
              await orders.getOrder({ tenantId: req.tenantId, orderId: req.orderId.slice(8) });
            } catch {
              throw new ConnectError("order is not visible to you", Code.NotFound);
            }
          }
          const res = await orders.getOrder({ tenantId: req.tenantId, orderId: req.orderId });
          return { orderId: res.order!.id, count: 1, hasTickets: true };
        },
        getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
      }),
    ],
  });
  caller = createTicketServiceClient({
    identity: await pki.material("order-service"),
    address: `127.0.0.1:${ticket.port}`,
    resilience: observingLimits(),
  });
  ctxToken = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
});

afterAll(async () => {
  closeClient(orders);
  closeClient(caller);
  await Promise.all([ticket?.stop(1000), order?.stop(1000)]);
  pki?.cleanup();
});

async function failure(orderId: string): Promise<ConnectError> {
  const err = await caller
    .countOrderTickets({ tenantId: TENANT, orderId }, { headers: { "tt-context": ctxToken }, timeoutMs: 5000 })
    .then(() => undefined, (e: unknown) => e);
  expect(err, `${orderId} succeeded`).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

function expectNothingRelayed(err: ConnectError): void {
  expect(err.rawMessage).not.toContain("order-db");
  expect(err.metadata.get(SECRET_TRAILER)).toBeNull();
  expect(err.details).toEqual([]);
}

describe("a dependency's failure at the server boundary (gRPC port)", () => {
  // Attempts: the caller and the middle service both retry UNAVAILABLE and DEADLINE_EXCEEDED for these
  // read methods (3 attempts each, so 3 x 3 calls reach order-service); the other codes are never retried.
  it.each([
    ["o-permission", Code.Internal, "internal error", 1, 1],
    ["o-unauthenticated", Code.Internal, "internal error", 1, 1],
    ["o-invalid", Code.Internal, "internal error", 1, 1],
    ["o-internal", Code.Internal, "internal error", 1, 1],
    ["o-notfound", Code.Internal, "internal error", 1, 1],
    ["o-precondition", Code.Internal, "internal error", 1, 1],
    ["o-unavailable", Code.Unavailable, "a dependency is unavailable", 3, 9],
    ["o-deadline", Code.DeadlineExceeded, "deadline exceeded", 3, 9],
    ["o-exhausted", Code.ResourceExhausted, "a dependency is overloaded", 1, 1],
  ] as const)("downstream %s -> %s, generic, nothing relayed, original logged", async (orderId, code, message, callerAttempts, orderAttempts) => {
    const mark = logLines.length;
    const err = await failure(orderId);
    expect({ code: Code[err.code], message: err.rawMessage }).toEqual({ code: Code[code], message });
    expectNothingRelayed(err);
    expect(err.metadata.get("grpc-retry-pushback-ms")).toBeNull();
    const logged = logLines.slice(mark).map((l) => JSON.parse(l) as { msg: string; err?: { message?: string } });
    const line = logged.find((l) => l.msg === "handler failed: a call to a dependency failed");
    expect(line?.err?.message, "the original failure is logged").toContain("order-db-7 refused");
    expect({ caller: ticketCalls.get(orderId), order: orderCalls.get(orderId) }).toEqual({ caller: callerAttempts, order: orderAttempts });
  });

  it("a dependency's open breaker becomes UNAVAILABLE with pushback -1 (do not retry)", async () => {
    const err = await failure("breaker-open");
    expect({ code: Code[err.code], message: err.rawMessage }).toEqual({ code: "Unavailable", message: "a dependency is unavailable" });
    expect(err.metadata.get("grpc-retry-pushback-ms")).toBe("-1");
    expect(ticketCalls.get("breaker-open"), "pushback -1: the caller did not retry").toBe(1);
  });

  it("a handler that re-throws an error of its own is answered with it", async () => {
    const err = await failure("rethrow:o-permission");
    expect({ code: Code[err.code], message: err.rawMessage }).toEqual({ code: "NotFound", message: "order is not visible to you" });
  });

  it("a handler's own error keeps its code, message and trailers", async () => {
    const err = await failure("own-not-found");
    expect({ code: Code[err.code], message: err.rawMessage, mine: err.metadata.get("x-mine") }).toEqual({
      code: "NotFound",
      message: "no such order",
      mine: "kept",
    });
  });

  it("a handler's 1 MB message is capped, and the connection serves the next call", async () => {
    const err = await failure("huge-message");
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage.length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE);
    const ok = await caller.countOrderTickets({ tenantId: TENANT, orderId: "o-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: 5000 });
    expect(ok.orderId).toBe("o-1");
  });
});

describe("the same boundary on the Connect port", () => {
  it("downstream PERMISSION_DENIED -> internal, nothing relayed", async () => {
    const w = (await pki.material("order-service")).current().workload;
    const token = await createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current }).mint({
      audience: workloadSpiffeId("ticket-service"),
      method: TicketServiceContract.methods.countOrderTickets.path,
      contextToken: ctxToken,
    });
    const c = connectH2({ port: ticket.connectPort!, ca: readFileSync(pkiPaths(pki.dir).caCert, "utf8"), cert: w.certPem, key: w.keyPem });
    try {
      const res = await c.call({
        path: TicketServiceContract.methods.countOrderTickets.path,
        headers: [
          ["authorization", `Bearer ${token}`],
          ["tt-context", ctxToken],
        ],
        body: toBinary(CountOrderTicketsRequestSchema, create(CountOrderTicketsRequestSchema, { tenantId: TENANT, orderId: "o-permission" })),
      });
      expect({ status: res.status, code: res.code, message: res.message }).toEqual({ status: 500, code: Code.Internal, message: "internal error" });
      expect(res.headers[SECRET_TRAILER]).toBeUndefined();
      expect(res.body.toString()).not.toContain("order-db");
      expect(res.body.toString()).not.toContain("details");
    } finally {
      c.close();
    }
  });
});

describe("status messages never echo request content", () => {
  it("Health Check with a 1 MB service name: NOT_FOUND, generic message, and the connection keeps working", async () => {
    const health = createServiceClient(frameworkContract(Health, "ticket-service", HEALTH_CALLERS), {
      identity: await pki.material("payment-service"),
      address: `127.0.0.1:${ticket.port}`,
    });
    try {
      const err = await health.check({ service: "s".repeat(1024 * 1024) }, { timeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect({ code: Code[(err as ConnectError).code], message: (err as ConnectError).rawMessage }).toEqual({ code: "NotFound", message: "unknown service" });
      expect((await health.check({ service: "" }, { timeoutMs: 5000 })).status).toBe(1);
    } finally {
      closeClient(health);
    }
  });
});
