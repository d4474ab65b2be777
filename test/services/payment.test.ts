/**
 * payment-service over mTLS through its generated client: payment intents
 * (fake processor, declines), CompletePayment telling ticket-service once per
 * payment (keyed, retried while pending), capture, cancel, reads, tax.
 * ticket-service is a small fake server here (payment-ticket-fake.ts).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Code, type CallOptions } from "@connectrpc/connect";
import { createPaymentServiceClient, type PaymentServiceClient } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_rpc.ts";
import { PaymentStatus } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_pb.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { paymentModule } from "../../services/payment/index.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, rpcAddressEnv, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";
import { captureLogs, type CapturedLogs } from "../support/log-capture.ts";
import { startTicketFake, type TicketFake } from "./payment-ticket-fake.ts";

let pki: TestPki;
let ticket: TicketFake;
let svc: ServiceHarness;
let logs: CapturedLogs;
let orders: PaymentServiceClient;
let tickets: PaymentServiceClient;
let market: PaymentServiceClient;
let notifications: PaymentServiceClient;

beforeAll(async () => {
  pki = await createTestPki();
  ticket = await startTicketFake(pki);
  logs = captureLogs();
  svc = await startService(pki, paymentModule, {
    env: rpcAddressEnv("ticket-service", ticket.address),
    logger: logs.logger,
    // One attempt per downstream call and a registry of our own: "ticket-service down" fails fast and trips nothing shared.
    resilience: { retryMaxAttempts: 1, registry: new ResilienceRegistry({ logger: silentLogger() }) },
  });
  // The callers make one attempt per call too, so a test counts exactly the calls it makes.
  const callers = { resilience: { retryMaxAttempts: 1, registry: new ResilienceRegistry({ logger: silentLogger() }) } };
  orders = await svc.client("order-service", createPaymentServiceClient, callers);
  tickets = await svc.client("ticket-service", createPaymentServiceClient, callers);
  market = await svc.client("marketplace-service", createPaymentServiceClient, callers);
  notifications = await svc.client("notification-service", createPaymentServiceClient, callers);
});

afterAll(async () => {
  await svc?.stop();
  await ticket?.stop();
  pki?.cleanup();
});

beforeEach(() => {
  ticket.down = false;
});

/** Call options for (tenant, user) carrying the given idempotency key. */
async function keyed(key: string, tenantId = ACME, userId = "u-1"): Promise<CallOptions> {
  const base = await svc.as(tenantId, userId);
  return { ...base, headers: { ...(base.headers as Record<string, string>), "idempotency-key": key } };
}

function count(sql: string, ...args: string[]): number {
  return (svc.service.runtime.db.prepare(sql).get(...args) as { n: number }).n;
}

const usd = (amountMinor: bigint) => ({ amountMinor, currency: "USD" });

function intent(orderId: string, amountMinor = 9000n, paymentMethod?: string) {
  return {
    tenantId: ACME, orderId, userId: "u-1", venueId: "v-1", eventId: "e-1", amount: usd(amountMinor),
    metadata: { ...(paymentMethod ? { payment_method: paymentMethod } : {}), ticket_quantity: "2" },
  };
}

describe("CreatePaymentIntent", () => {
  it("authorizes with the fake processor, which records the request", async () => {
    const res = await orders.createPaymentIntent(intent("o-ci-1"), await keyed("ci-1"));
    expect(res.status).toBe(PaymentStatus.AUTHORIZED);
    expect(res.paymentIntentId).toMatch(/^pi_[0-9a-f]{32}$/);
    expect(res.clientSecret.startsWith(`${res.paymentIntentId}_secret_`)).toBe(true);
    const row = svc.service.runtime.db.prepare("SELECT kind, object_id, amount_minor, detail, outcome, result_id FROM processor_requests WHERE tenant_id = ? AND object_id = ?").get(ACME, res.paymentId);
    expect(row).toEqual({ kind: "payment_intent", object_id: res.paymentId, amount_minor: 9000, detail: "pm_card_visa", outcome: "succeeded", result_id: res.paymentIntentId });
  });

  it("pm_card_declined is declined: the payment is FAILED", async () => {
    const res = await orders.createPaymentIntent(intent("o-ci-2", 5000n, "pm_card_declined"), await keyed("ci-2"));
    expect(res.status).toBe(PaymentStatus.FAILED);
    const details = await notifications.getPaymentDetails({ tenantId: ACME, paymentId: res.paymentId }, await svc.as(ACME));
    expect(details).toMatchObject({ cardBrand: "visa", cardLast4: "0002", receiptUrl: "" });
  });

  it("the same key returns the first answer and writes one payment; the key with another request is refused", async () => {
    const first = await orders.createPaymentIntent(intent("o-ci-3"), await keyed("ci-3"));
    const again = await orders.createPaymentIntent(intent("o-ci-3"), await keyed("ci-3"));
    expect(again).toEqual(first);
    expect(count("SELECT COUNT(*) AS n FROM payments WHERE tenant_id = ? AND order_id = ?", ACME, "o-ci-3")).toBe(1);
    expect(count("SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND object_id = ?", ACME, first.paymentId)).toBe(1);
    const err = await callError(orders.createPaymentIntent(intent("o-ci-3", 1n), await keyed("ci-3")));
    expect(err.code).toBe(Code.FailedPrecondition);
  });

  it("a second intent for an order that already has a live payment is ALREADY_EXISTS; after a decline a new one is allowed", async () => {
    await orders.createPaymentIntent(intent("o-ci-4"), await keyed("ci-4a"));
    const err = await callError(orders.createPaymentIntent(intent("o-ci-4"), await keyed("ci-4b")));
    expect(err.code).toBe(Code.AlreadyExists);
    await orders.createPaymentIntent(intent("o-ci-5", 100n, "pm_card_declined"), await keyed("ci-5a"));
    const retry = await orders.createPaymentIntent(intent("o-ci-5", 100n), await keyed("ci-5b"));
    expect(retry.status).toBe(PaymentStatus.AUTHORIZED);
  });

  it("validates fields, naming them", async () => {
    const err = await callError(market.createPaymentIntent(
      { tenantId: ACME, userId: "", amount: { amountMinor: 0n, currency: "usd" }, metadata: { payment_method: "visa" } },
      await keyed("ci-bad"),
    ));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["order_id", "user_id", "metadata[payment_method]", "amount.amount_minor", "amount.currency"]);
  });
});

describe("CompletePayment", () => {
  it("captures, tells ticket-service once with a key derived from the payment, and a keyed retry changes nothing", async () => {
    const pi = await orders.createPaymentIntent(intent("o-cp-1", 9000n), await keyed("cp-1-intent"));
    const res = await orders.completePayment({ tenantId: ACME, orderId: "o-cp-1", paymentId: pi.paymentId }, await keyed("cp-1"));
    expect(res.transaction).toMatchObject({ id: pi.paymentId, status: PaymentStatus.COMPLETED, amount: usd(9000n) });
    const sent = ticket.received.filter((r) => r.paymentId === pi.paymentId);
    const key = `payment-o-cp-1-${pi.paymentId}`;
    expect(sent).toEqual([{ method: "succeeded", key, bodyKey: key, orderId: "o-cp-1", paymentId: pi.paymentId, amountMinor: 9000n }]);
    const again = await orders.completePayment({ tenantId: ACME, orderId: "o-cp-1", paymentId: pi.paymentId }, await keyed("cp-1"));
    expect(again).toEqual(res);
    // Another key for the completed payment: naturally idempotent, nothing sent again.
    const other = await orders.completePayment({ tenantId: ACME, orderId: "o-cp-1", paymentId: pi.paymentId }, await keyed("cp-1-other"));
    expect(other.transaction?.status).toBe(PaymentStatus.COMPLETED);
    expect(ticket.received.filter((r) => r.paymentId === pi.paymentId)).toHaveLength(1);
    expect(ticket.applied.get(key)).toBe(1);
    expect(count("SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind = 'capture' AND object_id = ?", ACME, pi.paymentIntentId)).toBe(1);
    expect(logs.lines.some((l) => l.includes('"msg":"payment completed"') && l.includes(pi.paymentId))).toBe(true);
  });

  it("a declined payment tells ticket-service HandlePaymentFailed and answers FAILED", async () => {
    const pi = await orders.createPaymentIntent(intent("o-cp-2", 700n, "pm_card_declined"), await keyed("cp-2-intent"));
    const res = await orders.completePayment({ tenantId: ACME, orderId: "o-cp-2", paymentId: pi.paymentId }, await keyed("cp-2"));
    expect(res.transaction?.status).toBe(PaymentStatus.FAILED);
    expect(ticket.received.filter((r) => r.paymentId === pi.paymentId)).toEqual([
      { method: "failed", key: `payment-failed-o-cp-2-${pi.paymentId}`, bodyKey: `payment-failed-o-cp-2-${pi.paymentId}`, orderId: "o-cp-2", paymentId: pi.paymentId, amountMinor: undefined },
    ]);
  });

  it("ticket-service down: the payment stays completed, the notice pending; the retry with the same key delivers it once", async () => {
    const pi = await orders.createPaymentIntent(intent("o-cp-3", 4500n), await keyed("cp-3-intent"));
    ticket.down = true;
    const err = await callError(orders.completePayment({ tenantId: ACME, orderId: "o-cp-3", paymentId: pi.paymentId }, await keyed("cp-3")));
    expect(err.code).toBe(Code.Unavailable);
    const row = svc.service.runtime.db.prepare("SELECT status, ticket_notice FROM payments WHERE tenant_id = ? AND id = ?").get(ACME, pi.paymentId);
    expect(row).toEqual({ status: "completed", ticket_notice: "pending" });
    expect(logs.lines.some((l) => l.includes("notice pending") && l.includes(pi.paymentId))).toBe(true);
    const status = await tickets.getPaymentStatus({ tenantId: ACME, paymentId: pi.paymentId }, await svc.as(ACME));
    expect(status.status).toBe(PaymentStatus.COMPLETED);

    ticket.down = false;
    const res = await orders.completePayment({ tenantId: ACME, orderId: "o-cp-3", paymentId: pi.paymentId }, await keyed("cp-3"));
    expect(res.transaction?.status).toBe(PaymentStatus.COMPLETED);
    const key = `payment-o-cp-3-${pi.paymentId}`;
    expect(ticket.received.filter((r) => r.paymentId === pi.paymentId).map((r) => r.key)).toEqual([key, key]);
    expect(ticket.applied.get(key)).toBe(1);
    expect(svc.service.runtime.db.prepare("SELECT ticket_notice FROM payments WHERE tenant_id = ? AND id = ?").get(ACME, pi.paymentId)).toEqual({ ticket_notice: "sent" });
    // Captured once at the processor, however many completes.
    expect(count("SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind = 'capture' AND object_id = ?", ACME, pi.paymentIntentId)).toBe(1);
  });

  it("a cancelled payment is not completed; another order's or tenant's payment is NOT_FOUND; ids are validated", async () => {
    const pi = await orders.createPaymentIntent(intent("o-cp-4"), await keyed("cp-4-intent"));
    await orders.cancelPayment({ tenantId: ACME, paymentId: pi.paymentId, reason: "order_cancelled" }, await keyed("cp-4-cancel"));
    const cancelled = await callError(orders.completePayment({ tenantId: ACME, orderId: "o-cp-4", paymentId: pi.paymentId }, await keyed("cp-4")));
    expect([cancelled.code, cancelled.rawMessage]).toEqual([Code.FailedPrecondition, "payment is cancelled"]);
    const wrongOrder = await callError(orders.completePayment({ tenantId: ACME, orderId: "o-other", paymentId: pi.paymentId }, await keyed("cp-4b")));
    expect(wrongOrder.code).toBe(Code.NotFound);
    const otherTenant = await callError(orders.completePayment({ tenantId: GLOBEX, orderId: "o-cp-4", paymentId: pi.paymentId }, await keyed("cp-4c", GLOBEX, "u-g1")));
    expect(otherTenant.code).toBe(Code.NotFound);
    const bad = await callError(orders.completePayment({ tenantId: ACME, orderId: "", paymentId: "bad id" }, await keyed("cp-4d")));
    expect(violatedFields(bad)).toEqual(["order_id", "payment_id"]);
    expect(ticket.received.filter((r) => r.paymentId === pi.paymentId)).toEqual([]);
  });
});

describe("CapturePayment and CancelPayment", () => {
  it("captures part of an authorized payment once; more than authorized or a second capture is FAILED_PRECONDITION", async () => {
    const pi = await orders.createPaymentIntent(intent("o-cap-1", 1000n), await keyed("cap-1-intent"));
    const over = await callError(tickets.capturePayment({ tenantId: ACME, paymentId: pi.paymentId, amount: usd(1001n) }, await keyed("cap-1-over")));
    expect([over.code, over.rawMessage]).toEqual([Code.FailedPrecondition, "capture exceeds the authorized amount"]);
    const res = await tickets.capturePayment({ tenantId: ACME, paymentId: pi.paymentId, amount: usd(600n) }, await keyed("cap-1"));
    expect(res.payment).toMatchObject({ status: PaymentStatus.COMPLETED, amount: usd(1000n) });
    expect(svc.service.runtime.db.prepare("SELECT captured_minor FROM payments WHERE tenant_id = ? AND id = ?").get(ACME, pi.paymentId)).toEqual({ captured_minor: 600 });
    const again = await tickets.capturePayment({ tenantId: ACME, paymentId: pi.paymentId, amount: usd(600n) }, await keyed("cap-1"));
    expect(again.payment?.status).toBe(PaymentStatus.COMPLETED);
    const twice = await callError(tickets.capturePayment({ tenantId: ACME, paymentId: pi.paymentId }, await keyed("cap-1-second")));
    expect([twice.code, twice.rawMessage]).toEqual([Code.FailedPrecondition, "payment already captured"]);
    const currency = await callError(tickets.capturePayment({ tenantId: ACME, paymentId: "pay-1", amount: { amountMinor: 1n, currency: "XX" } }, await keyed("cap-bad")));
    expect(violatedFields(currency)).toEqual(["amount.currency"]);
  });

  it("cancels an authorized payment (twice is a no-op); a captured one is FAILED_PRECONDITION; another tenant's NOT_FOUND", async () => {
    const pi = await orders.createPaymentIntent(intent("o-can-1"), await keyed("can-1-intent"));
    const first = await orders.cancelPayment({ tenantId: ACME, paymentId: pi.paymentId, reason: "reservation_expired" }, await keyed("can-1"));
    expect(first.payment?.status).toBe(PaymentStatus.CANCELLED);
    const second = await orders.cancelPayment({ tenantId: ACME, paymentId: pi.paymentId }, await keyed("can-1-again"));
    expect(second.payment?.status).toBe(PaymentStatus.CANCELLED);
    expect(count("SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind = 'cancel' AND object_id = ?", ACME, pi.paymentIntentId)).toBe(1);
    const capture = await callError(tickets.capturePayment({ tenantId: ACME, paymentId: pi.paymentId }, await keyed("can-1-capture")));
    expect([capture.code, capture.rawMessage]).toEqual([Code.FailedPrecondition, "payment is cancelled"]);
    const captured = await callError(orders.cancelPayment({ tenantId: ACME, paymentId: "pay-1" }, await keyed("can-2")));
    expect([captured.code, captured.rawMessage]).toEqual([Code.FailedPrecondition, "payment already captured; refund it instead"]);
    const other = await callError(orders.cancelPayment({ tenantId: GLOBEX, paymentId: "pay-1" }, await keyed("can-3", GLOBEX, "u-g1")));
    expect(other.code).toBe(Code.NotFound);
  });
});

describe("payment reads", () => {
  it("GetPayment, GetPaymentStatus, ListOrderPayments and GetPaymentDetails read the seeded payment", async () => {
    const p = await tickets.getPayment({ tenantId: ACME, paymentId: "pay-1" }, await svc.as(ACME));
    expect(p.payment).toMatchObject({ id: "pay-1", orderId: "o-1", userId: "u-1", venueId: "v-1", eventId: "e-1", amount: usd(13500n), status: PaymentStatus.COMPLETED, paymentIntentId: "pi_demo_1" });
    const s = await tickets.getPaymentStatus({ tenantId: ACME, paymentId: "pay-1" }, await svc.as(ACME));
    expect(s).toMatchObject({ paymentId: "pay-1", status: PaymentStatus.COMPLETED });
    expect(s.updatedAt).toBeDefined();
    const list = await orders.listOrderPayments({ tenantId: ACME, orderId: "o-1" }, await svc.as(ACME));
    expect(list.payments.map((x) => x.id)).toEqual(["pay-1"]);
    const d = await notifications.getPaymentDetails({ tenantId: ACME, paymentId: "pay-1" }, await svc.as(ACME));
    expect(d).toMatchObject({ cardBrand: "visa", cardLast4: "4242", receiptUrl: "https://pay.stripe.test/receipts/pi_demo_1" });
  });

  it("lists an order's payments oldest first, a declined one included", async () => {
    const a = await orders.createPaymentIntent(intent("o-list", 300n, "pm_card_declined"), await keyed("list-a"));
    const b = await orders.createPaymentIntent(intent("o-list", 300n, "pm_card_mastercard"), await keyed("list-b"));
    const list = await orders.listOrderPayments({ tenantId: ACME, orderId: "o-list" }, await svc.as(ACME));
    expect(list.payments.map((x) => [x.id, x.status])).toEqual([[a.paymentId, PaymentStatus.FAILED], [b.paymentId, PaymentStatus.AUTHORIZED]]);
  });

  it("another tenant's payment is NOT_FOUND for every read; bad ids are INVALID_ARGUMENT", async () => {
    const g = await svc.as(GLOBEX, "u-g1");
    for (const call of [
      tickets.getPayment({ tenantId: GLOBEX, paymentId: "pay-1" }, g),
      tickets.getPaymentStatus({ tenantId: GLOBEX, paymentId: "pay-1" }, g),
      notifications.getPaymentDetails({ tenantId: GLOBEX, paymentId: "pay-1" }, g),
    ]) {
      expect((await callError(call)).code).toBe(Code.NotFound);
    }
    expect((await orders.listOrderPayments({ tenantId: GLOBEX, orderId: "o-1" }, g)).payments).toEqual([]);
    const bad = await callError(orders.listOrderPayments({ tenantId: ACME, orderId: "" }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["order_id"]);
    const badStatus = await callError(tickets.getPaymentStatus({ tenantId: ACME, paymentId: "x y" }, await svc.as(ACME)));
    expect(violatedFields(badStatus)).toEqual(["payment_id"]);
  });

  it("a caller the contract does not name is PERMISSION_DENIED", async () => {
    const err = await callError(market.getPayment({ tenantId: ACME, paymentId: "pay-1" }, await svc.as(ACME)));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

describe("CalculateTax", () => {
  it("adds every rate covering the address, rounded half up per line", async () => {
    const res = await orders.calculateTax(
      { tenantId: ACME, venueId: "v-1", customerAddress: { country: "US", region: "NY", city: "New York" }, subtotal: usd(10_001n) },
      await svc.as(ACME),
    );
    expect(res.lines.map((l) => [l.jurisdiction, l.ratePercent, l.amount?.amountMinor])).toEqual([["NY state", 4, 400n], ["New York City", 4.5, 450n]]);
    expect(res.tax).toMatchObject(usd(850n));
    expect(res.total).toMatchObject(usd(10_851n));
  });

  it("a region without rates is untaxed; a country-wide rate applies everywhere in it", async () => {
    const none = await orders.calculateTax({ tenantId: ACME, venueId: "v-1", customerAddress: { country: "US", region: "OR" }, subtotal: usd(5000n) }, await svc.as(ACME));
    expect(none.tax).toMatchObject(usd(0n));
    expect(none.total).toMatchObject(usd(5000n));
    expect(none.lines).toEqual([]);
    const gb = await orders.calculateTax({ tenantId: ACME, venueId: "v-1", customerAddress: { country: "GB", region: "LND" }, subtotal: { amountMinor: 1999n, currency: "GBP" } }, await svc.as(ACME));
    expect(gb.tax).toMatchObject({ amountMinor: 400n, currency: "GBP" });
  });

  it("validates the address and subtotal, naming the fields", async () => {
    const err = await callError(orders.calculateTax({ tenantId: ACME, venueId: "", customerAddress: { country: "usa" }, subtotal: { amountMinor: -1n, currency: "USD" } }, await svc.as(ACME)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["venue_id", "customer_address.country", "subtotal.amount_minor"]);
    const missing = await callError(orders.calculateTax({ tenantId: ACME, venueId: "v-1" }, await svc.as(ACME)));
    expect(violatedFields(missing)).toEqual(["customer_address", "subtotal"]);
  });
});
