/**
 * ticket-service's read methods: lookups for payment, scanning, the
 * blockchain indexer, order-service (pricing, counts) and event-service
 * (stats). No writes.
 */
import { RefundEligibilitySchema, TicketStatus } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import { create } from "@bufbuild/protobuf";
import { tenantOf } from "../../shared/context.ts";
import { failedPrecondition, notFound } from "../../shared/errors.ts";
import { validate } from "../../shared/validate.ts";
import type { TicketRow, TicketStore } from "../store.ts";
import type { TicketDeps, TicketHandlers } from "./deps.ts";
import { isEntryCredential, refundBlockers, toEvent, toState, toStatus, toTicket, ts } from "./mapping.ts";

/** Batch methods take at most this many ids per call. */
export const MAX_BATCH = 100;
/** Tickets read per database page while streaming an event. */
const STREAM_PAGE = 500;
/** Entry opens this long before the event starts. */
const ENTRY_OPENS_MS = 4 * 60 * 60 * 1000;

function ticketOrNotFound(store: TicketStore, tenantId: string, ticketId: string): TicketRow {
  const t = store.getTicket(tenantId, ticketId);
  if (!t) throw notFound("ticket");
  return t;
}

function eventOf(store: TicketStore, t: TicketRow) {
  const e = store.getEvent(t.tenantId, t.eventId);
  return e ? { event: toEvent(e) } : {};
}

function ids(field: string, values: readonly string[]) {
  const v = validate().check(values.length > 0, field, "at least one").check(values.length <= MAX_BATCH, field, `at most ${MAX_BATCH}`);
  values.slice(0, MAX_BATCH).forEach((id, i) => v.id(`${field}[${i}]`, id));
  v.done();
}

export function readHandlers({ store, now }: TicketDeps): TicketHandlers {
  return {
    getTicketStatus(req, ctx) {
      validate().id("ticket_id", req.ticketId).done();
      const t = ticketOrNotFound(store, tenantOf(ctx), req.ticketId);
      return {
        ticketId: t.id,
        status: toStatus(t.status),
        userId: t.userId,
        hasBeenTransferred: t.transferCount > 0,
        nftMinted: t.isMinted,
        nftTransferred: t.lastTransferSignature !== "",
        isUsed: t.status === "used",
        ...(t.validatedAt ? { validatedAt: ts(t.validatedAt) } : {}),
        canRefund: refundBlockers(t).length === 0,
      };
    },

    getTicketFull(req, ctx) {
      validate().id("ticket_id", req.ticketId).done();
      const tenantId = tenantOf(ctx);
      const t = ticketOrNotFound(store, tenantId, req.ticketId);
      return {
        ticket: toTicket(t),
        ...eventOf(store, t),
        ticketTypeDescription: store.getTicketType(tenantId, t.ticketTypeId)?.description ?? "",
        qrCode: t.qrCode,
      };
    },

    async *listTicketsByEvent(req, ctx) {
      const v = validate().id("event_id", req.eventId);
      const state = toState(req.status);
      if (req.status !== TicketStatus.UNSPECIFIED && state === undefined) v.fail("status", "unknown value");
      v.done();
      const tenantId = tenantOf(ctx);
      // Keyset pages: memory stays bounded for tens of thousands of tickets, and no statement stays open across a yield.
      let after = "";
      for (;;) {
        const page = store.eventTicketsPage(tenantId, req.eventId, state, after, STREAM_PAGE);
        for (const t of page) {
          if (ctx.signal.aborted) return;
          yield { ticket: toTicket(t), qrCode: t.qrCode };
        }
        if (page.length < STREAM_PAGE) return;
        after = page.at(-1)!.id;
      }
    },

    getTicketByToken(req, ctx) {
      validate().id("token_id", req.tokenId).done();
      const t = store.getTicketByToken(tenantOf(ctx), req.tokenId);
      if (!t) throw notFound("ticket");
      return { ticket: toTicket(t) };
    },

    batchGetTicketsByToken(req, ctx) {
      ids("token_ids", req.tokenIds);
      const found = store.ticketsByTokens(tenantOf(ctx), req.tokenIds);
      const byToken = new Map(found.map((t) => [t.tokenId!, t]));
      return {
        tickets: [...byToken.values()].map(toTicket),
        notFoundTokenIds: [...new Set(req.tokenIds)].filter((id) => !byToken.has(id)),
      };
    },

    countOrderTickets(req, ctx) {
      validate().id("order_id", req.orderId).done();
      const count = store.countIssuedForOrder(tenantOf(ctx), req.orderId);
      return { orderId: req.orderId, count, hasTickets: count > 0 };
    },

    getTicketForValidation(req, ctx) {
      validate().id("ticket_id", req.ticketId).done();
      const t = ticketOrNotFound(store, tenantOf(ctx), req.ticketId);
      const e = store.getEvent(t.tenantId, t.eventId);
      const at = now().getTime();
      return {
        ticket: toTicket(t),
        ...(e ? { event: toEvent(e) } : {}),
        qrCode: t.qrCode,
        qrHmacSecret: t.qrHmacSecret,
        scanCount: t.scanCount,
        ...(t.lastScannedAt ? { lastScannedAt: ts(t.lastScannedAt) } : {}),
        validity: {
          isValid: isEntryCredential(t),
          isUsed: t.status === "used",
          isExpired: e !== undefined && at > Date.parse(e.endsAt),
          isTooEarly: e !== undefined && at < Date.parse(e.startsAt) - ENTRY_OPENS_MS,
        },
      };
    },

    getTicketForRefund(req, ctx) {
      validate().id("ticket_id", req.ticketId).done();
      const t = ticketOrNotFound(store, tenantOf(ctx), req.ticketId);
      const e = store.getEvent(t.tenantId, t.eventId);
      const reasons = refundBlockers(t);
      if (e && now().getTime() > Date.parse(e.startsAt) - e.refundPolicyHours * 3_600_000) reasons.push("Refund window has closed");
      return {
        ticket: toTicket(t),
        ...(e ? { event: toEvent(e), venue: { id: e.venueId, name: e.venueName, refundPolicyHours: e.refundPolicyHours } } : {}),
        refundEligibility: create(RefundEligibilitySchema, { canRefund: reasons.length === 0, reasons }),
      };
    },

    getEventTicketStats(req, ctx) {
      validate().id("event_id", req.eventId).done();
      const s = store.eventStats(tenantOf(ctx), req.eventId);
      return {
        eventId: req.eventId,
        totalTickets: s.total,
        soldTickets: s.sold,
        usedTickets: s.used,
        transferredTickets: s.transferred,
        cancelledTickets: s.cancelled,
        validatedTickets: s.validated,
        ...(s.lastValidationAt ? { lastValidationAt: ts(s.lastValidationAt) } : {}),
      };
    },

    calculatePrice(req, ctx) {
      ids("ticket_ids", req.ticketIds);
      const tenantId = tenantOf(ctx);
      // An id names an issued ticket or, to price an order before any ticket exists, a ticket type (once per ticket).
      const lines = req.ticketIds.map((id) => {
        const t = store.getTicket(tenantId, id);
        if (t) return { ticketId: id, ticketTypeName: t.ticketTypeName, amount: t.priceMinor, currency: t.currency };
        const type = store.getTicketType(tenantId, id);
        if (type) return { ticketId: id, ticketTypeName: type.name, amount: type.priceMinor, currency: type.currency };
        throw notFound("ticket");
      });
      const currency = lines[0]!.currency;
      if (lines.some((l) => l.currency !== currency)) throw failedPrecondition("tickets are priced in different currencies");
      const total = lines.reduce((sum, l) => sum + BigInt(l.amount), 0n);
      return {
        total: { amountMinor: total, currency },
        priceBreakdown: lines.map((l) => ({ ticketId: l.ticketId, ticketTypeName: l.ticketTypeName, price: { amountMinor: BigInt(l.amount), currency: l.currency } })),
        ticketCount: lines.length,
      };
    },
  };
}
