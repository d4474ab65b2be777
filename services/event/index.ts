/**
 * event-service: events and ticket types. Calls venue-service (CreateEvent's
 * venue check, with a stale fallback when venue-service is down) and
 * ticket-service (scan statistics).
 */
import { createTicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { createVenueServiceClient } from "@tickettoken/contracts/tickettoken/venue/v1/venue_service_rpc";
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { VENUE_STALE_MAX_AGE_MS } from "./handlers/create-event.ts";
import { eventService } from "./handlers.ts";
import { seedEvents } from "./seed.ts";
import { createSqliteEventStore } from "./store.ts";

export const eventModule: ServiceModule = {
  name: "event-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedEvents,
  create: (rt) =>
    eventService({
      store: createSqliteEventStore(rt.db),
      // Both venue answers CreateEvent relies on may be served stale (per tenant and request) while venue-service is down.
      venues: rt.client(createVenueServiceClient, {
        resilience: { fallback: { validateVenueAccess: { maxAgeMs: VENUE_STALE_MAX_AGE_MS }, getVenue: { maxAgeMs: VENUE_STALE_MAX_AGE_MS } } },
      }),
      tickets: rt.client(createTicketServiceClient),
      logger: rt.logger,
      now: () => rt.now(),
    }),
};
