/**
 * payment-service moving money back and on, over mTLS through its generated
 * client: refunds (never more than the payment, concurrent ones included; a
 * ticket refunded once; ticket-service asked per ticket, then cancel-batch),
 * marketplace escrow (held once, released once OR refunded once), connected
 * accounts, venue transfers and earnings, and a restart on a file database.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createPaymentServiceClient, type PaymentServiceClient } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_rpc.ts";
import { EscrowStatus, PaymentStatus, RefundStatus, VenueTransferStatus } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_pb.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { paymentModule } from "../../services/payment/index.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, rpcAddressEnv, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";
import { startTicketFake, type TicketFake } from "./payment-ticket-fake.ts";

let pki: TestPki;
let ticket: TicketFake;

interface Clients {
  svc: ServiceHarness;
  orders: PaymentServiceClient;
  market: PaymentServiceClient;
  venues: PaymentServiceClient;
  notifications: PaymentServiceClient;
}
let c: Clients;

async function start(database?: string): Promise<Clients> {
  const svc = await startService(pki, paymentModule, {
    env: rpcAddressEnv("ticket-service", ticket.address),
    resilience: { retryMaxAttempts: 1, registry: new ResilienceRegistry({ logger: silentLogger() }) },
    ...(database ? { database } : {}),
  });
  const callers = { resilience: { retryMaxAttempts: 1, registry: new ResilienceRegistry({ logger: silentLogger() }) } };
  return {
    svc,
    orders: await svc.client("order-service", createPaymentServiceClient, callers),
    market: await svc.client("marketplace-service", createPaymentServiceClient, callers),
    venues: await svc.client("venue-service", createPaymentServiceClient, callers),
    notifications: await svc.client("notification-service", createPaymentServiceClient, callers),
  };
}

beforeAll(async () => {
  pki = await createTestPki();
  ticket = await startTicketFake(pki);
  for (const id of ["tk-a", "tk-b", "tk-c"]) ticket.tickets.set(id, { orderId: "o-rf-1", canRefund: true });
  ticket.tickets.set("tk-used", { orderId: "o-rf-1", canRefund: false });
  ticket.tickets.set("tk-other", { orderId: "o-elsewhere", canRefund: true });
  ticket.tickets.set("tk-rs", { orderId: "o-rs", canRefund: true });
  c = await start();
});

afterAll(async () => {
  await c?.svc.stop();
  await ticket?.stop();
  pki?.cleanup();
});

async function keyed(svc: ServiceHarness, key: string, tenantId = ACME, userId = "u-1"): Promise<CallOptions> {
  const base = await svc.as(tenantId, userId);
  return { ...base, headers: { ...(base.headers as Record<string, string>), "idempotency-key": key } };
}

function count(svc: ServiceHarness, sql: string, ...args: string[]): number {
  return (svc.service.runtime.db.prepare(sql).get(...args) as { n: number }).n;
}

const usd = (amountMinor: bigint) => ({ amountMinor, currency: "USD" });

/** A completed (captured) payment for an order at venue v-rf (v-1's earnings stay the seeded ones). */
async function paidOrder(k: Clients, orderId: string, amountMinor: bigint): Promise<string> {
  const pi = await k.orders.createPaymentIntent(
    { tenantId: ACME, orderId, userId: "u-1", venueId: "v-rf", eventId: "e-1", amount: usd(amountMinor) },
    await keyed(k.svc, `${orderId}-intent`),
  );
  await k.orders.completePayment({ tenantId: ACME, orderId, paymentId: pi.paymentId }, await keyed(k.svc, `${orderId}-complete`));
  return pi.paymentId;
}

describe("CreateRefund", () => {
  let paymentId: string;

  beforeAll(async () => {
    paymentId = await paidOrder(c, "o-rf-1", 9000n);
  });

  it("refunds a ticket: asks ticket-service about it, pays back, cancels it, and the payment is partially refunded", async () => {
    const res = await c.orders.createRefund(
      { tenantId: ACME, paymentId, orderId: "o-rf-1", amount: usd(4500n), reason: "requested_by_customer", ticketIds: ["tk-a"] },
      await keyed(c.svc, "rf-1"),
    );
    expect(res.refund).toMatchObject({ paymentId, orderId: "o-rf-1", amount: usd(4500n), status: RefundStatus.SUCCEEDED, reason: "requested_by_customer" });
    expect(res.refund?.processorRefundId).toMatch(/^re_[0-9a-f]{32}$/);
    expect(ticket.refundLookups).toContain("tk-a");
    expect(ticket.cancelled).toContainEqual({ ticketIds: ["tk-a"], refundId: res.refund!.id });
    const p = await c.notifications.getPaymentDetails({ tenantId: ACME, paymentId }, await c.svc.as(ACME));
    expect(p.payment).toMatchObject({ status: PaymentStatus.PARTIALLY_REFUNDED, refundedAmount: usd(4500n) });
    // The same key again: the first refund, nothing new anywhere.
    const again = await c.orders.createRefund(
      { tenantId: ACME, paymentId, orderId: "o-rf-1", amount: usd(4500n), reason: "requested_by_customer", ticketIds: ["tk-a"] },
      await keyed(c.svc, "rf-1"),
    );
    expect(again).toEqual(res);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM refunds WHERE tenant_id = ? AND payment_id = ?", ACME, paymentId)).toBe(1);
    expect(ticket.cancelled.filter((x) => x.refundId === res.refund!.id)).toHaveLength(1);
  });

  it("a ticket is not refunded twice, and no refund goes past what is left", async () => {
    const lookups = ticket.refundLookups.length;
    const twice = await callError(c.orders.createRefund({ tenantId: ACME, paymentId, amount: usd(100n), ticketIds: ["tk-a"] }, await keyed(c.svc, "rf-2")));
    expect([twice.code, twice.rawMessage]).toEqual([Code.FailedPrecondition, "ticket already refunded"]);
    expect(ticket.refundLookups.length).toBe(lookups);
    const over = await callError(c.orders.createRefund({ tenantId: ACME, paymentId, amount: usd(4501n) }, await keyed(c.svc, "rf-3")));
    expect([over.code, over.rawMessage]).toEqual([Code.FailedPrecondition, "refund exceeds the refundable amount"]);
  });

  it("refuses tickets ticket-service says are not refundable, of another order, or unknown", async () => {
    const used = await callError(c.orders.createRefund({ tenantId: ACME, paymentId, amount: usd(100n), ticketIds: ["tk-used"] }, await keyed(c.svc, "rf-4")));
    expect([used.code, used.rawMessage]).toEqual([Code.FailedPrecondition, "ticket is not refundable"]);
    const other = await callError(c.orders.createRefund({ tenantId: ACME, paymentId, amount: usd(100n), ticketIds: ["tk-other"] }, await keyed(c.svc, "rf-5")));
    expect([other.code, other.rawMessage]).toEqual([Code.FailedPrecondition, "ticket is not part of the payment's order"]);
    const unknown = await callError(c.orders.createRefund({ tenantId: ACME, paymentId, amount: usd(100n), ticketIds: ["tk-nope"] }, await keyed(c.svc, "rf-6")));
    expect([unknown.code, unknown.rawMessage]).toEqual([Code.NotFound, "ticket not found"]);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM refunds WHERE tenant_id = ? AND payment_id = ?", ACME, paymentId)).toBe(1);
  });

  it("an unset amount refunds what is left; then the payment is refunded and refuses more", async () => {
    const res = await c.orders.createRefund({ tenantId: ACME, paymentId, ticketIds: ["tk-b"], reason: "event_cancelled" }, await keyed(c.svc, "rf-7"));
    expect(res.refund?.amount).toMatchObject(usd(4500n));
    const p = await c.notifications.getPaymentDetails({ tenantId: ACME, paymentId }, await c.svc.as(ACME));
    expect(p.payment).toMatchObject({ status: PaymentStatus.REFUNDED, refundedAmount: usd(9000n) });
    const more = await callError(c.orders.createRefund({ tenantId: ACME, paymentId, amount: usd(1n) }, await keyed(c.svc, "rf-8")));
    expect([more.code, more.rawMessage]).toEqual([Code.FailedPrecondition, "payment already fully refunded"]);
  });

  it("a payment held in escrow is refunded only through its escrow", async () => {
    const pi = await c.market.createPaymentIntent({ tenantId: ACME, listingId: "l-rf", userId: "u-2", amount: usd(800n) }, await keyed(c.svc, "rf-esc-intent", ACME, "u-2"));
    await c.market.holdEscrow({ tenantId: ACME, listingId: "l-rf", buyerUserId: "u-2", sellerUserId: "u-1", paymentId: pi.paymentId, amount: usd(800n) }, await keyed(c.svc, "rf-esc-hold"));
    const err = await callError(c.orders.createRefund({ tenantId: ACME, paymentId: pi.paymentId, amount: usd(100n) }, await keyed(c.svc, "rf-esc")));
    expect([err.code, err.rawMessage]).toEqual([Code.FailedPrecondition, "payment is held in escrow; refund the escrow"]);
  });

  it("ticket-service down while cancelling: the refund stays pending with its amount reserved; the keyed retry finishes it, paying back once", async () => {
    const pid = await paidOrder(c, "o-rf-down", 3000n);
    ticket.tickets.set("tk-down", { orderId: "o-rf-down", canRefund: true });
    ticket.cancelDown = true;
    const down = await callError(c.orders.createRefund({ tenantId: ACME, paymentId: pid, ticketIds: ["tk-down"] }, await keyed(c.svc, "rf-down")));
    expect(down.code).toBe(Code.Unavailable);
    const row = c.svc.service.runtime.db.prepare("SELECT id, status, amount_minor FROM refunds WHERE tenant_id = ? AND payment_id = ?").get(ACME, pid) as { id: string; status: string; amount_minor: number };
    expect([row.status, row.amount_minor]).toEqual(["pending", 3000]);
    // Reserved: nothing more can be refunded meanwhile.
    const meanwhile = await callError(c.orders.createRefund({ tenantId: ACME, paymentId: pid, amount: usd(1n) }, await keyed(c.svc, "rf-down-2")));
    expect(meanwhile.rawMessage).toBe("payment already fully refunded");
    ticket.cancelDown = false;
    const res = await c.orders.createRefund({ tenantId: ACME, paymentId: pid, ticketIds: ["tk-down"] }, await keyed(c.svc, "rf-down"));
    expect(res.refund).toMatchObject({ id: row.id, status: RefundStatus.SUCCEEDED, amount: usd(3000n) });
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind = 'refund' AND detail = ?", ACME, row.id)).toBe(1);
    expect(ticket.cancelled.filter((x) => x.refundId === row.id)).toEqual([{ ticketIds: ["tk-down"], refundId: row.id }]);
    const p = await c.notifications.getPaymentDetails({ tenantId: ACME, paymentId: pid }, await c.svc.as(ACME));
    expect(p.payment?.status).toBe(PaymentStatus.REFUNDED);
  });

  it("concurrent refunds never add up past the payment", async () => {
    const pid = await paidOrder(c, "o-rf-race", 10_000n);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, async (_, i) => c.orders.createRefund({ tenantId: ACME, paymentId: pid, amount: usd(3000n) }, await keyed(c.svc, `race-${i}`))),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => ConnectError.from(r.reason));
    expect(ok).toHaveLength(3);
    expect(refused.map((e) => e.code)).toEqual(Array(5).fill(Code.FailedPrecondition));
    const sum = c.svc.service.runtime.db.prepare("SELECT SUM(amount_minor) AS s FROM refunds WHERE tenant_id = ? AND payment_id = ?").get(ACME, pid) as { s: number };
    expect(sum.s).toBe(9000);
  });

  it("refuses a payment not captured, another tenant's payment, and bad fields", async () => {
    const pi = await c.orders.createPaymentIntent({ tenantId: ACME, orderId: "o-rf-auth", userId: "u-1", amount: usd(500n) }, await keyed(c.svc, "rf-auth-intent"));
    const uncaptured = await callError(c.orders.createRefund({ tenantId: ACME, paymentId: pi.paymentId }, await keyed(c.svc, "rf-9")));
    expect([uncaptured.code, uncaptured.rawMessage]).toEqual([Code.FailedPrecondition, "payment not captured"]);
    const other = await callError(c.orders.createRefund({ tenantId: GLOBEX, paymentId: "pay-1" }, await keyed(c.svc, "rf-10", GLOBEX, "u-g1")));
    expect(other.code).toBe(Code.NotFound);
    const bad = await callError(c.orders.createRefund({ tenantId: ACME, paymentId: "pay-1", amount: usd(0n), ticketIds: ["tk-a", "tk-a"] }, await keyed(c.svc, "rf-11")));
    expect(violatedFields(bad)).toEqual(["ticket_ids", "amount.amount_minor"]);
  });
});

describe("GetRefundDetails", () => {
  it("returns the refund with the payment's original amount; another tenant's is NOT_FOUND; the id is validated", async () => {
    const pid = await paidOrder(c, "o-rd-1", 2500n);
    const { refund } = await c.orders.createRefund({ tenantId: ACME, paymentId: pid, amount: usd(1000n) }, await keyed(c.svc, "rd-1"));
    const res = await c.notifications.getRefundDetails({ tenantId: ACME, refundId: refund!.id }, await c.svc.as(ACME));
    expect(res.refund).toMatchObject({ id: refund!.id, amount: usd(1000n), status: RefundStatus.SUCCEEDED });
    expect(res.originalAmount).toMatchObject(usd(2500n));
    expect((await callError(c.notifications.getRefundDetails({ tenantId: GLOBEX, refundId: refund!.id }, await c.svc.as(GLOBEX)))).code).toBe(Code.NotFound);
    expect(violatedFields(await callError(c.notifications.getRefundDetails({ tenantId: ACME, refundId: "" }, await c.svc.as(ACME))))).toEqual(["refund_id"]);
  });
});

describe("escrow", () => {
  async function resalePayment(listingId: string, amountMinor = 20_000n, paymentMethod = "pm_card_visa"): Promise<string> {
    const pi = await c.market.createPaymentIntent(
      { tenantId: ACME, listingId, userId: "u-2", amount: usd(amountMinor), metadata: { payment_method: paymentMethod } },
      await keyed(c.svc, `${listingId}-intent`, ACME, "u-2"),
    );
    return pi.paymentId;
  }
  const hold = (listingId: string, paymentId: string, amountMinor = 20_000n) =>
    ({ tenantId: ACME, listingId, buyerUserId: "u-2", sellerUserId: "u-1", paymentId, amount: usd(amountMinor) });

  it("holds once, releases once to the seller minus fee and royalty; a refund after release is refused", async () => {
    const pid = await resalePayment("l-1");
    const held = await c.market.holdEscrow(hold("l-1", pid), await keyed(c.svc, "esc-1-hold"));
    expect(held.escrow).toMatchObject({ listingId: "l-1", paymentId: pid, status: EscrowStatus.HELD, amount: usd(20_000n) });
    // Holding captured the resale payment: the platform has the funds.
    expect((await c.notifications.getPaymentDetails({ tenantId: ACME, paymentId: pid }, await c.svc.as(ACME))).payment?.status).toBe(PaymentStatus.COMPLETED);
    expect(await c.market.holdEscrow(hold("l-1", pid), await keyed(c.svc, "esc-1-hold"))).toEqual(held);
    const twice = await callError(c.market.holdEscrow(hold("l-1", pid), await keyed(c.svc, "esc-1-hold-again")));
    expect([twice.code, twice.rawMessage]).toEqual([Code.AlreadyExists, "payment already held in escrow"]);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM escrows WHERE tenant_id = ? AND payment_id = ?", ACME, pid)).toBe(1);

    const escrowId = held.escrow!.id;
    const released = await c.market.releaseEscrow({ tenantId: ACME, escrowId }, await keyed(c.svc, "esc-1-release"));
    expect(released.escrow?.status).toBe(EscrowStatus.RELEASED);
    expect(released.sellerPayout).toMatchObject(usd(18_000n));
    expect(await c.market.releaseEscrow({ tenantId: ACME, escrowId }, await keyed(c.svc, "esc-1-release"))).toEqual(released);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind = 'transfer' AND object_id = ?", ACME, escrowId)).toBe(1);
    const again = await callError(c.market.releaseEscrow({ tenantId: ACME, escrowId }, await keyed(c.svc, "esc-1-release-2")));
    expect([again.code, again.rawMessage]).toEqual([Code.FailedPrecondition, "escrow already released"]);
    const refund = await callError(c.market.refundEscrow({ tenantId: ACME, escrowId, reason: "transfer_failed" }, await keyed(c.svc, "esc-1-refund")));
    expect([refund.code, refund.rawMessage]).toEqual([Code.FailedPrecondition, "escrow already released"]);
  });

  it("refunds once to the buyer through a refund of the payment; a release after refund is refused", async () => {
    const pid = await resalePayment("l-2", 5000n);
    const { escrow } = await c.market.holdEscrow(hold("l-2", pid, 5000n), await keyed(c.svc, "esc-2-hold"));
    const res = await c.market.refundEscrow({ tenantId: ACME, escrowId: escrow!.id, reason: "listing_cancelled" }, await keyed(c.svc, "esc-2-refund"));
    expect(res.escrow?.status).toBe(EscrowStatus.REFUNDED);
    expect(res.escrow?.refundedAt).toBeDefined();
    expect(await c.market.refundEscrow({ tenantId: ACME, escrowId: escrow!.id, reason: "listing_cancelled" }, await keyed(c.svc, "esc-2-refund"))).toEqual(res);
    const p = await c.notifications.getPaymentDetails({ tenantId: ACME, paymentId: pid }, await c.svc.as(ACME));
    expect(p.payment).toMatchObject({ status: PaymentStatus.REFUNDED, refundedAmount: usd(5000n) });
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM refunds WHERE tenant_id = ? AND payment_id = ? AND status = 'succeeded'", ACME, pid)).toBe(1);
    const direct = await callError(c.orders.createRefund({ tenantId: ACME, paymentId: pid, amount: usd(1n) }, await keyed(c.svc, "esc-2-direct")));
    expect(direct.code).toBe(Code.FailedPrecondition);
    const release = await callError(c.market.releaseEscrow({ tenantId: ACME, escrowId: escrow!.id }, await keyed(c.svc, "esc-2-release")));
    expect([release.code, release.rawMessage]).toEqual([Code.FailedPrecondition, "escrow already refunded"]);
    const twice = await callError(c.market.refundEscrow({ tenantId: ACME, escrowId: escrow!.id }, await keyed(c.svc, "esc-2-refund-2")));
    expect([twice.code, twice.rawMessage]).toEqual([Code.FailedPrecondition, "escrow already refunded"]);
  });

  it("a release and a refund racing: exactly one wins", async () => {
    const pid = await resalePayment("l-3", 3000n);
    const { escrow } = await c.market.holdEscrow(hold("l-3", pid, 3000n), await keyed(c.svc, "esc-3-hold"));
    const [rel, ref] = await Promise.allSettled([
      c.market.releaseEscrow({ tenantId: ACME, escrowId: escrow!.id }, await keyed(c.svc, "esc-3-release")),
      c.market.refundEscrow({ tenantId: ACME, escrowId: escrow!.id }, await keyed(c.svc, "esc-3-refund")),
    ]);
    expect([rel.status, ref.status].sort()).toEqual(["fulfilled", "rejected"]);
    const loser = (rel.status === "rejected" ? rel : ref) as PromiseRejectedResult;
    expect(ConnectError.from(loser.reason).code).toBe(Code.FailedPrecondition);
  });

  it("refuses a declined payment, another buyer's payment, a seller who is the buyer; another tenant's escrow is NOT_FOUND", async () => {
    const declined = await resalePayment("l-4", 1000n, "pm_card_declined");
    const failed = await callError(c.market.holdEscrow(hold("l-4", declined, 1000n), await keyed(c.svc, "esc-4")));
    expect([failed.code, failed.rawMessage]).toEqual([Code.FailedPrecondition, "payment failed"]);
    const pid = await resalePayment("l-5", 1000n);
    const otherBuyer = await callError(c.market.holdEscrow({ ...hold("l-5", pid, 1000n), buyerUserId: "u-9" }, await keyed(c.svc, "esc-5")));
    expect([otherBuyer.code, otherBuyer.rawMessage]).toEqual([Code.FailedPrecondition, "payment was made by another user"]);
    const crossHold = await callError(c.market.holdEscrow({ ...hold("l-5", pid, 1000n), tenantId: GLOBEX }, await keyed(c.svc, "esc-5b", GLOBEX, "u-g1")));
    expect(crossHold.code).toBe(Code.NotFound);
    const self = await callError(c.market.holdEscrow({ ...hold("l-5", pid, 1000n), sellerUserId: "u-2" }, await keyed(c.svc, "esc-6")));
    expect(violatedFields(self)).toEqual(["seller_user_id"]);
    const { escrow } = await c.market.holdEscrow(hold("l-5", pid, 1000n), await keyed(c.svc, "esc-7"));
    const cross = await callError(c.market.releaseEscrow({ tenantId: GLOBEX, escrowId: escrow!.id }, await keyed(c.svc, "esc-8", GLOBEX, "u-g1")));
    expect(cross.code).toBe(Code.NotFound);
    const crossRefund = await callError(c.market.refundEscrow({ tenantId: GLOBEX, escrowId: escrow!.id }, await keyed(c.svc, "esc-9", GLOBEX, "u-g1")));
    expect(crossRefund.code).toBe(Code.NotFound);
  });
});

describe("connected accounts, venue transfers and earnings", () => {
  const account = (venueId: string) => ({
    tenantId: ACME, venueId, email: "payouts@venue.test", country: "US", businessType: "company",
    returnUrl: "https://venues.test/return", refreshUrl: "https://venues.test/refresh",
  });

  it("creates one account per venue, not yet able to take payouts; the same key returns it", async () => {
    const res = await c.venues.createConnectedAccount(account("v-new"), await keyed(c.svc, "acct-1"));
    expect(res.account).toMatchObject({ venueId: "v-new", chargesEnabled: false, payoutsEnabled: false, detailsSubmitted: false });
    expect(res.account?.id).toMatch(/^acct_[0-9a-f]{32}$/);
    expect(res.onboardingUrl).toBe(`https://connect.stripe.test/setup/${res.account!.id}`);
    expect(await c.venues.createConnectedAccount(account("v-new"), await keyed(c.svc, "acct-1"))).toEqual(res);
    const twice = await callError(c.venues.createConnectedAccount(account("v-new"), await keyed(c.svc, "acct-2")));
    expect([twice.code, twice.rawMessage]).toEqual([Code.AlreadyExists, "venue already has a connected account"]);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM connected_accounts WHERE tenant_id = ? AND venue_id = ?", ACME, "v-new")).toBe(1);
    const blocked = await callError(c.venues.createVenueTransfer({ tenantId: ACME, venueId: "v-new", amount: usd(100n) }, await keyed(c.svc, "tr-blocked")));
    expect([blocked.code, blocked.rawMessage]).toEqual([Code.FailedPrecondition, "venue's connected account cannot receive payouts yet"]);
  });

  it("validates the account request, naming the fields", async () => {
    const err = await callError(c.venues.createConnectedAccount(
      { tenantId: ACME, venueId: "v-x", email: "nope", country: "usa", businessType: "llc", returnUrl: "http://x.test", refreshUrl: "" },
      await keyed(c.svc, "acct-bad"),
    ));
    expect(violatedFields(err)).toEqual(["email", "country", "business_type", "return_url", "refresh_url"]);
  });

  it("transfers what a venue earned and no more; earnings add up; a keyed retry pays once", async () => {
    const before = await c.venues.getVenueEarnings({ tenantId: ACME, venueId: "v-1" }, await c.svc.as(ACME));
    expect(before).toMatchObject({
      venueId: "v-1", grossEarnings: usd(13_500n), platformFees: usd(675n), netEarnings: usd(12_825n), paidOut: usd(0n), pendingPayout: usd(12_825n),
    });
    const tr = await c.venues.createVenueTransfer({ tenantId: ACME, venueId: "v-1", amount: usd(5000n), eventId: "e-1", description: "June settlement" }, await keyed(c.svc, "tr-1"));
    expect(tr.transfer).toMatchObject({ venueId: "v-1", connectedAccountId: "acct_demo_v1", amount: usd(5000n), status: VenueTransferStatus.PAID });
    expect(tr.transfer?.processorTransferId).toMatch(/^tr_[0-9a-f]{32}$/);
    expect(await c.venues.createVenueTransfer({ tenantId: ACME, venueId: "v-1", amount: usd(5000n), eventId: "e-1", description: "June settlement" }, await keyed(c.svc, "tr-1"))).toEqual(tr);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM venue_transfers WHERE tenant_id = ? AND venue_id = ?", ACME, "v-1")).toBe(1);
    expect(count(c.svc, "SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind = 'transfer' AND detail = ?", ACME, "acct_demo_v1")).toBe(1);
    const over = await callError(c.venues.createVenueTransfer({ tenantId: ACME, venueId: "v-1", amount: usd(7826n) }, await keyed(c.svc, "tr-2")));
    expect([over.code, over.rawMessage]).toEqual([Code.FailedPrecondition, "transfer exceeds the venue's pending payout"]);
    const after = await c.venues.getVenueEarnings({ tenantId: ACME, venueId: "v-1" }, await c.svc.as(ACME));
    expect(after).toMatchObject({ paidOut: usd(5000n), pendingPayout: usd(7825n) });
    const future = await c.venues.getVenueEarnings(
      { tenantId: ACME, venueId: "v-1", startTime: timestampFromDate(new Date(Date.now() + 86_400_000)) },
      await c.svc.as(ACME),
    );
    expect(future).toMatchObject({ grossEarnings: usd(0n), paidOut: usd(0n) });
  });

  it("earnings subtract refunds; a venue without an account cannot be paid; unknown or another tenant's venue is NOT_FOUND", async () => {
    // v-rf: the refund tests' payments (9000 refunded in full, 10000 with 9000 refunded, 2500 with 1000 refunded).
    const rf = await c.venues.getVenueEarnings({ tenantId: ACME, venueId: "v-rf" }, await c.svc.as(ACME));
    const gross = rf.grossEarnings!.amountMinor;
    expect(gross).toBeGreaterThan(0n);
    const refunded = BigInt((c.svc.service.runtime.db.prepare("SELECT SUM(refunded_minor) AS s FROM payments WHERE tenant_id = ? AND venue_id = 'v-rf'").get(ACME) as { s: number }).s);
    expect(rf.netEarnings!.amountMinor).toBe(gross - rf.platformFees!.amountMinor - refunded);
    const noAccount = await callError(c.venues.createVenueTransfer({ tenantId: ACME, venueId: "v-rf", amount: usd(1n) }, await keyed(c.svc, "tr-3")));
    expect([noAccount.code, noAccount.rawMessage]).toEqual([Code.FailedPrecondition, "venue has no connected account"]);
    expect((await callError(c.venues.getVenueEarnings({ tenantId: GLOBEX, venueId: "v-1" }, await c.svc.as(GLOBEX)))).code).toBe(Code.NotFound);
    const badRange = await callError(c.venues.getVenueEarnings(
      { tenantId: ACME, venueId: "v-1", startTime: timestampFromDate(new Date(2000)), endTime: timestampFromDate(new Date(1000)) },
      await c.svc.as(ACME),
    ));
    expect(violatedFields(badRange)).toEqual(["end_time"]);
    const badTransfer = await callError(c.venues.createVenueTransfer({ tenantId: ACME, venueId: "", amount: usd(-5n) }, await keyed(c.svc, "tr-4")));
    expect(violatedFields(badTransfer)).toEqual(["venue_id", "amount.amount_minor"]);
  });
});

describe("restart on a file database", () => {
  it("CompletePayment and CreateRefund retried with their keys after restarts answer as first, with one row and one ticket-service effect", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tt-payment-"));
    const database = join(dir, "payment.db");
    let k: Clients | undefined;
    const stop = async () => {
      await k?.svc.stop();
      k = undefined;
    };
    try {
      k = await start(database);
      const pi = await k.orders.createPaymentIntent({ tenantId: ACME, orderId: "o-rs", userId: "u-1", venueId: "v-rs", amount: usd(6000n) }, await keyed(k.svc, "rs-intent"));
      ticket.down = true;
      const down = await callError(k.orders.completePayment({ tenantId: ACME, orderId: "o-rs", paymentId: pi.paymentId }, await keyed(k.svc, "rs-complete")));
      expect(down.code).toBe(Code.Unavailable);
      ticket.down = false;
      await stop();

      // Restart 1: the payment is completed, its notice still pending; the retried call delivers it.
      k = await start(database);
      expect(await k.orders.createPaymentIntent({ tenantId: ACME, orderId: "o-rs", userId: "u-1", venueId: "v-rs", amount: usd(6000n) }, await keyed(k.svc, "rs-intent"))).toEqual(pi);
      const done = await k.orders.completePayment({ tenantId: ACME, orderId: "o-rs", paymentId: pi.paymentId }, await keyed(k.svc, "rs-complete"));
      expect(done.transaction?.status).toBe(PaymentStatus.COMPLETED);
      const refund = await k.orders.createRefund({ tenantId: ACME, paymentId: pi.paymentId, amount: usd(2000n), ticketIds: ["tk-rs"] }, await keyed(k.svc, "rs-refund"));
      expect(refund.refund?.status).toBe(RefundStatus.SUCCEEDED);
      await stop();

      // Restart 2: the same keys answer as before and change nothing.
      k = await start(database);
      const again = await k.orders.completePayment({ tenantId: ACME, orderId: "o-rs", paymentId: pi.paymentId }, await keyed(k.svc, "rs-complete"));
      expect(again).toEqual(done);
      expect(await k.orders.createRefund({ tenantId: ACME, paymentId: pi.paymentId, amount: usd(2000n), ticketIds: ["tk-rs"] }, await keyed(k.svc, "rs-refund"))).toEqual(refund);
      expect(count(k.svc, "SELECT COUNT(*) AS n FROM payments WHERE tenant_id = ? AND order_id = ?", ACME, "o-rs")).toBe(1);
      expect(count(k.svc, "SELECT COUNT(*) AS n FROM refunds WHERE tenant_id = ? AND payment_id = ?", ACME, pi.paymentId)).toBe(1);
      expect(count(k.svc, "SELECT COUNT(*) AS n FROM processor_requests WHERE tenant_id = ? AND kind IN ('capture', 'refund') AND object_id = ?", ACME, pi.paymentIntentId)).toBe(2);
      const key = `payment-o-rs-${pi.paymentId}`;
      expect(ticket.received.filter((r) => r.paymentId === pi.paymentId).map((r) => r.key)).toEqual([key, key]);
      expect(ticket.applied.get(key)).toBe(1);
      expect(ticket.cancelled.filter((x) => x.refundId === refund.refund!.id)).toHaveLength(1);
    } finally {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
