/**
 * A handler's outgoing calls inherit the call being served: the context token
 * travels unchanged (tenant and user stay the same on the next hop), the
 * request id and trace id carry over, and the next hop sees the serving
 * service as its caller. Checked for a unary and a server-streaming handler.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { HandlerContext } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { callContext, type VerifiedCallContext } from "../../src/runtime/auth/call-context.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { OrderServiceContract, createOrderServiceClient, type OrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-prop";
const USER = "user-prop";
let pki: TestPki;
let order: RpcServer;
let ticket: RpcServer;
let orders: OrderServiceClient;
const hops: { ctx: VerifiedCallContext; requestId: string | null; traceparent: string | null }[] = [];

function record(ctx: HandlerContext): void {
  hops.push({ ctx: callContext(ctx), requestId: ctx.requestHeader.get("x-request-id"), traceparent: ctx.requestHeader.get("traceparent") });
}

beforeAll(async () => {
  pki = await createTestPki();
  order = await createServer({
    identity: await pki.material("order-service"),
    port: 0,
    logger: silentLogger(),
    services: [implement(OrderServiceContract, { getOrder: (req, ctx) => (record(ctx), { order: { id: req.orderId, tenantId: req.tenantId } }) })],
  });
  // ticket-service calls order-service from inside its handlers, passing nothing but the request.
  orders = createOrderServiceClient({ identity: await pki.material("ticket-service"), address: `127.0.0.1:${order.port}` });
  ticket = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        async countOrderTickets(req, ctx) {
          record(ctx);
          const res = await orders.getOrder({ tenantId: req.tenantId, orderId: req.orderId });
          return { orderId: res.order!.id, count: 1, hasTickets: true };
        },
        async *listTicketsByEvent(req, ctx) {
          record(ctx);
          for (const id of ["o-1", "o-2"]) {
            const res = await orders.getOrder({ tenantId: req.tenantId, orderId: id });
            yield { ticket: { id: `t-for-${res.order!.id}`, status: TicketStatus.SOLD } };
          }
        },
      }),
    ],
  });
});

afterAll(async () => {
  closeClient(orders);
  await Promise.all([ticket?.stop(1000), order?.stop(1000)]);
  pki?.cleanup();
});

function expectSecondHop(first: (typeof hops)[number], second: (typeof hops)[number], caller: string): void {
  expect(first.ctx.caller.workload).toBe(caller);
  expect(second.ctx.caller.workload).toBe("ticket-service");
  expect([second.ctx.tenantId, second.ctx.userId]).toEqual([TENANT, USER]);
  expect(second.ctx.txn).toBe(first.ctx.txn);
  expect(second.requestId).toBe(first.requestId);
  expect(second.traceparent?.split("-")[1]).toBe(first.traceparent?.split("-")[1]);
  expect(second.traceparent).not.toBe(first.traceparent);
}

describe("context propagation through a handler's outgoing calls", () => {
  it("unary handler", async () => {
    const ctxToken = await pki.contextToken({ tenantId: TENANT, userId: USER });
    const client = createTicketServiceClient({ identity: await pki.material("order-service"), address: `127.0.0.1:${ticket.port}` });
    try {
      hops.length = 0;
      const res = await client.countOrderTickets({ tenantId: TENANT, orderId: "o-9" }, { headers: { "tt-context": ctxToken }, timeoutMs: 5000 });
      expect(res.orderId).toBe("o-9");
      expect(hops).toHaveLength(2);
      expectSecondHop(hops[0]!, hops[1]!, "order-service");
    } finally {
      closeClient(client);
    }
  });

  it("server-streaming handler", async () => {
    const ctxToken = await pki.contextToken({ tenantId: TENANT, userId: USER });
    const client = createTicketServiceClient({ identity: await pki.material("scanning-service"), address: `127.0.0.1:${ticket.port}` });
    try {
      hops.length = 0;
      const ids: string[] = [];
      for await (const r of client.listTicketsByEvent({ tenantId: TENANT, eventId: "e-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: 5000 })) {
        ids.push(r.ticket!.id);
      }
      expect(ids).toEqual(["t-for-o-1", "t-for-o-2"]);
      expect(hops).toHaveLength(3);
      expectSecondHop(hops[0]!, hops[1]!, "scanning-service");
      expectSecondHop(hops[0]!, hops[2]!, "scanning-service");
    } finally {
      closeClient(client);
    }
  });
});
