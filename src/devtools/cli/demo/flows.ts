/**
 * The platform's cross-service flows, each started the way the platform starts
 * it: by the workload that owns the first step, calling as itself with a
 * context token for a tenant and user. Every later hop is a service calling
 * another through its generated client; the hops are read back from the logs.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { createServiceClient } from "@tickettoken/rpc/internal/client/service-client";
import { hostFrameworkContract } from "@tickettoken/rpc/internal/server/framework-contracts";
import { AdminServiceFrameworkContract } from "@tickettoken/rpc/gen/tickettoken/rpc/v1/admin_rpc.js";
import { BreakerState } from "@tickettoken/rpc/gen/tickettoken/rpc/v1/admin_pb.js";
import { createOrderServiceClient } from "@tickettoken/contracts/tickettoken/order/v1/order_service_rpc";
import { OrderStatus } from "@tickettoken/contracts/tickettoken/order/v1/order_service_pb";
import { createPaymentServiceClient } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_rpc";
import { RefundStatus } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import { createTicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { TicketStatus, type Ticket } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import { createEventServiceClient } from "@tickettoken/contracts/tickettoken/event/v1/event_service_rpc";
import type { DemoContext } from "./context.ts";
import { ACME, GLOBEX } from "@tickettoken/services/shared/demo-data";

const EVENT = "e-1";

export interface FlowOptions {
  /** purchase: let the card be declined. */
  readonly decline?: boolean;
  /** scan: which ticket (default: a ticket bought for the scan). */
  readonly ticket?: string;
  /** refund: which order (default: one bought for the refund). */
  readonly order?: string;
  /** event-create: how many events to create (shows a breaker opening while venue-service is down). */
  readonly repeat?: number;
}

/** A flow returns true when it ended as the platform should (a denial can be the right end). */
export type Flow = (d: DemoContext, opts: FlowOptions) => Promise<boolean>;

const name = (e: Record<number, string>, v: number) => e[v] ?? String(v);
const money = (m: { amountMinor: bigint; currency: string } | undefined) => (m ? `${(Number(m.amountMinor) / 100).toFixed(2)} ${m.currency}` : "-");

function codeOf(err: unknown): string {
  return Code[ConnectError.from(err).code] ?? "Unknown";
}

/** ticket-service's purchase saga creates an order; the chain runs order -> payment -> ticket -> minting -> ticket. */
async function buy(d: DemoContext, quantity: number, decline: boolean): Promise<{ orderId: string; status: OrderStatus } | undefined> {
  const orders = await d.as("ticket-service", createOrderServiceClient);
  try {
    const { order } = await orders.createOrder(
      {
        tenantId: ACME,
        userId: "u-1",
        eventId: EVENT,
        items: [{ ticketTypeId: "tt-ga", quantity, unitPrice: { amountMinor: 4500n, currency: "USD" } }],
        currency: "USD",
        metadata: { payment_method: decline ? "pm_card_declined" : "pm_card_visa" },
      },
      await d.call(ACME, "u-1"),
    );
    d.say(`order ${order!.id}: ${name(OrderStatus, order!.status)}, total ${money(order!.total)}`);
    return { orderId: order!.id, status: order!.status };
  } catch (err) {
    d.say(`CreateOrder failed: ${codeOf(err)} ${ConnectError.from(err).rawMessage}`);
    return undefined;
  }
}

/** The order's tickets, as the operator sees them. */
async function ticketsOf(d: DemoContext, orderId: string): Promise<Ticket[]> {
  const tickets = await d.as("ops", createTicketServiceClient);
  const found: Ticket[] = [];
  for await (const { ticket } of tickets.listTicketsByEvent({ tenantId: ACME, eventId: EVENT }, await d.call(ACME, "admin-1"))) {
    if (ticket?.orderId === orderId) found.push(ticket);
  }
  return found;
}

const purchase: Flow = async (d, opts) => {
  const bought = await buy(d, 2, opts.decline === true);
  if (!bought) return false;
  const tickets = await ticketsOf(d, bought.orderId);
  for (const t of tickets) d.say(`ticket ${t.id}: ${name(TicketStatus, t.status)}${t.isMinted ? `, NFT ${t.tokenId}` : ", not minted"}`);
  if (opts.decline) return bought.status === OrderStatus.CANCELLED && tickets.length === 0;
  return bought.status === OrderStatus.CONFIRMED || bought.status === OrderStatus.PAID ? tickets.length === 2 : false;
};

const refund: Flow = async (d, opts) => {
  let orderId = opts.order;
  if (!orderId) {
    const bought = await buy(d, 2, false);
    if (!bought) return false;
    orderId = bought.orderId;
  }
  const payments = await d.as("order-service", createPaymentServiceClient);
  const { payments: list } = await payments.listOrderPayments({ tenantId: ACME, orderId }, await d.call(ACME, "u-1"));
  const payment = list[0];
  if (!payment) {
    d.say(`order ${orderId} has no payment`);
    return false;
  }
  const ticketIds = (await ticketsOf(d, orderId)).map((t) => t.id);
  try {
    const { refund: r } = await payments.createRefund(
      { tenantId: ACME, paymentId: payment.id, orderId, reason: "requested_by_customer", ticketIds },
      await d.call(ACME, "u-1"),
    );
    d.say(`refund ${r!.id}: ${name(RefundStatus, r!.status)}, ${money(r!.amount)} for ${ticketIds.length} ticket(s)`);
  } catch (err) {
    d.say(`CreateRefund refused: ${codeOf(err)} ${ConnectError.from(err).rawMessage}`);
    return false;
  }
  for (const t of await ticketsOf(d, orderId)) d.say(`ticket ${t.id}: ${name(TicketStatus, t.status)}`);
  return true;
};

const scan: Flow = async (d, opts) => {
  let ticketId = opts.ticket;
  if (!ticketId) {
    const bought = await buy(d, 1, false);
    if (!bought) return false;
    ticketId = (await ticketsOf(d, bought.orderId))[0]?.id;
    if (!ticketId) return false;
  }
  const tickets = await d.as("scanning-service", createTicketServiceClient);
  const events = await d.as("scanning-service", createEventServiceClient);
  const who = await d.call(ACME, "admin-1", ["events:read"]);
  const check = await tickets.getTicketForValidation({ tenantId: ACME, ticketId }, who);
  const v = check.validity;
  d.say(`ticket ${ticketId}: valid ${v?.isValid}, used ${v?.isUsed}, scans ${check.scanCount}`);
  let admitted = false;
  if (v?.isValid && !v.isUsed) {
    const rec = await tickets.recordScan({ tenantId: ACME, ticketId, deviceId: "gate-1", venueId: "v-1", scanType: "entry" }, await d.call(ACME, "admin-1"));
    d.say(`scan recorded: ${name(TicketStatus, rec.status)}, scan count ${rec.scanCount}`);
    admitted = true;
  } else {
    d.say("entry refused: the ticket is not a valid entry credential");
  }
  const stats = await events.getEventScanStats({ tenantId: ACME, eventId: EVENT }, who);
  const s = stats.ticketStats;
  d.say(`event ${EVENT}: sold ${s?.soldTickets}, used ${s?.usedTickets}, validated ${s?.validatedTickets}, entry rate ${stats.metrics?.entryRatePercent}%`);
  return opts.ticket ? true : admitted;
};

const eventCreate: Flow = async (d, opts) => {
  const events = await d.as("api-gateway", createEventServiceClient);
  const start = new Date(Date.now() + 30 * 24 * 3600_000);
  let created = 0;
  const repeat = Math.max(1, Math.min(opts.repeat ?? 1, 50));
  for (let i = 0; i < repeat; i++) {
    try {
      const res = await events.createEvent(
        {
          tenantId: ACME,
          venueId: "v-1",
          name: `Demo night ${start.toISOString().slice(0, 10)} #${i + 1}`,
          startsAt: timestampFromDate(start),
          endsAt: timestampFromDate(new Date(start.getTime() + 3 * 3600_000)),
          ticketTypes: [{ name: "General Admission", priceMinor: 5000n, currency: "USD", quantity: 100 }],
        },
        await d.call(ACME, "admin-1", ["events:write"]),
      );
      created++;
      d.say(`event ${res.event!.id} created at venue ${res.event!.venueId}${res.venueStale ? " (venue-service unreachable: venue checked against a cached copy, flagged stale)" : ""}`);
    } catch (err) {
      d.say(`CreateEvent failed: ${codeOf(err)} ${ConnectError.from(err).rawMessage}`);
    }
  }
  const admin = await d.as("ops", (o) => createServiceClient(hostFrameworkContract(AdminServiceFrameworkContract, "event-service"), o));
  const { breakers } = await admin.listBreakers({}, await d.call(ACME, "admin-1"));
  const venue = breakers.find((b) => b.target === "venue-service");
  d.say(`event-service's breaker for venue-service: ${venue ? name(BreakerState, venue.state) : "no calls yet"}${venue ? ` (${venue.windowFailures}/${venue.windowCalls} failed in window)` : ""}`);
  return created > 0;
};

const crossTenant: Flow = async (d) => {
  const tickets = await d.as("payment-service", createTicketServiceClient);
  const globex = await d.call(GLOBEX, "u-g1");
  let ok = true;
  // 1. A Globex call naming Acme's tenant in the body: the context token wins.
  try {
    await tickets.getTicketStatus({ tenantId: ACME, ticketId: "t-1" }, globex);
    d.say("UNEXPECTED: a Globex context read an Acme ticket");
    ok = false;
  } catch (err) {
    d.say(`Globex context, body tenant_id = Acme: ${codeOf(err)} (the body's tenant never overrides the signed context)`);
    ok &&= ConnectError.from(err).code === Code.PermissionDenied;
  }
  // 2. Globex asking for Acme's ticket id within its own tenant: it does not exist there.
  try {
    await tickets.getTicketStatus({ tenantId: GLOBEX, ticketId: "t-1" }, globex);
    d.say("UNEXPECTED: Acme's ticket visible to Globex");
    ok = false;
  } catch (err) {
    d.say(`Globex context, Acme's ticket id: ${codeOf(err)} (another tenant's row does not exist for the caller)`);
    ok &&= ConnectError.from(err).code === Code.NotFound;
  }
  return ok;
};

export const FLOWS: Record<string, { run: Flow; about: string }> = {
  purchase: { run: purchase, about: "order -> payment intent -> complete -> ticket payment-succeeded -> minting -> ticket update-nft" },
  refund: { run: refund, about: "payment refund -> ticket for-refund -> cancel-batch (buys an order first unless --order)" },
  scan: { run: scan, about: "ticket for-validation -> record-scan -> event scan-stats (buys a ticket first unless --ticket)" },
  "event-create": { run: eventCreate, about: "event create -> venue validate-access + get-venue (stale venue when venue-service is down)" },
  "cross-tenant": { run: crossTenant, about: "a Globex caller reaching for Acme's data: denied, and the server log says why" },
};
