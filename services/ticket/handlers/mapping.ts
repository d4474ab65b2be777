/**
 * Rows to contract messages, and the ticket rules several methods share
 * (refund eligibility, entry validity).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  TicketEventSchema,
  TicketSchema,
  TicketStatus,
  type Ticket,
  type TicketEvent,
} from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import type { EventRow, TicketRow, TicketState } from "../store.ts";

const STATUS: Record<TicketState, TicketStatus> = {
  reserved: TicketStatus.RESERVED,
  sold: TicketStatus.SOLD,
  transferred: TicketStatus.TRANSFERRED,
  used: TicketStatus.USED,
  cancelled: TicketStatus.CANCELLED,
};

const STATE = new Map<TicketStatus, TicketState>(Object.entries(STATUS).map(([state, status]) => [status, state as TicketState]));

export function toStatus(state: TicketState): TicketStatus {
  return STATUS[state];
}

/** The stored state for a contract status; undefined for UNSPECIFIED or an unknown value. */
export function toState(status: TicketStatus): TicketState | undefined {
  return STATE.get(status);
}

export function ts(iso: string | null | undefined): Timestamp | undefined {
  return iso ? timestampFromDate(new Date(iso)) : undefined;
}

/** Optional timestamp fields: present only when set. */
function tsField<K extends string>(key: K, iso: string | null | undefined): Partial<Record<K, Timestamp>> {
  const t = ts(iso);
  return t ? ({ [key]: t } as Record<K, Timestamp>) : {};
}

export function toTicket(r: TicketRow): Ticket {
  return create(TicketSchema, {
    id: r.id,
    tenantId: r.tenantId,
    eventId: r.eventId,
    ticketTypeId: r.ticketTypeId,
    ticketTypeName: r.ticketTypeName,
    userId: r.userId,
    orderId: r.orderId,
    status: toStatus(r.status),
    ticketNumber: r.ticketNumber,
    seatSection: r.seatSection,
    seatRow: r.seatRow,
    seatNumber: r.seatNumber,
    price: { amountMinor: BigInt(r.priceMinor), currency: r.currency },
    tokenId: r.tokenId ?? "",
    isMinted: r.isMinted,
    mintTransactionId: r.mintTransactionId,
    walletAddress: r.walletAddress,
    transferCount: r.transferCount,
    isTransferable: r.isTransferable,
    ...tsField("mintedAt", r.mintedAt),
    ...tsField("validatedAt", r.validatedAt),
    ...tsField("usedAt", r.usedAt),
    ...tsField("purchasedAt", r.purchasedAt),
  });
}

export function toEvent(e: EventRow): TicketEvent {
  return create(TicketEventSchema, {
    id: e.id,
    name: e.name,
    venueId: e.venueId,
    status: e.status,
    timezone: e.timezone,
    eventType: e.eventType,
    ...tsField("startsAt", e.startsAt),
    ...tsField("endsAt", e.endsAt),
  });
}

/**
 * Why a ticket cannot be refunded, from its own state (empty: it can). The
 * refund window, which depends on the event, is checked by GetTicketForRefund.
 */
export function refundBlockers(t: TicketRow): string[] {
  const reasons: string[] = [];
  if (t.status === "reserved") reasons.push("Ticket has not been paid");
  if (t.status === "cancelled") reasons.push(t.refundId !== "" ? "Ticket has already been refunded" : "Ticket is cancelled");
  if (t.transferCount > 0 || t.status === "transferred") reasons.push("Ticket has been transferred");
  if (t.status === "used") reasons.push("Ticket has been used");
  else if (t.validatedAt !== null) reasons.push("Ticket has been validated");
  if (t.lastTransferSignature !== "") reasons.push("NFT has been transferred");
  return reasons;
}

/** A ticket that admits its holder: paid and neither used nor cancelled. */
export function isEntryCredential(t: TicketRow): boolean {
  return t.status === "sold" || t.status === "transferred";
}

/** Reason a ticket may not change state, for FAILED_PRECONDITION answers. */
export function stateRefusal(t: TicketRow): string | undefined {
  switch (t.status) {
    case "reserved":
      return "ticket has not been paid";
    case "used":
      return "ticket already used";
    case "cancelled":
      return t.refundId !== "" ? "ticket has been refunded" : "ticket is cancelled";
    default:
      return undefined;
  }
}
