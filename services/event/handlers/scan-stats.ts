/**
 * GetEventScanStats: the event, its ticket counts from ticket-service
 * (GetEventTicketStats), and what follows from them and the clock: entry rate,
 * capacity use, and where the event stands in time.
 */
import type { GetEventTicketStatsResponse } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { EventEntryMetricsSchema, EventTimingSchema } from "@tickettoken/contracts/tickettoken/event/v1/event_service_pb";
import type { EventRow } from "../store.ts";

const MINUTE_MS = 60_000;

function percent(part: number, whole: number): number {
  return whole > 0 ? Math.round((part * 100) / whole) : 0;
}

export function entryMetrics(capacity: number, stats: GetEventTicketStatsResponse): MessageInitShape<typeof EventEntryMetricsSchema> {
  return {
    entryRatePercent: percent(stats.validatedTickets, stats.soldTickets),
    capacityUtilizationPercent: percent(stats.soldTickets, capacity),
    ...(capacity > 0 ? { availableCapacity: Math.max(0, capacity - stats.soldTickets) } : {}),
  };
}

export function eventTiming(event: EventRow, now: Date): MessageInitShape<typeof EventTimingSchema> {
  const t = now.getTime();
  const start = event.startsAt === undefined ? undefined : Date.parse(event.startsAt);
  const end = event.endsAt === undefined ? undefined : Date.parse(event.endsAt);
  const doors = event.doorsOpen === undefined ? start : Date.parse(event.doorsOpen);
  return {
    isUpcoming: start !== undefined && t < start,
    isOngoing: start !== undefined && t >= start && (end === undefined || t < end),
    isPast: end !== undefined && t >= end,
    doorsAreOpen: doors !== undefined && t >= doors && (end === undefined || t < end),
    ...(start !== undefined ? { minutesUntilStart: Math.trunc((start - t) / MINUTE_MS) } : {}),
    ...(end !== undefined ? { minutesSinceEnd: Math.trunc((t - end) / MINUTE_MS) } : {}),
  };
}
