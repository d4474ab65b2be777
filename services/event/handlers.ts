/**
 * event-service's internal RPC surface: event reads for minting, payment and
 * scanning, and CreateEvent for api-gateway (handlers/create-event.ts).
 */
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { EventServiceContract } from "@tickettoken/contracts/tickettoken/event/v1/event_service_rpc";
import type { TicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { tenantOf } from "../shared/context.ts";
import { notFound } from "../shared/errors.ts";
import { validate } from "../shared/validate.ts";
import { createEvent, type CreateEventDeps } from "./handlers/create-event.ts";
import { entryMetrics, eventTiming } from "./handlers/scan-stats.ts";
import { toEvent, toEventSummary, toStatus } from "./handlers/to-proto.ts";
import type { EventRow, EventStore } from "./store.ts";

export interface EventServiceDeps extends CreateEventDeps {
  readonly tickets: TicketServiceClient;
}

function findEvent(store: EventStore, tenantId: string, eventId: string): EventRow {
  validate().id("event_id", eventId).done();
  const event = store.getEvent(tenantId, eventId);
  if (!event) throw notFound("event");
  return event;
}

export function eventService(deps: EventServiceDeps): ServiceRegistration {
  const { store } = deps;
  return implement(EventServiceContract, {
    getEvent(req, ctx) {
      return { event: toEvent(findEvent(store, tenantOf(ctx), req.eventId)) };
    },

    getEventPda(req, ctx) {
      const e = findEvent(store, tenantOf(ctx), req.eventId);
      return {
        eventId: e.id,
        tenantId: e.tenantId,
        name: e.name,
        status: toStatus(e.status),
        venueId: e.venueId,
        blockchain: {
          eventPda: e.eventPda,
          merkleTreeAddress: e.merkleTreeAddress,
          collectionMint: e.collectionMint,
          artistWallet: e.artistWallet,
          artistPercentage: e.artistPercentage,
          venuePercentage: e.venuePercentage,
          platformPercentage: e.platformPercentage,
          resaleable: e.resaleable,
          maxResalePricePercentage: e.maxResalePricePercentage,
        },
        hasBlockchainConfig: e.eventPda !== "" && e.artistWallet !== "",
      };
    },

    async getEventScanStats(req, ctx) {
      const tenantId = tenantOf(ctx);
      const event = findEvent(store, tenantId, req.eventId);
      const stats = await deps.tickets.getEventTicketStats({ tenantId, eventId: event.id });
      return {
        event: toEventSummary(event),
        ticketStats: {
          totalTickets: stats.totalTickets,
          soldTickets: stats.soldTickets,
          usedTickets: stats.usedTickets,
          transferredTickets: stats.transferredTickets,
          cancelledTickets: stats.cancelledTickets,
          validatedTickets: stats.validatedTickets,
          ...(stats.lastValidationAt ? { lastValidationAt: stats.lastValidationAt } : {}),
        },
        metrics: entryMetrics(event.capacity, stats),
        timing: eventTiming(event, deps.now()),
      };
    },

    createEvent: (req, ctx) => createEvent(deps, req, ctx),
  });
}

