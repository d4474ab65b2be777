/**
 * ticket-service over mTLS through its generated client, as each method's
 * real caller: every read and state-change RPC, success and error paths,
 * tenant isolation (another tenant's ticket is NOT_FOUND), the state
 * machines (transfer, scan, NFT, cancel), validation field names, keyed
 * retries writing once, and a restart on a database file. The payment
 * methods (order/minting downstream) are in ticket-payments.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, type CallOptions } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { createTicketServiceClient, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { CancelTicketOutcome, TicketStatus, TransferStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";
import { ticketModule } from "../../services/ticket/index.ts";
import { newQrCredential } from "../../services/ticket/qr.ts";
import { createSqliteTicketStore, type TicketStore } from "../../services/ticket/store.ts";
import { transaction, type Database } from "../../services/shared/database.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

let pki: TestPki;
let svc: ServiceHarness;
/** The service's clock (GetTicketForValidation/ForRefund windows, transfer after the event). */
let clock = new Date("2027-05-01T12:00:00Z");
const clients = new Map<WorkloadName, TicketServiceClient>();

async function as(workload: WorkloadName): Promise<TicketServiceClient> {
  let c = clients.get(workload);
  if (!c) clients.set(workload, (c = await svc.client(workload, createTicketServiceClient)));
  return c;
}

function keyed(opts: CallOptions, key: string): CallOptions {
  return { ...opts, headers: { ...(opts.headers as Record<string, string>), "idempotency-key": key } };
}

function count(db: Database, sql: string, ...params: string[]): number {
  return (db.prepare(`SELECT COUNT(*) AS n FROM ${sql}`).get(...params) as { n: number }).n;
}

const stores = new WeakMap<Database, TicketStore>();

/** Test setup: a sold ticket of the given type, written straight to the store. */
function insertSold(db: Database, id: string, opts: { type?: string; event?: string; user?: string; order?: string; status?: "sold" | "reserved" } = {}): void {
  const at = "2026-11-01T00:00:00.000Z";
  let store = stores.get(db);
  if (!store) stores.set(db, (store = createSqliteTicketStore(db)));
  transaction(db, () =>
    store.insertTicket({
      tenantId: ACME, id, eventId: opts.event ?? "e-1", ticketTypeId: opts.type ?? "tt-ga", orderId: opts.order ?? "o-test", userId: opts.user ?? "u-1",
      status: opts.status ?? "sold", ticketNumber: `TKT-${id}`, priceMinor: 4500, currency: "USD", isTransferable: opts.type !== "tt-vip",
      ...newQrCredential(id), paymentId: "pay-test", purchasedAt: at, createdAt: at,
    }),
  );
}

beforeAll(async () => {
  pki = await createTestPki();
  svc = await startService(pki, ticketModule, { now: () => clock });
});

afterAll(async () => {
  await svc?.stop();
  pki?.cleanup();
});

describe("ticket-service reads", () => {
  it("GetTicketStatus: a sold, minted ticket can be refunded; a used one cannot", async () => {
    const payment = await as("payment-service");
    const t1 = await payment.getTicketStatus({ tenantId: ACME, ticketId: "t-1" }, await svc.as(ACME));
    expect(t1).toMatchObject({ ticketId: "t-1", status: TicketStatus.SOLD, userId: "u-1", nftMinted: true, isUsed: false, canRefund: true });
    const t3 = await payment.getTicketStatus({ tenantId: ACME, ticketId: "t-3" }, await svc.as(ACME));
    expect(t3).toMatchObject({ status: TicketStatus.USED, isUsed: true, canRefund: false });
    expect(t3.validatedAt).toBeDefined();
  });

  it("GetTicketStatus: another tenant's ticket is NOT_FOUND; a bad id is INVALID_ARGUMENT", async () => {
    const payment = await as("payment-service");
    expect((await callError(payment.getTicketStatus({ tenantId: GLOBEX, ticketId: "t-1" }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
    const bad = await callError(payment.getTicketStatus({ tenantId: ACME, ticketId: "" }, await svc.as(ACME)));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["ticket_id"]);
  });

  it("GetTicketFull: the ticket with its event, type description and QR payload", async () => {
    const scanning = await as("scanning-service");
    const res = await scanning.getTicketFull({ tenantId: ACME, ticketId: "t-2" }, await svc.as(ACME));
    expect(res.ticket).toMatchObject({ id: "t-2", ticketTypeName: "General Admission", price: { amountMinor: 4500n, currency: "USD" }, isTransferable: true });
    expect(res.event).toMatchObject({ id: "e-1", name: "Acme Summer Concert", venueId: "v-1", timezone: "America/New_York" });
    expect(res.ticketTypeDescription).toBe("General Admission entry");
    expect(res.qrCode).toMatch(/^TT1:t-2:/);
    expect((await callError(scanning.getTicketFull({ tenantId: GLOBEX, ticketId: "t-2" }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
  });

  it("ListTicketsByEvent streams the tenant's tickets of the event, filtered by status", async () => {
    const scanning = await as("scanning-service");
    const ids = async (tenantId: string, eventId: string, status = TicketStatus.UNSPECIFIED) => {
      const out: string[] = [];
      for await (const r of scanning.listTicketsByEvent({ tenantId, eventId, status }, await svc.as(tenantId))) out.push(r.ticket!.id);
      return out;
    };
    expect(await ids(ACME, "e-1")).toEqual(["t-1", "t-2", "t-3"]);
    expect(await ids(ACME, "e-1", TicketStatus.USED)).toEqual(["t-3"]);
    expect(await ids(GLOBEX, "e-1")).toEqual([]);
    expect(await ids(GLOBEX, "e-g1")).toEqual(["t-g1"]);
    const bad = await callError(ids(ACME, "e-1", 99 as TicketStatus));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["status"]);
  });

  it("ListTicketsByEvent pages through a large event: every ticket once, in order", async () => {
    const db = svc.service.runtime.db;
    const n = 1234;
    transaction(db, () => {
      for (let i = 0; i < n; i++) insertSold(db, `big-${String(i).padStart(5, "0")}`, { event: "e-big" });
    });
    const scanning = await as("scanning-service");
    const seen: string[] = [];
    for await (const r of scanning.listTicketsByEvent({ tenantId: ACME, eventId: "e-big" }, await svc.as(ACME))) seen.push(r.ticket!.id);
    expect(seen.length).toBe(n);
    expect(new Set(seen).size).toBe(n);
    expect(seen).toEqual([...seen].sort());
  });

  it("GetTicketByToken and BatchGetTicketsByToken find minted tickets, per tenant", async () => {
    const indexer = await as("blockchain-indexer");
    const one = await indexer.getTicketByToken({ tenantId: ACME, tokenId: "Mint111111111111111111111111111111111111111" }, await svc.as(ACME));
    expect(one.ticket).toMatchObject({ id: "t-1", tokenId: "Mint111111111111111111111111111111111111111", isMinted: true });
    expect((await callError(indexer.getTicketByToken({ tenantId: GLOBEX, tokenId: "Mint111111111111111111111111111111111111111" }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);

    const batch = await indexer.batchGetTicketsByToken({ tenantId: ACME, tokenIds: ["Mint111111111111111111111111111111111111111", "no-such-mint"] }, await svc.as(ACME));
    expect(batch.tickets.map((t) => t.id)).toEqual(["t-1"]);
    expect(batch.notFoundTokenIds).toEqual(["no-such-mint"]);
    const tooMany = await callError(indexer.batchGetTicketsByToken({ tenantId: ACME, tokenIds: Array.from({ length: 101 }, (_, i) => `m${i}`) }, await svc.as(ACME)));
    expect(tooMany.code).toBe(Code.InvalidArgument);
    expect(violatedFields(tooMany)).toEqual(["token_ids"]);
  });

  it("CountOrderTickets counts issued tickets (a reservation is not issued)", async () => {
    insertSold(svc.service.runtime.db, "t-r1", { type: "tt-vip", order: "o-r1", user: "u-2", status: "reserved" });
    const order = await as("order-service");
    expect(await order.countOrderTickets({ tenantId: ACME, orderId: "o-1" }, await svc.as(ACME))).toMatchObject({ orderId: "o-1", count: 3, hasTickets: true });
    expect(await order.countOrderTickets({ tenantId: ACME, orderId: "o-r1" }, await svc.as(ACME))).toMatchObject({ count: 0, hasTickets: false });
    expect(await order.countOrderTickets({ tenantId: GLOBEX, orderId: "o-1" }, await svc.as(GLOBEX))).toMatchObject({ count: 0 });
    const bad = await callError(order.countOrderTickets({ tenantId: ACME, orderId: "bad id!" }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["order_id"]);
  });

  it("CalculatePrice prices issued tickets and ticket types (one id per ticket)", async () => {
    const order = await as("order-service");
    const tickets = await order.calculatePrice({ tenantId: ACME, ticketIds: ["t-1", "t-2"] }, await svc.as(ACME));
    expect(tickets).toMatchObject({ total: { amountMinor: 9000n, currency: "USD" }, ticketCount: 2 });
    const types = await order.calculatePrice({ tenantId: ACME, ticketIds: ["tt-ga", "tt-ga", "tt-vip"] }, await svc.as(ACME));
    expect(types.total).toMatchObject({ amountMinor: 4500n * 2n + 15000n, currency: "USD" });
    expect(types.priceBreakdown.map((l) => [l.ticketId, l.ticketTypeName, l.price?.amountMinor])).toEqual([
      ["tt-ga", "General Admission", 4500n],
      ["tt-ga", "General Admission", 4500n],
      ["tt-vip", "VIP", 15000n],
    ]);
    expect((await callError(order.calculatePrice({ tenantId: GLOBEX, ticketIds: ["tt-ga"] }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
    const empty = await callError(order.calculatePrice({ tenantId: ACME, ticketIds: [] }, await svc.as(ACME)));
    expect(violatedFields(empty)).toEqual(["ticket_ids"]);
  });

  it("GetTicketForValidation: entry validity from the ticket and the event window (injected clock)", async () => {
    const scanning = await as("scanning-service");
    const sold = await scanning.getTicketForValidation({ tenantId: ACME, ticketId: "t-2" }, await svc.as(ACME));
    expect(sold.validity).toMatchObject({ isValid: true, isUsed: false, isExpired: false, isTooEarly: true });
    expect(sold.qrHmacSecret.length).toBeGreaterThan(20);
    expect(sold.event?.id).toBe("e-1");
    const used = await scanning.getTicketForValidation({ tenantId: ACME, ticketId: "t-3" }, await svc.as(ACME));
    expect(used.validity).toMatchObject({ isValid: false, isUsed: true });
    expect(used.scanCount).toBe(1);
    const saved = clock;
    try {
      clock = new Date("2027-06-01T17:00:00Z"); // 2 h before doors
      expect((await scanning.getTicketForValidation({ tenantId: ACME, ticketId: "t-2" }, await svc.as(ACME))).validity?.isTooEarly).toBe(false);
      clock = new Date("2027-06-02T00:00:00Z"); // after the end
      expect((await scanning.getTicketForValidation({ tenantId: ACME, ticketId: "t-2" }, await svc.as(ACME))).validity?.isExpired).toBe(true);
    } finally {
      clock = saved;
    }
    expect((await callError(scanning.getTicketForValidation({ tenantId: GLOBEX, ticketId: "t-2" }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
  });

  it("GetTicketForRefund: eligibility with reasons, venue refund policy, and the refund window", async () => {
    const payment = await as("payment-service");
    const ok = await payment.getTicketForRefund({ tenantId: ACME, ticketId: "t-1" }, await svc.as(ACME));
    expect(ok.refundEligibility).toMatchObject({ canRefund: true, reasons: [] });
    expect(ok.venue).toMatchObject({ id: "v-1", name: "Acme Arena", refundPolicyHours: 24 });
    const used = await payment.getTicketForRefund({ tenantId: ACME, ticketId: "t-3" }, await svc.as(ACME));
    expect(used.refundEligibility).toMatchObject({ canRefund: false, reasons: ["Ticket has been used"] });
    const saved = clock;
    try {
      clock = new Date("2027-05-31T20:00:00Z"); // 23 h before the start: inside the 24 h policy
      const late = await payment.getTicketForRefund({ tenantId: ACME, ticketId: "t-1" }, await svc.as(ACME));
      expect(late.refundEligibility).toMatchObject({ canRefund: false, reasons: ["Refund window has closed"] });
    } finally {
      clock = saved;
    }
    expect((await callError(payment.getTicketForRefund({ tenantId: GLOBEX, ticketId: "t-1" }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
  });

  it("GetEventTicketStats counts an event's tickets by state; an event with none counts zero", async () => {
    const events = await as("event-service");
    const s = await events.getEventTicketStats({ tenantId: GLOBEX, eventId: "e-g1" }, await svc.as(GLOBEX));
    expect(s).toMatchObject({ eventId: "e-g1", totalTickets: 1, soldTickets: 1, usedTickets: 0, validatedTickets: 0, cancelledTickets: 0 });
    expect(s.lastValidationAt).toBeUndefined();
    const none = await events.getEventTicketStats({ tenantId: GLOBEX, eventId: "e-1" }, await svc.as(GLOBEX));
    expect(none).toMatchObject({ totalTickets: 0, soldTickets: 0 });
    const bad = await callError(events.getEventTicketStats({ tenantId: ACME, eventId: "" }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["event_id"]);
  });

  it("a caller outside a method's access rule is PERMISSION_DENIED", async () => {
    const order = await as("order-service");
    expect((await callError(order.getTicketStatus({ tenantId: ACME, ticketId: "t-1" }, await svc.as(ACME)))).code).toBe(Code.PermissionDenied);
  });
});

describe("ticket-service TransferTicket", () => {
  it("moves the ticket to the new owner and records the transfer; the same key returns the first result and writes once", async () => {
    const transfer = await as("transfer-service");
    const db = svc.service.runtime.db;
    const opts = keyed(await svc.as(ACME, "u-1"), "transfer-t-2-1");
    const first = await transfer.transferTicket({ tenantId: ACME, ticketId: "t-2", toUserId: "u-2", reason: "gift" }, opts);
    expect(first.ticket).toMatchObject({ id: "t-2", userId: "u-2", status: TicketStatus.TRANSFERRED, transferCount: 1 });
    expect(first.transfer).toMatchObject({ ticketId: "t-2", fromUserId: "u-1", toUserId: "u-2", status: TransferStatus.COMPLETED, reason: "gift" });
    const again = await transfer.transferTicket({ tenantId: ACME, ticketId: "t-2", toUserId: "u-2", reason: "gift" }, opts);
    expect(again).toEqual(first);
    expect(count(db, "ticket_transfers WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-2")).toBe(1);
    const status = await (await as("payment-service")).getTicketStatus({ tenantId: ACME, ticketId: "t-2" }, await svc.as(ACME));
    expect(status).toMatchObject({ userId: "u-2", hasBeenTransferred: true, canRefund: false });
  });

  it("the new owner may pass it on; the old owner no longer may (PERMISSION_DENIED)", async () => {
    const transfer = await as("transfer-service");
    const denied = await callError(transfer.transferTicket({ tenantId: ACME, ticketId: "t-2", toUserId: "admin-1" }, await svc.as(ACME, "u-1")));
    expect(denied.code).toBe(Code.PermissionDenied);
    const res = await transfer.transferTicket({ tenantId: ACME, ticketId: "t-2", toUserId: "u-1" }, await svc.as(ACME, "u-2"));
    expect(res.ticket).toMatchObject({ userId: "u-1", transferCount: 2 });
  });

  it("refuses used, reserved and non-transferable tickets, a self-transfer and a transfer after the event (FAILED_PRECONDITION)", async () => {
    const transfer = await as("transfer-service");
    insertSold(svc.service.runtime.db, "vip-1", { type: "tt-vip" });
    const cases: [string, string, string][] = [
      ["t-3", "u-1", "ticket already used"],
      ["t-r1", "u-2", "ticket has not been paid"],
      ["vip-1", "u-1", "ticket is not transferable"],
    ];
    for (const [ticketId, owner, message] of cases) {
      const err = await callError(transfer.transferTicket({ tenantId: ACME, ticketId, toUserId: "admin-1" }, await svc.as(ACME, owner)));
      expect([err.code, err.rawMessage]).toEqual([Code.FailedPrecondition, message]);
    }
    const self = await callError(transfer.transferTicket({ tenantId: ACME, ticketId: "t-1", toUserId: "u-1" }, await svc.as(ACME, "u-1")));
    expect(self.rawMessage).toBe("ticket already belongs to this user");
    const saved = clock;
    try {
      clock = new Date("2027-06-02T00:00:00Z");
      const late = await callError(transfer.transferTicket({ tenantId: ACME, ticketId: "t-1", toUserId: "u-2" }, await svc.as(ACME, "u-1")));
      expect([late.code, late.rawMessage]).toEqual([Code.FailedPrecondition, "event has ended"]);
    } finally {
      clock = saved;
    }
    expect(count(svc.service.runtime.db, "ticket_transfers WHERE tenant_id = ? AND ticket_id IN ('t-3', 't-r1', 'vip-1', 't-1')", ACME)).toBe(0);
  });

  it("another tenant's ticket is NOT_FOUND; a missing recipient is INVALID_ARGUMENT", async () => {
    const transfer = await as("transfer-service");
    expect((await callError(transfer.transferTicket({ tenantId: GLOBEX, ticketId: "t-1", toUserId: "u-g1" }, await svc.as(GLOBEX, "u-1")))).code).toBe(Code.NotFound);
    const bad = await callError(transfer.transferTicket({ tenantId: ACME, ticketId: "t-1", toUserId: "" }, await svc.as(ACME, "u-1")));
    expect(violatedFields(bad)).toEqual(["to_user_id"]);
  });
});

describe("ticket-service RecordScan", () => {
  it("an entry scan uses the ticket; the same scan retried counts once; a second entry is refused as a duplicate", async () => {
    const scanning = await as("scanning-service");
    const db = svc.service.runtime.db;
    const scan = { tenantId: ACME, ticketId: "t-1", deviceId: "gate-1", venueId: "v-1", scanType: "entry" };
    const opts = keyed(await svc.as(ACME), "scan-gate-1-0001");
    const first = await scanning.recordScan(scan, opts);
    expect(first).toMatchObject({ ticketId: "t-1", scanCount: 1, status: TicketStatus.USED });
    expect(timestampDate(first.lastScannedAt!).toISOString()).toBe(clock.toISOString());
    expect(await scanning.recordScan(scan, opts)).toEqual(first);
    expect(count(db, "ticket_scans WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-1")).toBe(1);

    const duplicate = await callError(scanning.recordScan(scan, keyed(await svc.as(ACME), "scan-gate-2-0001")));
    expect([duplicate.code, duplicate.rawMessage]).toEqual([Code.FailedPrecondition, "ticket already used"]);
    const exit = await scanning.recordScan({ ...scan, scanType: "exit" }, keyed(await svc.as(ACME), "scan-gate-1-0002"));
    expect(exit).toMatchObject({ scanCount: 2, status: TicketStatus.USED });
    expect(count(db, "ticket_scans WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-1")).toBe(2);

    const stats = await (await as("event-service")).getEventTicketStats({ tenantId: ACME, eventId: "e-1" }, await svc.as(ACME));
    expect(stats).toMatchObject({ usedTickets: 2, validatedTickets: 2 });
    expect(stats.lastValidationAt).toBeDefined();
  });

  it("refuses a ticket at another venue, a reserved ticket and an exit before entry; validates fields; NOT_FOUND across tenants", async () => {
    const scanning = await as("scanning-service");
    const base = { tenantId: ACME, deviceId: "gate-1", venueId: "v-1", scanType: "entry" };
    const wrongVenue = await callError(scanning.recordScan({ ...base, ticketId: "vip-1", venueId: "v-2" }, await svc.as(ACME)));
    expect([wrongVenue.code, wrongVenue.rawMessage]).toEqual([Code.FailedPrecondition, "ticket is not valid at this venue"]);
    const reserved = await callError(scanning.recordScan({ ...base, ticketId: "t-r1" }, await svc.as(ACME)));
    expect(reserved.rawMessage).toBe("ticket has not been paid");
    const exitFirst = await callError(scanning.recordScan({ ...base, ticketId: "vip-1", scanType: "exit" }, await svc.as(ACME)));
    expect(exitFirst.rawMessage).toBe("ticket has not been scanned in");
    const bad = await callError(scanning.recordScan({ ...base, ticketId: "vip-1", scanType: "teleport", deviceId: "" }, await svc.as(ACME)));
    expect(violatedFields(bad)).toEqual(["device_id", "scan_type"]);
    expect((await callError(scanning.recordScan({ ...base, tenantId: GLOBEX, ticketId: "vip-1" }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
    expect(count(svc.service.runtime.db, "ticket_scans WHERE tenant_id = ? AND ticket_id IN ('vip-1', 't-r1')", ACME)).toBe(0);
  });
});

describe("ticket-service UpdateNft", () => {
  it("sets the NFT fields; the same mint again changes nothing; another mint for a minted ticket is refused", async () => {
    const minting = await as("minting-service");
    const db = svc.service.runtime.db;
    const opts = await svc.as(GLOBEX);
    const set = { tenantId: GLOBEX, ticketId: "t-g1", nftMintAddress: "MintG1", walletAddress: "WalletG1", metadataUri: "https://meta.test/t-g1.json" };
    const first = await minting.updateNft(set, opts);
    expect(first).toMatchObject({ ticketId: "t-g1", nftMintAddress: "MintG1", walletAddress: "WalletG1", metadataUri: "https://meta.test/t-g1.json" });
    expect(first.mintedAt).toBeDefined();
    const updatedAt = (db.prepare("SELECT updated_at FROM tickets WHERE tenant_id = ? AND id = ?").get(GLOBEX, "t-g1") as { updated_at: string }).updated_at;

    const saved = clock;
    try {
      clock = new Date(clock.getTime() + 60_000);
      expect(await minting.updateNft(set, opts)).toEqual(first);
    } finally {
      clock = saved;
    }
    expect((db.prepare("SELECT updated_at FROM tickets WHERE tenant_id = ? AND id = ?").get(GLOBEX, "t-g1") as { updated_at: string }).updated_at).toBe(updatedAt);

    const other = await callError(minting.updateNft({ ...set, nftMintAddress: "MintOther" }, opts));
    expect([other.code, other.rawMessage]).toEqual([Code.FailedPrecondition, "ticket already minted with another mint address"]);
    const found = await (await as("blockchain-indexer")).getTicketByToken({ tenantId: GLOBEX, tokenId: "MintG1" }, opts);
    expect(found.ticket).toMatchObject({ id: "t-g1", isMinted: true, walletAddress: "WalletG1" });

    // A later NFT transfer: only that field changes, and the ticket is no longer refundable.
    const moved = await minting.updateNft({ tenantId: GLOBEX, ticketId: "t-g1", nftTransferSignature: "sig-transfer-1" }, opts);
    expect(moved).toMatchObject({ nftMintAddress: "MintG1", lastTransferSignature: "sig-transfer-1" });
    const status = await (await as("payment-service")).getTicketStatus({ tenantId: GLOBEX, ticketId: "t-g1" }, opts);
    expect(status).toMatchObject({ nftMinted: true, nftTransferred: true, canRefund: false });
  });

  it("a mint address another ticket holds is refused; an empty update is INVALID_ARGUMENT; NOT_FOUND across tenants", async () => {
    const minting = await as("minting-service");
    const taken = await callError(minting.updateNft({ tenantId: ACME, ticketId: "vip-1", nftMintAddress: "Mint111111111111111111111111111111111111111" }, await svc.as(ACME)));
    expect([taken.code, taken.rawMessage]).toEqual([Code.FailedPrecondition, "mint address belongs to another ticket"]);
    const empty = await callError(minting.updateNft({ tenantId: ACME, ticketId: "vip-1" }, await svc.as(ACME)));
    expect(empty.code).toBe(Code.InvalidArgument);
    expect(violatedFields(empty)).toEqual(["nft_mint_address"]);
    expect((await callError(minting.updateNft({ tenantId: GLOBEX, ticketId: "vip-1", isMinted: true }, await svc.as(GLOBEX)))).code).toBe(Code.NotFound);
  });
});

describe("ticket-service CancelTicketsBatch", () => {
  it("cancels sold tickets, skips used/transferred ones, reports missing ones; repeating it changes nothing", async () => {
    const payment = await as("payment-service");
    const db = svc.service.runtime.db;
    insertSold(db, "refund-1");
    insertSold(db, "refund-2");
    const req = { tenantId: ACME, ticketIds: ["refund-1", "t-3", "no-such-ticket", "refund-2", "t-2"], reason: "customer refund", refundId: "re-1" };
    const outcomes = (r: Awaited<ReturnType<typeof payment.cancelTicketsBatch>>) => r.results.map((x) => [x.ticketId, x.outcome, x.error]);
    const expected = [
      ["refund-1", CancelTicketOutcome.CANCELLED, ""],
      ["t-3", CancelTicketOutcome.SKIPPED, ""],
      ["no-such-ticket", CancelTicketOutcome.FAILED, "ticket not found"],
      ["refund-2", CancelTicketOutcome.CANCELLED, ""],
      ["t-2", CancelTicketOutcome.SKIPPED, ""],
    ];
    expect(outcomes(await payment.cancelTicketsBatch(req, await svc.as(ACME)))).toEqual(expected);
    const stamp = db.prepare("SELECT cancelled_at FROM tickets WHERE tenant_id = ? AND id = ?");
    const cancelledAt = stamp.get(ACME, "refund-1");
    const saved = clock;
    try {
      clock = new Date(clock.getTime() + 60_000);
      expect(outcomes(await payment.cancelTicketsBatch(req, await svc.as(ACME)))).toEqual(expected);
    } finally {
      clock = saved;
    }
    expect(stamp.get(ACME, "refund-1")).toEqual(cancelledAt);
    expect(db.prepare("SELECT status, refund_id, cancel_reason FROM tickets WHERE tenant_id = ? AND id = ?").get(ACME, "refund-2")).toEqual({
      status: "cancelled", refund_id: "re-1", cancel_reason: "customer refund",
    });
  });

  it("a ticket refunded once is not refunded by another refund; a refunded ticket cannot be transferred or refunded", async () => {
    const payment = await as("payment-service");
    const second = await payment.cancelTicketsBatch({ tenantId: ACME, ticketIds: ["refund-1"], refundId: "re-2" }, await svc.as(ACME));
    expect(second.results.map((r) => [r.outcome, r.error])).toEqual([[CancelTicketOutcome.FAILED, "ticket already refunded"]]);
    const forRefund = await payment.getTicketForRefund({ tenantId: ACME, ticketId: "refund-1" }, await svc.as(ACME));
    expect(forRefund.refundEligibility).toMatchObject({ canRefund: false, reasons: ["Ticket has already been refunded"] });
    const transfer = await callError((await as("transfer-service")).transferTicket({ tenantId: ACME, ticketId: "refund-1", toUserId: "u-2" }, await svc.as(ACME, "u-1")));
    expect([transfer.code, transfer.rawMessage]).toEqual([Code.FailedPrecondition, "ticket has been refunded"]);
  });

  it("another tenant's tickets are not found; an empty batch is INVALID_ARGUMENT", async () => {
    const payment = await as("payment-service");
    const other = await payment.cancelTicketsBatch({ tenantId: GLOBEX, ticketIds: ["t-1"], refundId: "re-g" }, await svc.as(GLOBEX));
    expect(other.results.map((r) => r.outcome)).toEqual([CancelTicketOutcome.FAILED]);
    expect(svc.service.runtime.db.prepare("SELECT status FROM tickets WHERE tenant_id = ? AND id = ?").get(ACME, "t-1")).toEqual({ status: "used" });
    const empty = await callError(payment.cancelTicketsBatch({ tenantId: ACME, ticketIds: [] }, await svc.as(ACME)));
    expect(violatedFields(empty)).toEqual(["ticket_ids"]);
  });
});

describe("ticket-service keyed writes survive a restart", () => {
  it("TransferTicket and RecordScan retried with their keys after a restart answer the first result and write once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tt-ticket-db-"));
    const database = join(dir, "ticket.db");
    const now = () => new Date("2027-05-01T12:00:00Z");
    let first: ServiceHarness | undefined = await startService(pki, ticketModule, { database, now });
    let second: ServiceHarness | undefined;
    try {
      const transferReq = { tenantId: ACME, ticketId: "t-2", toUserId: "u-2" };
      const scanReq = { tenantId: ACME, ticketId: "t-1", deviceId: "gate-9", venueId: "v-1", scanType: "entry" };
      const t1 = await (await first.client("transfer-service", createTicketServiceClient)).transferTicket(transferReq, keyed(await first.as(ACME, "u-1"), "restart-transfer-1"));
      const s1 = await (await first.client("scanning-service", createTicketServiceClient)).recordScan(scanReq, keyed(await first.as(ACME), "restart-scan-1"));
      await first.stop();
      first = undefined;

      second = await startService(pki, ticketModule, { database, now });
      // The first call's context user (u-1) no longer owns t-2: only the stored key can answer this retry.
      const t2 = await (await second.client("transfer-service", createTicketServiceClient)).transferTicket(transferReq, keyed(await second.as(ACME, "u-1"), "restart-transfer-1"));
      const s2 = await (await second.client("scanning-service", createTicketServiceClient)).recordScan(scanReq, keyed(await second.as(ACME), "restart-scan-1"));
      expect(t2).toEqual(t1);
      expect(s2).toEqual(s1);
      const db = second.service.runtime.db;
      expect(count(db, "ticket_transfers WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-2")).toBe(1);
      expect(count(db, "ticket_scans WHERE tenant_id = ? AND ticket_id = ?", ACME, "t-1")).toBe(1);
      expect(db.prepare("SELECT transfer_count, scan_count FROM tickets WHERE tenant_id = ? AND id IN ('t-2', 't-1') ORDER BY id").all(ACME)).toEqual([
        { transfer_count: 0, scan_count: 1 },
        { transfer_count: 1, scan_count: 0 },
      ]);
      // The same key for a different transfer is refused, not applied.
      const other = await callError((await second.client("transfer-service", createTicketServiceClient)).transferTicket({ ...transferReq, toUserId: "admin-1" }, keyed(await second.as(ACME, "u-2"), "restart-transfer-1")));
      expect(other.code).toBe(Code.FailedPrecondition);
    } finally {
      await first?.stop();
      await second?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
