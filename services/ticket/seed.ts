/**
 * ticket-service's part of the demo data set (services/shared/demo-data.ts):
 * the events and ticket types it sells, the tickets of the completed demo
 * purchases (t-1 minted, t-3 scanned in). Reservations (tickets held for an
 * unpaid order) come and go at run time, so none are seeded.
 */
import type { Database } from "../shared/database.ts";
import { DEMO } from "../shared/demo-data.ts";
import { newQrCredential } from "./qr.ts";
import { createSqliteTicketStore } from "./store.ts";

/** Ticket types that may not change hands (the rest are transferable). */
const NON_TRANSFERABLE_TYPES = new Set(["tt-vip"]);

export function seedTickets(db: Database, now: Date): void {
  const store = createSqliteTicketStore(db);
  const at = now.toISOString();
  for (const e of DEMO.events) {
    const venue = DEMO.venues.find((v) => v.id === e.venueId)!;
    store.insertEvent({
      tenantId: e.tenantId, id: e.id, name: e.name, venueId: e.venueId, venueName: venue.name, refundPolicyHours: 24,
      startsAt: e.startsAt, endsAt: e.endsAt, status: e.status.toUpperCase(), timezone: venue.timezone, eventType: "",
    });
  }
  for (const t of DEMO.ticketTypes) {
    store.insertTicketType({
      tenantId: t.tenantId, id: t.id, eventId: t.eventId, name: t.name, description: `${t.name} entry`, priceMinor: t.priceMinor,
      currency: t.currency, quantity: t.quantity, isTransferable: !NON_TRANSFERABLE_TYPES.has(t.id),
    });
  }
  for (const t of DEMO.tickets) {
    const order = DEMO.orders.find((o) => o.id === t.orderId)!;
    const mint = DEMO.mints.find((m) => m.ticketId === t.id);
    store.insertTicket({
      tenantId: t.tenantId, id: t.id, eventId: t.eventId, ticketTypeId: t.ticketTypeId, orderId: t.orderId, userId: t.userId,
      status: t.status, ticketNumber: t.number, priceMinor: t.priceMinor, currency: order.currency,
      isTransferable: !NON_TRANSFERABLE_TYPES.has(t.ticketTypeId), ...newQrCredential(t.id), paymentId: order.paymentId,
      purchasedAt: at, createdAt: at,
      ...(t.tokenId !== "" ? { tokenId: t.tokenId, isMinted: true, mintTransactionId: mint?.signature ?? "", mintedAt: at } : {}),
      ...(t.status === "used" ? { usedAt: at, validatedAt: at, scanCount: 1, lastScannedAt: at } : {}),
    });
  }
}
