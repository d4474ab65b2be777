/**
 * event-service's part of the demo data set (services/shared/demo-data.ts):
 * the shared events and ticket types, plus what only event-service knows
 * (capacity, doors, on-chain configuration). e-1 has a full blockchain
 * configuration; e-g1 has a PDA but no artist wallet yet.
 */
import type { Database } from "../shared/database.ts";
import { DEMO } from "../shared/demo-data.ts";
import { createSqliteEventStore, type EventRow } from "./store.ts";

const ON_CHAIN: Record<string, Partial<EventRow>> = {
  "e-1": {
    artistWallet: "ArtWa11et1111111111111111111111111111111111",
    merkleTreeAddress: "Merk1eTree111111111111111111111111111111111",
    collectionMint: "Co11ectionMint11111111111111111111111111111",
    artistPercentage: 5,
    venuePercentage: 3,
    platformPercentage: 2.5,
    maxResalePricePercentage: 150,
  },
};

export function seedEvents(db: Database, now: Date): void {
  const store = createSqliteEventStore(db);
  const at = now.toISOString();
  for (const e of DEMO.events) {
    const types = DEMO.ticketTypes.filter((t) => t.eventId === e.id);
    const venue = DEMO.venues.find((v) => v.id === e.venueId)!;
    const starts = new Date(e.startsAt);
    store.insertEvent(
      {
        tenantId: e.tenantId, id: e.id, venueId: e.venueId, name: e.name, description: `${e.name} at ${venue.name}`,
        shortDescription: e.name, eventType: "concert", status: e.status, visibility: "public", startsAt: e.startsAt, endsAt: e.endsAt,
        doorsOpen: new Date(starts.getTime() - 3_600_000).toISOString(), timezone: venue.timezone,
        capacity: types.reduce((n, t) => n + t.quantity, 0), isVirtual: false, isHybrid: false, eventPda: e.eventPda,
        merkleTreeAddress: "", collectionMint: "", artistWallet: "", artistPercentage: 0, venuePercentage: 0, platformPercentage: 0,
        resaleable: true, maxResalePricePercentage: 0, cancellationPolicy: "Full refund if the event is cancelled.",
        refundPolicy: "Refunds until 24 hours before the event.", createdBy: "", venueStale: false, idempotencyKey: undefined,
        requestHash: undefined, createdAt: at, updatedAt: at, publishedAt: at,
        ...ON_CHAIN[e.id],
      },
      types.map((t, i) => ({
        tenantId: t.tenantId, id: t.id, eventId: e.id, position: i, name: t.name, priceMinor: BigInt(t.priceMinor), currency: t.currency,
        quantity: t.quantity,
      })),
    );
  }
}
