/**
 * event-service's storage port and its SQLite implementation. Every query is
 * keyed by tenant: another tenant's event does not exist for the caller.
 */
import { transaction, type Database } from "../shared/database.ts";

export type EventState = "draft" | "published" | "on_sale" | "sold_out" | "in_progress" | "completed" | "cancelled" | "postponed";

export interface EventRow {
  readonly tenantId: string;
  readonly id: string;
  readonly venueId: string;
  readonly name: string;
  readonly description: string;
  readonly shortDescription: string;
  readonly eventType: string;
  readonly status: EventState;
  readonly visibility: "public" | "private" | "unlisted";
  /** ISO 8601, or undefined when not set. */
  readonly startsAt: string | undefined;
  readonly endsAt: string | undefined;
  readonly doorsOpen: string | undefined;
  readonly timezone: string;
  readonly capacity: number;
  readonly isVirtual: boolean;
  readonly isHybrid: boolean;
  readonly eventPda: string;
  readonly merkleTreeAddress: string;
  readonly collectionMint: string;
  readonly artistWallet: string;
  readonly artistPercentage: number;
  readonly venuePercentage: number;
  readonly platformPercentage: number;
  readonly resaleable: boolean;
  readonly maxResalePricePercentage: number;
  readonly cancellationPolicy: string;
  readonly refundPolicy: string;
  readonly createdBy: string;
  readonly venueStale: boolean;
  readonly idempotencyKey: string | undefined;
  readonly requestHash: string | undefined;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly publishedAt: string | undefined;
}

export interface TicketTypeRow {
  readonly tenantId: string;
  readonly id: string;
  readonly eventId: string;
  readonly position: number;
  readonly name: string;
  readonly priceMinor: bigint;
  readonly currency: string;
  readonly quantity: number;
}

export interface EventStore {
  getEvent(tenantId: string, eventId: string): EventRow | undefined;
  /** The event a CreateEvent call with this idempotency key wrote, if any. */
  eventByIdempotencyKey(tenantId: string, key: string): EventRow | undefined;
  ticketTypes(tenantId: string, eventId: string): TicketTypeRow[];
  /** Writes the event and its ticket types in one transaction. */
  insertEvent(event: EventRow, ticketTypes: readonly TicketTypeRow[]): void;
}

type Rec = Record<string, string | number | bigint | null>;

const COLUMNS: readonly [keyof EventRow, string][] = [
  ["tenantId", "tenant_id"], ["id", "id"], ["venueId", "venue_id"], ["name", "name"], ["description", "description"],
  ["shortDescription", "short_description"], ["eventType", "event_type"], ["status", "status"], ["visibility", "visibility"],
  ["startsAt", "starts_at"], ["endsAt", "ends_at"], ["doorsOpen", "doors_open"], ["timezone", "timezone"], ["capacity", "capacity"],
  ["isVirtual", "is_virtual"], ["isHybrid", "is_hybrid"], ["eventPda", "event_pda"], ["merkleTreeAddress", "merkle_tree_address"],
  ["collectionMint", "collection_mint"], ["artistWallet", "artist_wallet"], ["artistPercentage", "artist_percentage"],
  ["venuePercentage", "venue_percentage"], ["platformPercentage", "platform_percentage"], ["resaleable", "resaleable"],
  ["maxResalePricePercentage", "max_resale_price_percentage"], ["cancellationPolicy", "cancellation_policy"],
  ["refundPolicy", "refund_policy"], ["createdBy", "created_by"], ["venueStale", "venue_stale"], ["idempotencyKey", "idempotency_key"],
  ["requestHash", "request_hash"], ["createdAt", "created_at"], ["updatedAt", "updated_at"], ["publishedAt", "published_at"],
];
const BOOLEANS = new Set<keyof EventRow>(["isVirtual", "isHybrid", "resaleable", "venueStale"]);

function toEvent(r: Rec): EventRow {
  const out: Record<string, unknown> = {};
  for (const [prop, col] of COLUMNS) {
    const v = r[col];
    out[prop] = BOOLEANS.has(prop) ? v === 1 : v === null ? undefined : v;
  }
  return out as unknown as EventRow;
}

function toColumns(e: EventRow): (string | number | null)[] {
  return COLUMNS.map(([prop]) => {
    const v = e[prop];
    return typeof v === "boolean" ? (v ? 1 : 0) : v === undefined ? null : (v as string | number);
  });
}

export function createSqliteEventStore(db: Database): EventStore {
  const getEvent = db.prepare("SELECT * FROM events WHERE tenant_id = ? AND id = ?");
  const byKey = db.prepare("SELECT * FROM events WHERE tenant_id = ? AND idempotency_key = ?");
  const ticketTypes = db.prepare("SELECT * FROM ticket_types WHERE tenant_id = ? AND event_id = ? ORDER BY position");
  ticketTypes.setReadBigInts(true);
  const insertEvent = db.prepare(`INSERT INTO events (${COLUMNS.map(([, c]) => c).join(", ")}) VALUES (${COLUMNS.map(() => "?").join(", ")})`);
  const insertTicketType = db.prepare(
    "INSERT INTO ticket_types (tenant_id, id, event_id, position, name, price_minor, currency, quantity) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  return {
    getEvent(tenantId, eventId) {
      const r = getEvent.get(tenantId, eventId) as Rec | undefined;
      return r && toEvent(r);
    },
    eventByIdempotencyKey(tenantId, key) {
      const r = byKey.get(tenantId, key) as Rec | undefined;
      return r && toEvent(r);
    },
    ticketTypes(tenantId, eventId) {
      return (ticketTypes.all(tenantId, eventId) as Rec[]).map((r) => ({
        tenantId: r.tenant_id as string,
        id: r.id as string,
        eventId: r.event_id as string,
        position: Number(r.position),
        name: r.name as string,
        priceMinor: r.price_minor as bigint,
        currency: r.currency as string,
        quantity: Number(r.quantity),
      }));
    },
    insertEvent(event, types) {
      transaction(db, () => {
        insertEvent.run(...toColumns(event));
        for (const t of types) insertTicketType.run(t.tenantId, t.id, t.eventId, t.position, t.name, t.priceMinor, t.currency, t.quantity);
      });
    },
  };
}
