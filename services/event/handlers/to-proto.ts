/** event-service rows as the contract's messages. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { EventSchema, EventStatus, TicketTypeSchema, type Event, type TicketType } from "@tickettoken/contracts/tickettoken/event/v1/event_service_pb";
import type { EventRow, EventState, TicketTypeRow } from "../store.ts";

const STATUS: Record<EventState, EventStatus> = {
  draft: EventStatus.DRAFT,
  published: EventStatus.PUBLISHED,
  on_sale: EventStatus.ON_SALE,
  sold_out: EventStatus.SOLD_OUT,
  in_progress: EventStatus.IN_PROGRESS,
  completed: EventStatus.COMPLETED,
  cancelled: EventStatus.CANCELLED,
  postponed: EventStatus.POSTPONED,
};

export function toStatus(state: EventState): EventStatus {
  return STATUS[state];
}

export function toTimestamp(iso: string | undefined): Timestamp | undefined {
  return iso === undefined ? undefined : timestampFromDate(new Date(iso));
}

export function toEvent(e: EventRow): Event {
  return create(EventSchema, {
    id: e.id,
    tenantId: e.tenantId,
    name: e.name,
    description: e.description,
    shortDescription: e.shortDescription,
    venueId: e.venueId,
    eventType: e.eventType,
    status: toStatus(e.status),
    visibility: e.visibility,
    startsAt: toTimestamp(e.startsAt),
    endsAt: toTimestamp(e.endsAt),
    doorsOpen: toTimestamp(e.doorsOpen),
    timezone: e.timezone,
    capacity: e.capacity,
    isVirtual: e.isVirtual,
    isHybrid: e.isHybrid,
    eventPda: e.eventPda,
    artistWallet: e.artistWallet,
    artistPercentage: e.artistPercentage,
    venuePercentage: e.venuePercentage,
    resaleable: e.resaleable,
    cancellationPolicy: e.cancellationPolicy,
    refundPolicy: e.refundPolicy,
    createdAt: toTimestamp(e.createdAt),
    updatedAt: toTimestamp(e.updatedAt),
    publishedAt: toTimestamp(e.publishedAt),
  });
}

/** The fields GetEventScanStats documents: identity, state, timing and capacity. */
export function toEventSummary(e: EventRow): Event {
  return create(EventSchema, {
    id: e.id,
    tenantId: e.tenantId,
    name: e.name,
    status: toStatus(e.status),
    venueId: e.venueId,
    startsAt: toTimestamp(e.startsAt),
    endsAt: toTimestamp(e.endsAt),
    doorsOpen: toTimestamp(e.doorsOpen),
    timezone: e.timezone,
    capacity: e.capacity,
  });
}

export function toTicketType(t: TicketTypeRow): TicketType {
  return create(TicketTypeSchema, { id: t.id, name: t.name, priceMinor: t.priceMinor, currency: t.currency, quantity: t.quantity });
}
