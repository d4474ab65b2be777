/**
 * Deadline and cancellation through three real hops, A -> B -> C: A calls
 * ticket-service (B), whose handler calls order-service (C) passing nothing
 * but the request; C works until its call is cancelled. C must see the
 * cancellation within 50 ms of A's deadline (or A's abort), and do no work after.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { TicketServiceContract, createTicketServiceClient, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { OrderServiceContract, createOrderServiceClient, type OrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-abc";
let pki: TestPki;
let b: RpcServer;
let c: RpcServer;
let bToC: OrderServiceClient;
let aToB: TicketServiceClient;
let ctxToken: string;

/** What C saw: when it started, each unit of work, when it was cancelled. */
const seenByC = { startedAt: 0, work: [] as number[], cancelledAt: 0 };

beforeAll(async () => {
  pki = await createTestPki();
  ctxToken = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
  c = await createServer({
    identity: await pki.material("order-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(OrderServiceContract, {
        async getOrder(req, ctx) {
          seenByC.startedAt = Date.now();
          // Work in 5 ms slices until the call is cancelled.
          while (!ctx.signal.aborted) {
            seenByC.work.push(Date.now());
            await new Promise((res) => setTimeout(res, 5));
          }
          seenByC.cancelledAt = Date.now();
          throw new ConnectError("cancelled", Code.Canceled);
        },
      }),
    ],
  });
  bToC = createOrderServiceClient({
    identity: await pki.material("ticket-service"),
    address: `127.0.0.1:${c.port}`,
    env: {},
    resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }) },
  });
  b = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        async countOrderTickets(req) {
          const res = await bToC.getOrder({ tenantId: req.tenantId, orderId: req.orderId });
          return { orderId: res.order!.id, count: 1, hasTickets: true };
        },
      }),
    ],
  });
  aToB = createTicketServiceClient({
    identity: await pki.material("order-service"),
    address: `127.0.0.1:${b.port}`,
    env: {},
    resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }) },
  });
});

afterAll(async () => {
  if (aToB) closeClient(aToB);
  if (bToC) closeClient(bToC);
  await Promise.all([b?.stop(1000), c?.stop(1000)]);
  pki?.cleanup();
});

beforeEach(() => {
  seenByC.startedAt = 0;
  seenByC.work = [];
  seenByC.cancelledAt = 0;
});

async function untilCancelled(): Promise<void> {
  for (let i = 0; i < 300 && seenByC.cancelledAt === 0; i++) await new Promise((res) => setTimeout(res, 10));
  expect(seenByC.cancelledAt).toBeGreaterThan(0);
}

describe("A -> B -> C", () => {
  it("A's deadline reaches C: C is cancelled within 50 ms of it, no work after, A gets DEADLINE_EXCEEDED", async () => {
    const start = Date.now();
    const err = await aToB
      .countOrderTickets({ tenantId: TENANT, orderId: "o-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: 600 })
      .then(() => undefined, (e: unknown) => e);
    const returnedAt = Date.now();
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(returnedAt - start).toBeLessThan(900);
    await untilCancelled();
    expect(seenByC.startedAt).toBeGreaterThan(0);
    expect(Math.abs(seenByC.cancelledAt - (start + 600))).toBeLessThanOrEqual(50);
    // No slice of work started after C saw the cancellation (and none keeps going later).
    expect(Math.max(...seenByC.work)).toBeLessThanOrEqual(seenByC.cancelledAt);
    const workDone = seenByC.work.length;
    await new Promise((res) => setTimeout(res, 100));
    expect(seenByC.work.length).toBe(workDone);
  });

  it("A's cancellation reaches C within 50 ms", async () => {
    const abort = new AbortController();
    let abortedAt = 0;
    setTimeout(() => {
      abortedAt = Date.now();
      abort.abort();
    }, 300);
    const err = await aToB
      .countOrderTickets({ tenantId: TENANT, orderId: "o-2" }, { headers: { "tt-context": ctxToken }, timeoutMs: 5000, signal: abort.signal })
      .then(() => undefined, (e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.Canceled);
    await untilCancelled();
    expect(seenByC.cancelledAt - abortedAt).toBeLessThanOrEqual(50);
    expect(seenByC.cancelledAt - abortedAt).toBeGreaterThanOrEqual(0);
    expect(Math.max(...seenByC.work)).toBeLessThanOrEqual(seenByC.cancelledAt);
  });
});
