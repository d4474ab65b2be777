/**
 * CreateEvent: checks the venue with venue-service (may the acting user manage
 * it? what is its capacity?), then writes the event and its ticket types in one
 * transaction, with the call's idempotency key, so a retry (even after a
 * restart) answers the first result and writes nothing.
 *
 * When venue-service is unavailable, the venue client's stale fallback answers
 * with a copy seen within VENUE_STALE_MAX_AGE_MS for this tenant and request;
 * the event is then created with venue_stale = true. Without such a copy the
 * call fails UNAVAILABLE (the framework's boundary keeps the code).
 */
import { createHash } from "node:crypto";
import { toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { staleAge } from "@tickettoken/rpc";
import type { VenueServiceClient } from "@tickettoken/contracts/tickettoken/venue/v1/venue_service_rpc";
import {
  CreateEventRequestSchema,
  type CreateEventRequest,
  type CreateEventResponse,
} from "@tickettoken/contracts/tickettoken/event/v1/event_service_pb";
import type { Venue } from "@tickettoken/contracts/tickettoken/venue/v1/venue_service_pb";
import type { Logger } from "@tickettoken/rpc";
import { idempotencyKeyOf, tenantOf, userOf } from "../../shared/context.ts";
import { failedPrecondition, notFound } from "../../shared/errors.ts";
import { newId } from "../../shared/ids.ts";
import { validate } from "../../shared/validate.ts";
import type { EventRow, EventStore, TicketTypeRow } from "../store.ts";
import { toEvent, toTicketType } from "./to-proto.ts";

/** Oldest venue answer a degraded CreateEvent may rely on. */
export const VENUE_STALE_MAX_AGE_MS = 5 * 60_000;

const MAX_TICKET_TYPES = 20;
const MAX_CAPACITY = 1_000_000;
const MAX_PRICE_MINOR = 100_000_000_00n;

export interface CreateEventDeps {
  readonly store: EventStore;
  readonly venues: VenueServiceClient;
  readonly logger: Logger;
  now(): Date;
}

function validateRequest(req: CreateEventRequest, now: Date): void {
  const v = validate().id("venue_id", req.venueId).text("name", req.name, 200).optionalText("description", req.description, 5000);
  v.range("capacity", req.capacity, 0, MAX_CAPACITY);
  const starts = req.startsAt && timestampDate(req.startsAt);
  const ends = req.endsAt && timestampDate(req.endsAt);
  if (!starts) v.fail("starts_at", "required");
  else v.check(starts.getTime() > now.getTime(), "starts_at", "must be in the future");
  if (!ends) v.fail("ends_at", "required");
  else if (starts) v.check(ends.getTime() > starts.getTime(), "ends_at", "must be after starts_at");
  v.check(req.ticketTypes.length >= 1 && req.ticketTypes.length <= MAX_TICKET_TYPES, "ticket_types", `between 1 and ${MAX_TICKET_TYPES}`);
  const names = new Set<string>();
  req.ticketTypes.forEach((t, i) => {
    v.text(`ticket_types[${i}].name`, t.name, 100)
      .range(`ticket_types[${i}].price_minor`, t.priceMinor, 0n, MAX_PRICE_MINOR)
      .currency(`ticket_types[${i}].currency`, t.currency)
      .range(`ticket_types[${i}].quantity`, t.quantity, 1, MAX_CAPACITY);
    v.check(!names.has(t.name), `ticket_types[${i}].name`, "must be unique within the event");
    names.add(t.name);
  });
  const total = req.ticketTypes.reduce((n, t) => n + t.quantity, 0);
  if (req.capacity > 0) v.check(total <= req.capacity, "ticket_types", "quantities add up to more than capacity");
  v.done();
}

function requestHash(req: CreateEventRequest): string {
  return createHash("sha256").update(toBinary(CreateEventRequestSchema, req)).digest("base64url");
}

function response(store: EventStore, event: EventRow): CreateEventResponse {
  return {
    $typeName: "tickettoken.event.v1.CreateEventResponse",
    event: toEvent(event),
    ticketTypes: store.ticketTypes(event.tenantId, event.id).map(toTicketType),
    venueStale: event.venueStale,
  };
}

/** The venue's answers for this user, or the error our caller gets (never the downstream's own). */
async function checkVenue(venues: VenueServiceClient, tenantId: string, venueId: string, userId: string): Promise<{ venue: Venue; stale: boolean }> {
  const access = await venues.validateVenueAccess({ tenantId, venueId, userId });
  if (!access.hasAccess) {
    if (!access.venue) throw notFound("venue");
    if (!access.venue.isActive) throw failedPrecondition("venue is inactive");
    throw new ConnectError("user may not create events at this venue", Code.PermissionDenied);
  }
  let found;
  try {
    found = await venues.getVenue({ tenantId, venueId });
  } catch (err) {
    // Gone between the two calls: our own NOT_FOUND; anything else stays a dependency failure.
    if (err instanceof ConnectError && err.code === Code.NotFound) throw notFound("venue");
    throw err;
  }
  if (!found.venue) throw notFound("venue");
  return { venue: found.venue, stale: staleAge(access) !== undefined || staleAge(found) !== undefined };
}

export async function createEvent(deps: CreateEventDeps, req: CreateEventRequest, ctx: HandlerContext): Promise<CreateEventResponse> {
  const { store } = deps;
  validateRequest(req, deps.now());
  const tenantId = tenantOf(ctx);
  const userId = userOf(ctx);
  if (userId === undefined) throw new ConnectError("creating an event needs an acting user in the context token", Code.PermissionDenied);
  const key = idempotencyKeyOf(ctx);
  const hash = requestHash(req);
  const replay = (existing: EventRow): CreateEventResponse => {
    if (existing.requestHash !== hash) throw failedPrecondition("idempotency key was used for a different request");
    return response(store, existing);
  };
  // A retry of a call that already wrote its event (the framework's dedupe forgets on restart; the row does not).
  const earlier = key === undefined ? undefined : store.eventByIdempotencyKey(tenantId, key);
  if (earlier) return replay(earlier);

  const { venue, stale } = await checkVenue(deps.venues, tenantId, req.venueId, userId);
  if (req.capacity > venue.capacity) throw failedPrecondition("capacity exceeds the venue's capacity");
  const capacity = req.capacity > 0 ? req.capacity : venue.capacity;
  if (req.ticketTypes.reduce((n, t) => n + t.quantity, 0) > capacity) throw failedPrecondition("ticket quantities exceed the venue's capacity");

  const at = deps.now().toISOString();
  const id = newId("evt");
  const event: EventRow = {
    tenantId, id, venueId: venue.id, name: req.name.trim(), description: req.description, shortDescription: "", eventType: "",
    status: "draft", visibility: "public", startsAt: timestampDate(req.startsAt!).toISOString(), endsAt: timestampDate(req.endsAt!).toISOString(),
    doorsOpen: undefined, timezone: venue.timezone, capacity, isVirtual: false, isHybrid: false, eventPda: "", merkleTreeAddress: "",
    collectionMint: "", artistWallet: "", artistPercentage: 0, venuePercentage: 0, platformPercentage: 0, resaleable: true,
    maxResalePricePercentage: 0, cancellationPolicy: "", refundPolicy: "", createdBy: userId, venueStale: stale, idempotencyKey: key,
    requestHash: hash, createdAt: at, updatedAt: at, publishedAt: undefined,
  };
  const types: TicketTypeRow[] = req.ticketTypes.map((t, i) => ({
    tenantId, id: newId("tt"), eventId: id, position: i, name: t.name, priceMinor: t.priceMinor, currency: t.currency, quantity: t.quantity,
  }));
  try {
    store.insertEvent(event, types);
  } catch (err) {
    // The same key written meanwhile by another instance: answer its result.
    const raced = key === undefined ? undefined : store.eventByIdempotencyKey(tenantId, key);
    if (raced) return replay(raced);
    throw err;
  }
  deps.logger.info({ eventId: id, venueId: venue.id, venueStale: stale }, "event created");
  return response(store, event);
}
