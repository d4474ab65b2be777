/**
 * order-service over mTLS through its generated client: every RPC, success and
 * error paths, the purchase flow's order side (price -> intent -> complete),
 * declines, keyed retries that re-drive the same order, cancellation rules,
 * tenant isolation, and a restart on a file database.
 *
 * ticket-service and payment-service are built in parallel: small fake servers
 * stand in for them here, recording what they were asked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type CallOptions, type HandlerContext } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { createOrderServiceClient, type OrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { OrderStatus, type CreateOrderRequestSchema } from "../../src/contracts/gen/tickettoken/order/v1/order_service_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { PaymentServiceContract } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_rpc.ts";
import { PaymentStatus } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_pb.ts";
import { orderModule } from "../../services/order/index.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, rpcAddressEnv, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

const PRICES: Record<string, Record<string, bigint>> = {
  [ACME]: { "tt-ga": 4500n, "tt-vip": 15000n },
  [GLOBEX]: { "tt-g-std": 3000n },
};

interface FakePayment {
  id: string;
  tenantId: string;
  orderId: string;
  amountMinor: bigint;
  method: string;
  status: PaymentStatus;
}

/** What the fake payment-service did: handler runs per method, with the idempotency keys they carried. */
const paymentCalls: { method: string; key: string | null; paymentId?: string }[] = [];
const fakePayments = new Map<string, FakePayment>();
let failCompletes = false;

function keyOf(ctx: HandlerContext): string | null {
  return ctx.requestHeader.get("idempotency-key");
}

let pki: TestPki;
let ticketFake: RpcServer;
let paymentFake: RpcServer;
let svc: ServiceHarness;
let orders: OrderServiceClient;
let opsOrders: OrderServiceClient;
const registry = new ResilienceRegistry({ logger: silentLogger() });
// Deterministic: one attempt per call and no breaker tripping across cases (retry and breaker have their own tests).
const resilience = { registry, retryMaxAttempts: 1, breakerMinCalls: 10_000 };
const dir = mkdtempSync(join(tmpdir(), "order-svc-"));

async function startFakes(): Promise<void> {
  ticketFake = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        calculatePrice(req) {
          const table = PRICES[req.tenantId] ?? {};
          const lines = req.ticketIds.map((id) => {
            const price = table[id];
            if (price === undefined) throw new ConnectError("ticket not found", Code.NotFound);
            return { ticketId: id, ticketTypeName: id, price: { amountMinor: price, currency: "USD" } };
          });
          return { total: { amountMinor: lines.reduce((s, l) => s + l.price.amountMinor, 0n), currency: "USD" }, priceBreakdown: lines, ticketCount: lines.length };
        },
      }),
    ],
  });
  let seq = 0;
  paymentFake = await createServer({
    identity: await pki.material("payment-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(PaymentServiceContract, {
        createPaymentIntent(req, ctx) {
          const id = `pay-fake-${++seq}`;
          const method = req.metadata["payment_method"] ?? "";
          const status = method === "pm_card_declined" ? PaymentStatus.FAILED : PaymentStatus.PENDING;
          fakePayments.set(id, { id, tenantId: req.tenantId, orderId: req.orderId, amountMinor: req.amount?.amountMinor ?? -1n, method, status });
          paymentCalls.push({ method: "createPaymentIntent", key: keyOf(ctx), paymentId: id });
          return { paymentId: id, paymentIntentId: `pi_fake_${seq}`, clientSecret: "secret", status };
        },
        completePayment(req, ctx) {
          paymentCalls.push({ method: "completePayment", key: keyOf(ctx), paymentId: req.paymentId });
          if (failCompletes) throw new ConnectError("processor down", Code.Unavailable);
          const p = fakePayments.get(req.paymentId);
          if (!p || p.tenantId !== req.tenantId) throw new ConnectError("payment not found", Code.NotFound);
          if (p.status === PaymentStatus.CANCELLED) throw new ConnectError("payment is cancelled", Code.FailedPrecondition);
          if (p.status !== PaymentStatus.FAILED) p.status = p.method === "pm_card_authorize_only" ? PaymentStatus.AUTHORIZED : PaymentStatus.COMPLETED;
          return { orderId: req.orderId, paymentId: p.id, transaction: { id: p.id, status: p.status } };
        },
        cancelPayment(req, ctx) {
          paymentCalls.push({ method: "cancelPayment", key: keyOf(ctx), paymentId: req.paymentId });
          const p = fakePayments.get(req.paymentId);
          if (!p || p.tenantId !== req.tenantId) throw new ConnectError("payment not found", Code.NotFound);
          if (p.status === PaymentStatus.CANCELLED) return { payment: { id: p.id, status: p.status } };
          if (p.status === PaymentStatus.COMPLETED) throw new ConnectError("payment is captured", Code.FailedPrecondition);
          if (p.status === PaymentStatus.FAILED) throw new ConnectError("payment failed; nothing to cancel", Code.FailedPrecondition);
          p.status = PaymentStatus.CANCELLED;
          return { payment: { id: p.id, status: p.status } };
        },
        listOrderPayments(req) {
          const list = [...fakePayments.values()].filter((p) => p.tenantId === req.tenantId && p.orderId === req.orderId);
          return { payments: list.map((p) => ({ id: p.id, orderId: p.orderId, status: p.status })) };
        },
      }),
    ],
  });
}

function env(): Record<string, string> {
  return { ...rpcAddressEnv("ticket-service", `127.0.0.1:${ticketFake.port}`), ...rpcAddressEnv("payment-service", `127.0.0.1:${paymentFake.port}`) };
}

async function startOrder(database?: string): Promise<void> {
  svc = await startService(pki, orderModule, { env: env(), resilience, ...(database ? { database } : {}) });
  orders = await svc.client("ticket-service", createOrderServiceClient, { resilience });
  opsOrders = await svc.client("ops", createOrderServiceClient, { resilience });
}

async function as(tenantId: string, userId: string, key?: string): Promise<CallOptions> {
  const opts = await svc.as(tenantId, userId);
  return key ? { ...opts, headers: { ...(opts.headers as Record<string, string>), "idempotency-key": key } } : opts;
}

type PurchaseInit = MessageInitShape<typeof CreateOrderRequestSchema>;

function purchase(over: Partial<PurchaseInit> = {}): PurchaseInit {
  const base: PurchaseInit = {
    tenantId: ACME,
    userId: "u-1",
    eventId: "e-1",
    currency: "USD",
    items: [{ ticketTypeId: "tt-ga", quantity: 2, unitPrice: { amountMinor: 4500n, currency: "USD" } }, { ticketTypeId: "tt-vip", quantity: 1 }],
    metadata: {},
  };
  return Object.assign(base, over);
}

function countRows(sql: string, ...params: string[]): number {
  return Number((svc.service.runtime.db.prepare(sql).get(...params) as { n: number | bigint }).n);
}

function callsFor(paymentId: string, method: string): number {
  return paymentCalls.filter((c) => c.paymentId === paymentId && c.method === method).length;
}

beforeAll(async () => {
  pki = await createTestPki();
  await startFakes();
  await startOrder();
});

afterAll(async () => {
  await svc?.stop();
  await Promise.all([ticketFake?.stop(1000), paymentFake?.stop(1000)]);
  pki?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe("order-service CreateOrder", () => {
  it("prices with ticket-service, takes the payment and answers the paid order", async () => {
    const { order } = await orders.createOrder(purchase(), await as(ACME, "u-1", "create-happy"));
    expect(order).toMatchObject({ tenantId: ACME, userId: "u-1", eventId: "e-1", status: OrderStatus.PAID });
    expect(order!.subtotal).toMatchObject({ amountMinor: 24000n, currency: "USD" });
    expect(order!.total?.amountMinor).toBe(24000n);
    expect(order!.items.map((i) => [i.ticketTypeId, i.quantity, i.unitPrice?.amountMinor, i.totalPrice?.amountMinor])).toEqual([
      ["tt-ga", 2, 4500n, 9000n],
      ["tt-vip", 1, 15000n, 15000n],
    ]);
    expect(order!.paymentIntentId).toMatch(/^pi_fake_/);
    expect(order!.orderNumber).toMatch(/^ORD-/);
    const payment = [...fakePayments.values()].find((p) => p.orderId === order!.id)!;
    expect(payment).toMatchObject({ amountMinor: 24000n, method: "pm_card_visa", status: PaymentStatus.COMPLETED });
    // Downstream keys derive from the order id, so a re-drive reaches payment-service with the same ones.
    expect(paymentCalls.filter((c) => c.paymentId === payment.id).map((c) => [c.method, c.key])).toEqual([
      ["createPaymentIntent", `order-${order!.id}-payment-intent`],
      ["completePayment", `order-${order!.id}-payment-complete`],
    ]);
    const read = await orders.getOrder({ tenantId: ACME, orderId: order!.id }, await as(ACME, "u-1"));
    expect(read.order?.status).toBe(OrderStatus.PAID);
  });

  it("a declined payment cancels the order: it is never paid", async () => {
    const { order } = await orders.createOrder(purchase({ metadata: { payment_method: "pm_card_declined" } }), await as(ACME, "u-1", "create-declined"));
    expect(order?.status).toBe(OrderStatus.CANCELLED);
    const payment = [...fakePayments.values()].find((p) => p.orderId === order!.id)!;
    expect(payment.status).toBe(PaymentStatus.FAILED);
    const read = await orders.getOrder({ tenantId: ACME, orderId: order!.id }, await as(ACME, "u-1"));
    expect(read.order?.status).toBe(OrderStatus.CANCELLED);
  });

  it("a retry with the same key returns the same order and writes once", async () => {
    const before = countRows("SELECT COUNT(*) AS n FROM orders WHERE tenant_id = ?", ACME);
    const first = await orders.createOrder(purchase(), await as(ACME, "u-1", "create-retry"));
    const second = await orders.createOrder(purchase(), await as(ACME, "u-1", "create-retry"));
    expect(second.order?.id).toBe(first.order?.id);
    expect(countRows("SELECT COUNT(*) AS n FROM orders WHERE tenant_id = ?", ACME)).toBe(before + 1);
    expect(countRows("SELECT COUNT(*) AS n FROM order_items WHERE tenant_id = ? AND order_id = ?", ACME, first.order!.id)).toBe(2);
    const paymentId = [...fakePayments.values()].find((p) => p.orderId === first.order!.id)!.id;
    expect(callsFor(paymentId, "createPaymentIntent")).toBe(1);
  });

  it("a payment failure leaves the order pending; the same key re-drives that order to paid", async () => {
    failCompletes = true;
    try {
      const err = await callError(orders.createOrder(purchase(), await as(ACME, "u-1", "create-redrive")));
      expect(err.code).toBe(Code.Unavailable);
    } finally {
      failCompletes = false;
    }
    const pending = svc.service.runtime.db.prepare("SELECT id, status, payment_id FROM orders WHERE tenant_id = ? AND idempotency_key = ?").get(ACME, "create-redrive") as { id: string; status: string; payment_id: string };
    expect(pending.status).toBe("pending");
    const { order } = await orders.createOrder(purchase(), await as(ACME, "u-1", "create-redrive"));
    expect(order).toMatchObject({ id: pending.id, status: OrderStatus.PAID });
    expect(callsFor(pending.payment_id, "createPaymentIntent")).toBe(1);
    expect(callsFor(pending.payment_id, "completePayment")).toBe(2);
    expect(countRows("SELECT COUNT(*) AS n FROM orders WHERE tenant_id = ? AND idempotency_key = ?", ACME, "create-redrive")).toBe(1);
  });

  it("the same key with a different request is FAILED_PRECONDITION", async () => {
    await orders.createOrder(purchase(), await as(ACME, "u-1", "create-conflict"));
    const err = await callError(orders.createOrder(purchase({ items: [{ ticketTypeId: "tt-ga", quantity: 5 }] }), await as(ACME, "u-1", "create-conflict")));
    expect(err.code).toBe(Code.FailedPrecondition);
  });

  it("invalid input is INVALID_ARGUMENT naming every field", async () => {
    const err = await callError(orders.createOrder(
      purchase({ userId: "", currency: "usd", items: [{ ticketTypeId: "tt-ga", quantity: 0, unitPrice: { amountMinor: 4500n, currency: "EUR" } }] }),
      await as(ACME, "u-1"),
    ));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err).sort()).toEqual(["currency", "items[0].quantity", "items[0].unit_price.currency", "user_id"]);
    const none = await callError(orders.createOrder(purchase({ items: [] }), await as(ACME, "u-1")));
    expect(violatedFields(none)).toEqual(["items"]);
  });

  it("an unknown ticket type is NOT_FOUND and a stale quote FAILED_PRECONDITION; nothing is written", async () => {
    const before = countRows("SELECT COUNT(*) AS n FROM orders");
    const unknown = await callError(orders.createOrder(purchase({ items: [{ ticketTypeId: "tt-nope", quantity: 1 }] }), await as(ACME, "u-1")));
    expect(unknown.code).toBe(Code.NotFound);
    // GLOBEX's ticket type does not exist for ACME.
    const foreign = await callError(orders.createOrder(purchase({ items: [{ ticketTypeId: "tt-g-std", quantity: 1 }] }), await as(ACME, "u-1")));
    expect(foreign.code).toBe(Code.NotFound);
    const stale = await callError(orders.createOrder(purchase({ items: [{ ticketTypeId: "tt-ga", quantity: 1, unitPrice: { amountMinor: 100n, currency: "USD" } }] }), await as(ACME, "u-1")));
    expect(stale.code).toBe(Code.FailedPrecondition);
    expect(countRows("SELECT COUNT(*) AS n FROM orders")).toBe(before);
  });

  it("a buyer other than the context user is PERMISSION_DENIED", async () => {
    const err = await callError(orders.createOrder(purchase({ userId: "u-2" }), await as(ACME, "u-1")));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

describe("order-service GetOrder", () => {
  it("returns the seeded order with items and totals, to ticket-service and ops", async () => {
    const { order } = await orders.getOrder({ tenantId: ACME, orderId: "o-1" }, await as(ACME, "u-1"));
    expect(order).toMatchObject({ id: "o-1", userId: "u-1", status: OrderStatus.CONFIRMED, paymentIntentId: "pi_demo_1" });
    expect(order!.items).toHaveLength(1);
    expect(order!.items[0]).toMatchObject({ ticketTypeId: "tt-ga", quantity: 3 });
    expect(order!.total?.amountMinor).toBe(13500n);
    const byOps = await opsOrders.getOrder({ tenantId: ACME, orderId: "o-1", userId: "u-1" }, await as(ACME, "admin-1"));
    expect(byOps.order?.id).toBe("o-1");
  });

  it("another user's order, another tenant's order and a missing order are NOT_FOUND", async () => {
    expect((await callError(orders.getOrder({ tenantId: ACME, orderId: "o-1", userId: "u-2" }, await as(ACME, "u-2")))).code).toBe(Code.NotFound);
    expect((await callError(orders.getOrder({ tenantId: GLOBEX, orderId: "o-1" }, await as(GLOBEX, "u-g1")))).code).toBe(Code.NotFound);
    expect((await callError(orders.getOrder({ tenantId: ACME, orderId: "o-missing" }, await as(ACME, "u-1")))).code).toBe(Code.NotFound);
  });

  it("a malformed id is INVALID_ARGUMENT", async () => {
    const err = await callError(orders.getOrder({ tenantId: ACME, orderId: "" }, await as(ACME, "u-1")));
    expect(violatedFields(err)).toEqual(["order_id"]);
  });
});

describe("order-service CancelOrder", () => {
  async function pendingOrderWithPayment(key: string, paymentMethod = "pm_card_visa"): Promise<{ id: string; paymentId: string }> {
    failCompletes = true;
    try {
      await callError(orders.createOrder(purchase({ metadata: { payment_method: paymentMethod } }), await as(ACME, "u-1", key)));
    } finally {
      failCompletes = false;
    }
    const row = svc.service.runtime.db.prepare("SELECT id, payment_id FROM orders WHERE tenant_id = ? AND idempotency_key = ?").get(ACME, key) as { id: string; payment_id: string };
    return { id: row.id, paymentId: row.payment_id };
  }

  it("cancels a pending order and its uncaptured payment; twice is a no-op; it is never paid after", async () => {
    const { id, paymentId } = await pendingOrderWithPayment("cancel-pending");
    const first = await orders.cancelOrder({ tenantId: ACME, orderId: id, userId: "u-1", reason: "saga_compensation" }, await as(ACME, "u-1", "cancel-1"));
    expect(first.order?.status).toBe(OrderStatus.CANCELLED);
    expect(fakePayments.get(paymentId)?.status).toBe(PaymentStatus.CANCELLED);
    const again = await orders.cancelOrder({ tenantId: ACME, orderId: id, reason: "saga_compensation" }, await as(ACME, "u-1", "cancel-2"));
    expect(again.order?.status).toBe(OrderStatus.CANCELLED);
    expect(paymentCalls.filter((c) => c.method === "cancelPayment" && c.paymentId === paymentId).map((c) => c.key)).toEqual([`order-${id}-payment-cancel`]);
    // The create retried with its key does not pay the cancelled order.
    const retried = await orders.createOrder(purchase({ metadata: { payment_method: "pm_card_visa" } }), await as(ACME, "u-1", "cancel-pending"));
    expect(retried.order).toMatchObject({ id, status: OrderStatus.CANCELLED });
    expect(callsFor(paymentId, "completePayment")).toBe(1);
  });

  it("a pending order whose payment failed is cancelled: payment-service has nothing to cancel", async () => {
    const { id, paymentId } = await pendingOrderWithPayment("cancel-failed-payment", "pm_card_declined");
    expect(fakePayments.get(paymentId)?.status).toBe(PaymentStatus.FAILED);
    const { order } = await orders.cancelOrder({ tenantId: ACME, orderId: id, reason: "payment_failed" }, await as(ACME, "u-1"));
    expect(order?.status).toBe(OrderStatus.CANCELLED);
  });

  it("a paid order with a captured payment is FAILED_PRECONDITION; an authorized one is cancelled with its payment", async () => {
    const err = await callError(orders.cancelOrder({ tenantId: ACME, orderId: "o-1", reason: "x" }, await as(ACME, "u-1")));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toBe("order is paid: refund it instead");
    const { order } = await orders.createOrder(purchase({ metadata: { payment_method: "pm_card_authorize_only" } }), await as(ACME, "u-1", "cancel-auth"));
    expect(order?.status).toBe(OrderStatus.PAID);
    const cancelled = await orders.cancelOrder({ tenantId: ACME, orderId: order!.id }, await as(ACME, "u-1"));
    expect(cancelled.order?.status).toBe(OrderStatus.CANCELLED);
    expect([...fakePayments.values()].find((p) => p.orderId === order!.id)?.status).toBe(PaymentStatus.CANCELLED);
  });

  it("another tenant's or another user's order is NOT_FOUND; a user other than the context's is PERMISSION_DENIED", async () => {
    expect((await callError(orders.cancelOrder({ tenantId: GLOBEX, orderId: "o-1" }, await as(GLOBEX, "u-g1")))).code).toBe(Code.NotFound);
    expect((await callError(orders.cancelOrder({ tenantId: ACME, orderId: "o-1", userId: "u-2" }, await as(ACME, "u-2")))).code).toBe(Code.NotFound);
    expect((await callError(orders.cancelOrder({ tenantId: ACME, orderId: "o-1", userId: "u-1" }, await as(ACME, "u-2")))).code).toBe(Code.PermissionDenied);
    expect(violatedFields(await callError(orders.cancelOrder({ tenantId: ACME, orderId: "" }, await as(ACME, "u-1"))))).toEqual(["order_id"]);
  });
});

describe("order-service restart", () => {
  it("CreateOrder retried with its key after a restart re-drives the same order, one row", async () => {
    await svc.stop();
    const database = join(dir, "order.db");
    await startOrder(database);
    failCompletes = true;
    try {
      await callError(orders.createOrder(purchase(), await as(ACME, "u-1", "create-restart")));
    } finally {
      failCompletes = false;
    }
    const before = svc.service.runtime.db.prepare("SELECT id, status, payment_id FROM orders WHERE tenant_id = ? AND idempotency_key = ?").get(ACME, "create-restart") as { id: string; status: string; payment_id: string };
    expect(before.status).toBe("pending");
    await svc.stop();
    await startOrder(database);
    const { order } = await orders.createOrder(purchase(), await as(ACME, "u-1", "create-restart"));
    expect(order).toMatchObject({ id: before.id, status: OrderStatus.PAID });
    const again = await orders.createOrder(purchase(), await as(ACME, "u-1", "create-restart"));
    expect(again.order).toMatchObject({ id: before.id, status: OrderStatus.PAID });
    expect(countRows("SELECT COUNT(*) AS n FROM orders WHERE tenant_id = ? AND idempotency_key = ?", ACME, "create-restart")).toBe(1);
    expect(callsFor(before.payment_id, "createPaymentIntent")).toBe(1);
  });

  it("after a restart the stored order still refuses its key for a different request", async () => {
    const database = join(dir, "order.db");
    await orders.createOrder(purchase(), await as(ACME, "u-1", "conflict-restart"));
    await svc.stop();
    await startOrder(database);
    const rows = countRows("SELECT COUNT(*) AS n FROM orders");
    const err = await callError(orders.createOrder(purchase({ items: [{ ticketTypeId: "tt-vip", quantity: 4 }] }), await as(ACME, "u-1", "conflict-restart")));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(countRows("SELECT COUNT(*) AS n FROM orders")).toBe(rows);
  });
});
