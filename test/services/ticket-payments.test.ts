/**
 * ticket-service's purchase side over mTLS: HandlePaymentSucceeded issues a
 * paid order's tickets once per payment (read from order-service GetOrder)
 * and has each minted through minting-service MintTicket (key per ticket;
 * minting calls UpdateNft back); HandlePaymentFailed releases the
 * reservation once; ProcessMint mints a paid order's tickets. order-service
 * and minting-service are small fakes here (their real modules are built in
 * parallel; the lead's end-to-end tests use those). Includes the restart
 * case: same key after a restart issues nothing new, and re-drives a mint
 * that failed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createTicketServiceClient, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { CancelTicketOutcome, TicketMintStatus, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { OrderServiceContract } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { OrderStatus } from "../../src/contracts/gen/tickettoken/order/v1/order_service_pb.ts";
import { MintingServiceContract } from "../../src/contracts/gen/tickettoken/minting/v1/minting_service_rpc.ts";
import { MintStatus } from "../../src/contracts/gen/tickettoken/minting/v1/minting_service_pb.ts";
import { ticketModule } from "../../services/ticket/index.ts";
import { newQrCredential } from "../../services/ticket/qr.ts";
import { createSqliteTicketStore } from "../../services/ticket/store.ts";
import { transaction, type Database } from "../../services/shared/database.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs } from "../support/log-capture.ts";
import { callError, rpcAddressEnv, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

interface FakeOrder {
  status: OrderStatus;
  userId: string;
  items: { ticketTypeId: string; quantity: number; unitPrice: bigint }[];
}

/** order-service's view, per tenant: what GetOrder answers. */
const ORDERS: Record<string, FakeOrder> = {
  [`${ACME}/o-new`]: { status: OrderStatus.PAID, userId: "u-1", items: [{ ticketTypeId: "tt-ga", quantity: 2, unitPrice: 4500n }] },
  [`${ACME}/o-res`]: { status: OrderStatus.PAID, userId: "u-2", items: [{ ticketTypeId: "tt-vip", quantity: 2, unitPrice: 15000n }] },
  [`${ACME}/o-cancelled`]: { status: OrderStatus.CANCELLED, userId: "u-1", items: [{ ticketTypeId: "tt-ga", quantity: 1, unitPrice: 4500n }] },
  [`${ACME}/o-soldout`]: { status: OrderStatus.PAID, userId: "u-1", items: [{ ticketTypeId: "tt-vip", quantity: 101, unitPrice: 15000n }] },
  [`${ACME}/o-amount`]: { status: OrderStatus.PAID, userId: "u-1", items: [{ ticketTypeId: "tt-ga", quantity: 1, unitPrice: 4500n }] },
  [`${ACME}/o-mintfail`]: { status: OrderStatus.PAID, userId: "u-1", items: [{ ticketTypeId: "tt-ga", quantity: 1, unitPrice: 4500n }] },
  [`${ACME}/o-1`]: { status: OrderStatus.CONFIRMED, userId: "u-1", items: [{ ticketTypeId: "tt-ga", quantity: 3, unitPrice: 4500n }] },
  [`${ACME}/o-pending`]: { status: OrderStatus.PENDING, userId: "u-1", items: [{ ticketTypeId: "tt-ga", quantity: 1, unitPrice: 4500n }] },
};

const total = (o: FakeOrder) => o.items.reduce((s, i) => s + i.unitPrice * BigInt(i.quantity), 0n);

let pki: TestPki;
let order: RpcServer;
let minting: RpcServer;
/** Fake minting behaviour: "ok" mints and calls UpdateNft back, "down" fails. */
let mintMode: "ok" | "down" = "ok";
/** Every MintTicket the fake received: ticket id and idempotency key. */
const mintCalls: { ticketId: string; key: string | null }[] = [];
/** ticket-service as minting-service sees it (the harness under test at the time). */
let ticketForMinting: TicketServiceClient | undefined;
let mintingIdentity: Awaited<ReturnType<TestPki["material"]>>;

async function pointMintingAt(svc: ServiceHarness): Promise<void> {
  if (ticketForMinting) closeClient(ticketForMinting);
  ticketForMinting = createTicketServiceClient({ identity: mintingIdentity, address: svc.address, env: {} });
}

function downstreamEnv(): Record<string, string> {
  return { ...rpcAddressEnv("order-service", `127.0.0.1:${order.port}`), ...rpcAddressEnv("minting-service", `127.0.0.1:${minting.port}`) };
}

function keyed(opts: CallOptions, key: string): CallOptions {
  return { ...opts, headers: { ...(opts.headers as Record<string, string>), "idempotency-key": key } };
}

function count(db: Database, sql: string, ...params: string[]): number {
  return (db.prepare(`SELECT COUNT(*) AS n FROM ${sql}`).get(...params) as { n: number }).n;
}

function insertReserved(db: Database, id: string, orderId: string, userId: string, typeId: string): void {
  const at = "2026-11-01T00:00:00.000Z";
  transaction(db, () =>
    createSqliteTicketStore(db).insertTicket({
      tenantId: ACME, id, eventId: "e-1", ticketTypeId: typeId, orderId, userId, status: "reserved", ticketNumber: `TKT-${id}`,
      priceMinor: 15000, currency: "USD", isTransferable: false, ...newQrCredential(id), paymentId: "", purchasedAt: null, createdAt: at,
    }),
  );
}

beforeAll(async () => {
  pki = await createTestPki();
  mintingIdentity = await pki.material("minting-service");
  order = await createServer({
    identity: await pki.material("order-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(OrderServiceContract, {
        getOrder(req) {
          const o = ORDERS[`${req.tenantId}/${req.orderId}`];
          if (!o) throw new ConnectError("order not found", Code.NotFound);
          const items = o.items.map((i, n) => ({
            id: `${req.orderId}-item-${n}`, ticketTypeId: i.ticketTypeId, quantity: i.quantity,
            unitPrice: { amountMinor: i.unitPrice, currency: "USD" }, totalPrice: { amountMinor: i.unitPrice * BigInt(i.quantity), currency: "USD" },
          }));
          return { order: { id: req.orderId, tenantId: req.tenantId, userId: o.userId, eventId: "e-1", status: o.status, items, total: { amountMinor: total(o), currency: "USD" } } };
        },
      }),
    ],
  });
  minting = await createServer({
    identity: mintingIdentity,
    port: 0,
    logger: silentLogger(),
    services: [
      implement(MintingServiceContract, {
        async mintTicket(req, ctx) {
          const ticketId = req.ticket!.ticketId;
          mintCalls.push({ ticketId, key: ctx.requestHeader.get("idempotency-key") });
          if (mintMode === "down") throw new ConnectError("solana unreachable", Code.Internal);
          const mintAddress = `FakeMint-${ticketId}`;
          // As the real minting-service does: record the NFT on the ticket (inherits this call's context).
          await ticketForMinting!.updateNft({ tenantId: req.tenantId, ticketId, nftMintAddress: mintAddress, isMinted: true });
          return { result: { ticketId, status: MintStatus.CONFIRMED, mintAddress, transactionSignature: `sig-${ticketId}` } };
        },
      }),
    ],
  });
});

afterAll(async () => {
  if (ticketForMinting) closeClient(ticketForMinting);
  await Promise.all([order?.stop(1000), minting?.stop(1000)]);
  pki?.cleanup();
});

describe("ticket-service payment outcomes", () => {
  let svc: ServiceHarness;
  let payment: TicketServiceClient;
  const logs = captureLogs();

  beforeAll(async () => {
    svc = await startService(pki, ticketModule, { env: downstreamEnv(), logger: logs.logger, now: () => new Date("2027-05-01T12:00:00Z") });
    await pointMintingAt(svc);
    payment = await svc.client("payment-service", createTicketServiceClient);
  });
  afterAll(async () => {
    await svc?.stop();
  });

  const succeeded = (orderId: string, paymentId: string, amount?: bigint, ticketQuantity = 0) => ({
    tenantId: ACME, orderId, paymentId, ticketQuantity, idempotencyKey: `payment-${orderId}-${paymentId}`,
    ...(amount !== undefined ? { amount: { amountMinor: amount, currency: "USD" } } : {}),
  });

  it("HandlePaymentSucceeded issues the order's tickets to its buyer and has each minted (key per ticket)", async () => {
    const res = await payment.handlePaymentSucceeded(succeeded("o-new", "pay-new", 9000n, 2), keyed(await svc.as(ACME), "payment-o-new-pay-new"));
    expect(res).toMatchObject({ orderId: "o-new", duplicate: false });
    expect(res.ticketIds).toHaveLength(2);
    const db = svc.service.runtime.db;
    expect(count(db, "tickets WHERE tenant_id = ? AND order_id = ?", ACME, "o-new")).toBe(2);
    expect(mintCalls.filter((c) => res.ticketIds.includes(c.ticketId)).map((c) => c.key).sort()).toEqual(res.ticketIds.map((id) => `mint-${id}`).sort());
    for (const id of res.ticketIds) {
      const full = await (await svc.client("scanning-service", createTicketServiceClient)).getTicketFull({ tenantId: ACME, ticketId: id }, await svc.as(ACME));
      expect(full.ticket).toMatchObject({ userId: "u-1", orderId: "o-new", status: TicketStatus.SOLD, isMinted: true, tokenId: `FakeMint-${id}`, mintTransactionId: `sig-${id}` });
      expect(full.ticket?.price).toMatchObject({ amountMinor: 4500n, currency: "USD" });
    }
    expect(logs.lines.some((l) => l.includes('"tickets issued"') && l.includes('"paymentId":"pay-new"'))).toBe(true);
  });

  it("the same payment again issues nothing: same key (dedupe) and another key (stored outcome) both answer the first tickets", async () => {
    const db = svc.service.runtime.db;
    const mintsBefore = mintCalls.length;
    const sameKey = await payment.handlePaymentSucceeded(succeeded("o-new", "pay-new", 9000n, 2), keyed(await svc.as(ACME), "payment-o-new-pay-new"));
    expect(sameKey.duplicate).toBe(false); // the stored response, verbatim
    const otherKey = await payment.handlePaymentSucceeded(succeeded("o-new", "pay-new", 9000n, 2), keyed(await svc.as(ACME), "outbox-retry-7"));
    expect(otherKey).toMatchObject({ orderId: "o-new", duplicate: true, ticketIds: sameKey.ticketIds });
    expect(count(db, "tickets WHERE tenant_id = ? AND order_id = ?", ACME, "o-new")).toBe(2);
    expect(count(db, "payment_outcomes WHERE tenant_id = ? AND order_id = ?", ACME, "o-new")).toBe(1);
    expect(mintCalls.length).toBe(mintsBefore); // minted already: nothing re-sent
    expect(await (await svc.client("order-service", createTicketServiceClient)).countOrderTickets({ tenantId: ACME, orderId: "o-new" }, await svc.as(ACME))).toMatchObject({ count: 2 });
  });

  it("confirms the order's reservation and issues only the rest", async () => {
    const db = svc.service.runtime.db;
    insertReserved(db, "res-1", "o-res", "u-2", "tt-vip");
    const res = await payment.handlePaymentSucceeded(succeeded("o-res", "pay-res"), keyed(await svc.as(ACME), "payment-o-res-pay-res"));
    expect(res.ticketIds[0]).toBe("res-1");
    expect(res.ticketIds).toHaveLength(2);
    expect(db.prepare("SELECT status, user_id, payment_id FROM tickets WHERE tenant_id = ? AND order_id = ? ORDER BY id").all(ACME, "o-res")).toEqual([
      { status: "sold", user_id: "u-2", payment_id: "pay-res" },
      { status: "sold", user_id: "u-2", payment_id: "pay-res" },
    ]);
    // VIP tickets do not change hands.
    const transfer = await callError((await svc.client("transfer-service", createTicketServiceClient)).transferTicket({ tenantId: ACME, ticketId: "res-1", toUserId: "u-1" }, await svc.as(ACME, "u-2")));
    expect([transfer.code, transfer.rawMessage]).toEqual([Code.FailedPrecondition, "ticket is not transferable"]);
  });

  it("refuses what must not issue tickets, writing nothing", async () => {
    const db = svc.service.runtime.db;
    const cases: [ReturnType<typeof succeeded>, Code, string][] = [
      [succeeded("o-cancelled", "pay-c"), Code.FailedPrecondition, "order is cancelled"],
      [succeeded("o-soldout", "pay-s"), Code.FailedPrecondition, "not enough tickets left"],
      [succeeded("o-amount", "pay-a", 1n), Code.FailedPrecondition, "amount paid does not match the order total"],
      [succeeded("o-amount", "pay-q", undefined, 5), Code.FailedPrecondition, "ticket quantity does not match the order"],
      [succeeded("o-new", "pay-second"), Code.FailedPrecondition, "order's tickets were issued for another payment"],
      [succeeded("o-missing", "pay-m"), Code.NotFound, "order not found"],
    ];
    for (const [req, code, message] of cases) {
      const err = await callError(payment.handlePaymentSucceeded(req, keyed(await svc.as(ACME), `k-${req.paymentId}`)));
      expect([err.code, err.rawMessage]).toEqual([code, message]);
      expect(count(db, "payment_outcomes WHERE tenant_id = ? AND payment_id = ?", ACME, req.paymentId)).toBe(0);
    }
    expect(count(db, "tickets WHERE tenant_id = ? AND order_id IN ('o-cancelled', 'o-soldout', 'o-amount')", ACME)).toBe(0);
    // order-service says another tenant's order does not exist.
    const other = await callError(payment.handlePaymentSucceeded({ ...succeeded("o-new", "pay-g"), tenantId: GLOBEX }, await svc.as(GLOBEX)));
    expect(other.code).toBe(Code.NotFound);
    const bad = await callError(payment.handlePaymentSucceeded({ ...succeeded("", "pay-x") }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["order_id"]);
    const denied = await callError((await svc.client("order-service", createTicketServiceClient)).handlePaymentSucceeded(succeeded("o-new", "pay-new"), await svc.as(ACME)));
    expect(denied.code).toBe(Code.PermissionDenied);
  });

  it("HandlePaymentFailed releases the order's reservation once; a repeat changes nothing", async () => {
    const db = svc.service.runtime.db;
    insertReserved(db, "t-r1", "o-r1", "u-2", "tt-vip");
    insertReserved(db, "t-r2", "o-r1", "u-2", "tt-vip");
    const req = { tenantId: ACME, orderId: "o-r1", paymentId: "pay-r1", reason: "card_declined", idempotencyKey: "payment-failed-o-r1" };
    const first = await payment.handlePaymentFailed(req, keyed(await svc.as(ACME), "payment-failed-o-r1"));
    expect(first).toEqual(expect.objectContaining({ orderId: "o-r1", reservationReleased: true, duplicate: false }));
    expect(db.prepare("SELECT id, status, cancel_reason FROM tickets WHERE tenant_id = ? AND order_id = ? ORDER BY id").all(ACME, "o-r1")).toEqual([
      { id: "t-r1", status: "cancelled", cancel_reason: "payment_failed" },
      { id: "t-r2", status: "cancelled", cancel_reason: "payment_failed" },
    ]);
    const again = await payment.handlePaymentFailed(req, keyed(await svc.as(ACME), "outbox-retry-r1"));
    expect(again).toMatchObject({ reservationReleased: true, duplicate: true });
    expect(count(db, "payment_outcomes WHERE tenant_id = ? AND order_id = ?", ACME, "o-r1")).toBe(1);
    const nothingHeld = await payment.handlePaymentFailed({ ...req, orderId: "o-none", paymentId: "pay-none" }, await svc.as(ACME));
    expect(nothingHeld).toMatchObject({ reservationReleased: false, duplicate: false });
  });

  it("a payment is either succeeded or failed, never both", async () => {
    const failedAfterSuccess = await callError(payment.handlePaymentFailed({ tenantId: ACME, orderId: "o-new", paymentId: "pay-new" }, await svc.as(ACME)));
    expect([failedAfterSuccess.code, failedAfterSuccess.rawMessage]).toEqual([Code.FailedPrecondition, "payment already succeeded"]);
    const successAfterFailure = await callError(payment.handlePaymentSucceeded(succeeded("o-r1", "pay-r1"), await svc.as(ACME)));
    expect([successAfterFailure.code, successAfterFailure.rawMessage]).toEqual([Code.FailedPrecondition, "payment was recorded as failed"]);
    const bad = await callError(payment.handlePaymentFailed({ tenantId: ACME, orderId: "o-r1", paymentId: "" }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["payment_id"]);
  });

  it("ProcessMint mints a paid order's unminted tickets (minted ones are reported, not re-minted); repeating mints nothing twice", async () => {
    const queue = await svc.client("queue-service", createTicketServiceClient);
    const before = mintCalls.length;
    const res = await queue.processMint({ tenantId: ACME, orderId: "o-1", eventId: "e-1", userId: "u-1" }, await svc.as(ACME));
    expect(res.results.map((r) => [r.ticketId, r.status, r.mintAddress])).toEqual([
      ["t-1", TicketMintStatus.MINTED, "Mint111111111111111111111111111111111111111"],
      ["t-2", TicketMintStatus.MINTED, "FakeMint-t-2"],
      ["t-3", TicketMintStatus.MINTED, "FakeMint-t-3"],
    ]);
    expect(mintCalls.slice(before).map((c) => c.key)).toEqual(["mint-t-2", "mint-t-3"]);
    const again = await queue.processMint({ tenantId: ACME, orderId: "o-1", ticketIds: ["t-2"] }, await svc.as(ACME));
    expect(again.results.map((r) => [r.ticketId, r.status, r.mintAddress])).toEqual([["t-2", TicketMintStatus.MINTED, "FakeMint-t-2"]]);
    expect(mintCalls.length).toBe(before + 2);
  });

  it("ProcessMint refuses an unpaid order, another buyer and a ticket outside the order", async () => {
    const queue = await svc.client("queue-service", createTicketServiceClient);
    const unpaid = await callError(queue.processMint({ tenantId: ACME, orderId: "o-pending" }, await svc.as(ACME)));
    expect([unpaid.code, unpaid.rawMessage]).toEqual([Code.FailedPrecondition, "order is not paid"]);
    const buyer = await callError(queue.processMint({ tenantId: ACME, orderId: "o-1", userId: "u-2" }, await svc.as(ACME)));
    expect([buyer.code, buyer.rawMessage]).toEqual([Code.FailedPrecondition, "user is not the order's buyer"]);
    const outside = await callError(queue.processMint({ tenantId: ACME, orderId: "o-1", ticketIds: ["res-1"] }, await svc.as(ACME)));
    expect(outside.code).toBe(Code.NotFound);
    const bad = await callError(queue.processMint({ tenantId: ACME, orderId: "" }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["order_id"]);
  });

  it("cancelled tickets of a paid order are reported, not minted", async () => {
    const db = svc.service.runtime.db;
    const paid = await payment.handlePaymentSucceeded(succeeded("o-amount", "pay-ok"), await svc.as(ACME));
    const cancelled = await payment.cancelTicketsBatch({ tenantId: ACME, ticketIds: paid.ticketIds, refundId: "re-ok" }, await svc.as(ACME));
    expect(cancelled.results.map((r) => r.outcome)).toEqual([CancelTicketOutcome.CANCELLED]);
    const res = await (await svc.client("queue-service", createTicketServiceClient)).processMint({ tenantId: ACME, orderId: "o-amount" }, await svc.as(ACME));
    expect(res.results.map((r) => [r.status, r.error])).toEqual([[TicketMintStatus.FAILED, "ticket is cancelled"]]);
    expect(count(db, "tickets WHERE tenant_id = ? AND order_id = ?", ACME, "o-amount")).toBe(1);
  });
});

describe("ticket-service HandlePaymentSucceeded across a restart", () => {
  it("a failed mint leaves the ticket issued; the same key after a restart issues nothing new and re-drives the mint", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tt-ticket-pay-"));
    const database = join(dir, "ticket.db");
    const logs = captureLogs();
    const req = { tenantId: ACME, orderId: "o-mintfail", paymentId: "pay-mf", amount: { amountMinor: 4500n, currency: "USD" }, ticketQuantity: 1, idempotencyKey: "payment-o-mintfail-pay-mf" };
    let svc: ServiceHarness | undefined = await startService(pki, ticketModule, { database, env: downstreamEnv(), logger: logs.logger });
    try {
      await pointMintingAt(svc);
      mintMode = "down";
      const first = await (await svc.client("payment-service", createTicketServiceClient)).handlePaymentSucceeded(req, keyed(await svc.as(ACME), "payment-o-mintfail-pay-mf"));
      expect(first).toMatchObject({ orderId: "o-mintfail", duplicate: false });
      expect(first.ticketIds).toHaveLength(1);
      const id = first.ticketIds[0]!;
      expect(svc.service.runtime.db.prepare("SELECT status, is_minted, token_id FROM tickets WHERE tenant_id = ? AND id = ?").get(ACME, id)).toEqual({
        status: "sold", is_minted: 0, token_id: null,
      });
      expect(logs.lines.some((l) => l.includes("ticket mint failed") && l.includes(id))).toBe(true);
      await svc.stop();
      svc = undefined;

      mintMode = "ok";
      svc = await startService(pki, ticketModule, { database, env: downstreamEnv(), logger: logs.logger });
      await pointMintingAt(svc);
      const again = await (await svc.client("payment-service", createTicketServiceClient)).handlePaymentSucceeded(req, keyed(await svc.as(ACME), "payment-o-mintfail-pay-mf"));
      expect(again).toMatchObject({ orderId: "o-mintfail", ticketIds: first.ticketIds, duplicate: true });
      const db = svc.service.runtime.db;
      expect(count(db, "tickets WHERE tenant_id = ? AND order_id = ?", ACME, "o-mintfail")).toBe(1);
      expect(count(db, "payment_outcomes WHERE tenant_id = ? AND payment_id = ?", ACME, "pay-mf")).toBe(1);
      expect(db.prepare("SELECT status, is_minted, token_id FROM tickets WHERE tenant_id = ? AND id = ?").get(ACME, id)).toEqual({
        status: "sold", is_minted: 1, token_id: `FakeMint-${id}`,
      });
      expect(mintCalls.filter((c) => c.ticketId === id).map((c) => c.key)).toEqual([`mint-${id}`, `mint-${id}`]);
    } finally {
      mintMode = "ok";
      await svc?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
