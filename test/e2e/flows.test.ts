/**
 * The platform's flows end to end, as `tt-rpc demo` runs them, against the
 * eight services as real processes (tt-rpc serve) with real certificates:
 * every hop over mTLS with its own call token, read back from the services'
 * logs. Failure variants: a declined card, venue-service stopped (stale
 * venue, breaker opens), and ticket-service SIGKILLed in the middle of a
 * purchase and restarted: no acknowledged write lost, no double effect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { serviceContracts } from "../../src/contracts/gen/contracts.ts";
import { runDemo } from "../../src/devtools/cli/demo/command.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { envPrefix } from "../../src/runtime/resilience/options.ts";
import { createOrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { OrderStatus } from "../../src/contracts/gen/tickettoken/order/v1/order_service_pb.ts";
import { createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { ACME } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { serviceProcesses, type ServiceProcesses } from "../support/service-processes.ts";

const SERVICES = serviceContracts.map((c) => c.name as string);
/**
 * Breakers probe again after 2 s instead of 30 s, in every process and in this
 * test's clients: after the SIGKILL, the breakers the outage opened (the
 * saga's, payment-service's towards ticket-service) close again within the
 * test's patience. Everything else runs with the defaults.
 */
const QUICK_BREAKERS = Object.fromEntries(SERVICES.map((s) => [`${envPrefix(s)}BREAKER_HALF_OPEN_AFTER_MS`, "2000"]));

let pki: TestPki;
let dataDir: string;
let mesh: ServiceProcesses;

beforeAll(async () => {
  pki = await createTestPki();
  dataDir = mkdtempSync(join(tmpdir(), "tt-flows-"));
  mesh = await serviceProcesses({ certs: pki.dir, dataDir, services: SERVICES, env: QUICK_BREAKERS });
  // The fake chain takes 0.8 s to confirm a mint (an order's mints run in parallel, within the 2 s attempt timeout):
  // it keeps a purchase in flight long enough for the kill test to interrupt it.
  await Promise.all(SERVICES.map((s) => mesh.start(s, s === "minting-service" ? { MINTING_FAKE_CONFIRMATION_MS: "800" } : {})));
}, 120_000);

afterAll(async () => {
  await mesh?.stopAll();
  pki?.cleanup();
  if (dataDir && !process.env.KEEP_DATA) rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

/** `tt-rpc demo <args>` in-process, as a user runs it against the running services. */
async function demo(...args: string[]): Promise<{ code: number; out: string; hops: string[] }> {
  const lines: string[] = [];
  const io = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
  const code = await runDemo([...args, "--certs", pki.dir, "--data", dataDir], io, { ...mesh.env });
  const out = lines.join("\n");
  const at = lines.findIndex((l) => l.startsWith("hops"));
  return { code, out, hops: at < 0 ? [] : lines.slice(at + 1, -1).map((l) => l.trim().replace(/\s+/g, " ")) };
}

/** "caller -> service Service/Method" of each hop, status last. */
const edge = (hop: string) => hop.split(" tenant ")[0]!;

/** Retries a call that fails UNAVAILABLE (a channel reconnecting, a breaker not yet probing) every 500 ms, for at most 20 s. */
async function eventually<T>(call: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (i >= 40 || ConnectError.from(err).code !== Code.Unavailable) throw err;
      await sleep(500);
    }
  }
}

function db(service: string): DatabaseSync {
  return new DatabaseSync(join(dataDir, `${service}.db`), { readOnly: true });
}

function count(service: string, sql: string, ...params: string[]): number {
  const d = db(service);
  try {
    return Number((d.prepare(sql).get(...params) as { n: number }).n);
  } finally {
    d.close();
  }
}

describe("flows over the running services", () => {
  it("purchase: order -> payment intent -> complete -> ticket payment-succeeded -> minting -> ticket update-nft", async () => {
    const r = await demo("purchase");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/order \S+: PAID/);
    expect(r.out.match(/ticket t-\S+: SOLD, NFT \S+/g)).toHaveLength(2);
    const edges = r.hops.map(edge);
    expect(edges.slice(0, 6)).toEqual([
      "ticket-service -> order-service OrderService/CreateOrder",
      "order-service -> ticket-service TicketService/CalculatePrice",
      "order-service -> payment-service PaymentService/CreatePaymentIntent",
      "order-service -> payment-service PaymentService/CompletePayment",
      "payment-service -> ticket-service TicketService/HandlePaymentSucceeded",
      "ticket-service -> order-service OrderService/GetOrder",
    ]);
    expect(edges.filter((e) => e === "ticket-service -> minting-service MintingService/MintTicket")).toHaveLength(2);
    expect(edges.filter((e) => e === "minting-service -> ticket-service TicketService/UpdateNft")).toHaveLength(2);
    // Every hop is a verified caller, the Acme tenant, OK, attempt 1.
    for (const hop of r.hops) expect(hop).toMatch(/ tenant 7c9e6679 OK [\d.]+ ms attempt 1$/);
  });

  it("purchase with a declined card: the order is cancelled, nothing is issued or minted", async () => {
    const r = await demo("purchase", "--decline");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/order \S+: CANCELLED/);
    const edges = r.hops.map(edge);
    expect(edges).toContain("payment-service -> ticket-service TicketService/HandlePaymentFailed");
    expect(edges).not.toContain("payment-service -> ticket-service TicketService/HandlePaymentSucceeded");
    expect(edges.some((e) => e.includes("MintTicket"))).toBe(false);
  });

  it("refund: payment -> ticket for-refund -> cancel-batch; the tickets end cancelled, a second refund is refused", async () => {
    const r = await demo("refund");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/refund \S+: SUCCEEDED, 90\.00 USD for 2 ticket\(s\)/);
    expect(r.out.match(/ticket t-\S+: CANCELLED/g)).toHaveLength(2);
    const edges = r.hops.map(edge);
    const from = edges.indexOf("order-service -> payment-service PaymentService/CreateRefund");
    expect(from).toBeGreaterThan(0);
    expect(edges.slice(from + 1, from + 4)).toEqual([
      "payment-service -> ticket-service TicketService/GetTicketForRefund",
      "payment-service -> ticket-service TicketService/GetTicketForRefund",
      "payment-service -> ticket-service TicketService/CancelTicketsBatch",
    ]);
    // The same order again: everything is refunded already, the refund never exceeds the payment.
    const order = /order (\S+): PAID/.exec(r.out)![1]!;
    const again = await demo("refund", "--order", order);
    expect(again.code).toBe(1);
    expect(again.out).toMatch(/CreateRefund refused: FailedPrecondition/);
  });

  it("scan: ticket for-validation -> record-scan -> event scan-stats; a second scan is refused entry", async () => {
    const r = await demo("scan");
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/scan recorded: USED, scan count 1/);
    const edges = r.hops.map(edge);
    const from = edges.indexOf("scanning-service -> ticket-service TicketService/GetTicketForValidation");
    expect(edges.slice(from, from + 4)).toEqual([
      "scanning-service -> ticket-service TicketService/GetTicketForValidation",
      "scanning-service -> ticket-service TicketService/RecordScan",
      "scanning-service -> event-service EventService/GetEventScanStats",
      "event-service -> ticket-service TicketService/GetEventTicketStats",
    ]);
    const ticket = /ticket (t-\S+): valid true/.exec(r.out)![1]!;
    const second = await demo("scan", "--ticket", ticket);
    expect(second.out).toMatch(/valid false, used true, scans 1/);
    expect(second.out).toMatch(/entry refused/);
    expect(second.hops.map(edge)).not.toContain("scanning-service -> ticket-service TicketService/RecordScan");
  });

  it("cross-tenant: denied, and the server log says why", async () => {
    const r = await demo("cross-tenant");
    expect(r.code, r.out).toBe(0);
    expect(r.hops[0]).toMatch(/^payment-service -> ticket-service TicketService\/GetTicketStatus tenant 3f2504e0 PERMISSION_DENIED .* server log: request tenantId "7c9e6679-[0-9a-f-]+" does not match the context tenant$/);
    expect(r.hops[1]).toMatch(/GetTicketStatus tenant 3f2504e0 NOT_FOUND [\d.]+ ms attempt 1$/);
  });

  it("event-create: event -> venue; with venue-service stopped the venue is served stale, flagged, and the breaker opens", async () => {
    const up = await demo("event-create");
    expect(up.code, up.out).toBe(0);
    expect(up.hops.map(edge).slice(0, 3)).toEqual([
      "api-gateway -> event-service EventService/CreateEvent",
      "event-service -> venue-service VenueService/ValidateVenueAccess",
      "event-service -> venue-service VenueService/GetVenue",
    ]);
    expect(up.out).not.toMatch(/flagged stale/);

    await mesh.stop("venue-service");
    try {
      const down = await demo("event-create", "--repeat", "6");
      expect(down.code, down.out).toBe(0);
      expect(down.out.match(/created at venue v-1 \(venue-service unreachable: venue checked against a cached copy, flagged stale\)/g)).toHaveLength(6);
      expect(down.out).toMatch(/breaker for venue-service: OPEN/);
      expect(down.hops.join("\n")).toMatch(/event-service -> venue-service \S+ circuit breaker closed -> open/);
      expect(down.hops.join("\n")).toMatch(/answered from the stale cache/);
    } finally {
      await mesh.start("venue-service");
    }
  }, 60_000);
});

describe("ticket-service SIGKILLed in the middle of a purchase, then restarted", () => {
  it("keeps every acknowledged write, and the retried purchase applies once", async () => {
    // Minting takes 0.8 s to confirm, so the purchase is in flight inside ticket-service when it dies.
    const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: ACME, userId: "u-1" }) }, timeoutMs: 30_000 };
    const clientEnv = { ...mesh.env, ...QUICK_BREAKERS };
    const registry = new ResilienceRegistry();
    const scanner = createTicketServiceClient({ identity: await pki.material("scanning-service"), env: clientEnv, resilience: { registry } });
    const saga = createOrderServiceClient({ identity: await pki.material("ticket-service"), env: clientEnv, resilience: { registry } });
    try {
      // An acknowledged write before the crash: t-2 scanned in.
      const scan = await scanner.recordScan({ tenantId: ACME, ticketId: "t-2", deviceId: "gate-9", venueId: "v-1", scanType: "entry" }, ctx);
      expect(scan.status).toBe(TicketStatus.USED);

      const key = `purchase-${crypto.randomUUID()}`;
      const order = {
        tenantId: ACME,
        userId: "u-1",
        eventId: "e-1",
        items: [{ ticketTypeId: "tt-ga", quantity: 2, unitPrice: { amountMinor: 4500n, currency: "USD" } }],
        currency: "USD",
        metadata: { payment_method: "pm_card_visa" },
      };
      const withKey = { ...ctx, headers: { ...ctx.headers, "idempotency-key": key } };
      const mintsBefore = count("minting-service", "SELECT COUNT(*) AS n FROM fake_solana_requests");
      const first = saga.createOrder(order, withKey).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
      // Wait (bounded) until minting-service has submitted a mint: ticket-service has issued the tickets and waits on it.
      let settled = false;
      void first.then(() => (settled = true));
      for (let i = 0; i < 100 && !settled && count("minting-service", "SELECT COUNT(*) AS n FROM fake_solana_requests") === mintsBefore; i++) await sleep(100);
      if (settled) throw new Error(`the purchase ended before minting was reached: ${String(await first)}`);
      expect(count("minting-service", "SELECT COUNT(*) AS n FROM fake_solana_requests")).toBeGreaterThan(mintsBefore);
      await mesh.stop("ticket-service", "SIGKILL");

      const failed = await first;
      expect(failed, "the purchase cannot complete while ticket-service is dead").toBeInstanceOf(ConnectError);
      expect([Code.Unavailable, Code.DeadlineExceeded, Code.Internal]).toContain(failed!.code);

      await mesh.start("ticket-service");
      // Callers' channels reconnect with backoff: a caller retries later (bounded) until the service answers again.
      const t2 = await eventually(() => scanner.getTicketForValidation({ tenantId: ACME, ticketId: "t-2" }, ctx));
      // The acknowledged scan survived the SIGKILL.
      expect([t2.validity?.isUsed, t2.scanCount]).toEqual([true, 1]);

      // The caller retries with the same key (as often as it takes): the same order completes, once.
      const retried = await eventually(() => saga.createOrder(order, withKey));
      expect(retried.order?.status).toBe(OrderStatus.PAID);
      const orderId = retried.order!.id;

      expect(count("order-service", "SELECT COUNT(*) AS n FROM orders WHERE idempotency_key = ?", key)).toBe(1);
      expect(count("payment-service", "SELECT COUNT(*) AS n FROM payments WHERE order_id = ?", orderId)).toBe(1);
      expect(count("payment-service", "SELECT COUNT(*) AS n FROM processor_requests WHERE kind = 'capture' AND object_id IN (SELECT intent_id FROM payments WHERE order_id = ?)", orderId)).toBe(1);
      expect(count("ticket-service", "SELECT COUNT(*) AS n FROM tickets WHERE order_id = ?", orderId)).toBe(2);
      expect(count("ticket-service", "SELECT COUNT(*) AS n FROM payment_outcomes WHERE order_id = ?", orderId)).toBe(1);
      const ticketIds = (db("ticket-service").prepare("SELECT id FROM tickets WHERE order_id = ?").all(orderId) as { id: string }[]).map((t) => t.id);
      for (const id of ticketIds) {
        expect(count("minting-service", "SELECT COUNT(*) AS n FROM mints WHERE ticket_id = ?", id), id).toBe(1);
        expect(count("minting-service", "SELECT COUNT(*) AS n FROM fake_solana_requests WHERE ticket_id = ?", id), id).toBe(1);
        // Minted and recorded on the ticket (UpdateNft re-sent after the restart).
        const status = await scanner.getTicketForValidation({ tenantId: ACME, ticketId: id }, ctx);
        expect(status.ticket?.isMinted, id).toBe(true);
      }
    } finally {
      closeClient(scanner);
      closeClient(saga);
    }
  }, 120_000);
});
