/**
 * venue-service's internal RPC surface: venue lookups and the access check
 * event-service makes before it creates an event. Reads only.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { VenueServiceContract } from "@tickettoken/contracts/tickettoken/venue/v1/venue_service_rpc";
import { VenueSchema, type Venue } from "@tickettoken/contracts/tickettoken/venue/v1/venue_service_pb";
import { tenantOf, userOf } from "../shared/context.ts";
import { notFound } from "../shared/errors.ts";
import { validate } from "../shared/validate.ts";
import type { VenueRow, VenueStore } from "./store.ts";

/** Roles that may manage a venue (create events at it). */
const MANAGERS = new Set(["owner", "manager"]);

function toVenue(r: VenueRow): Venue {
  return create(VenueSchema, {
    id: r.id,
    tenantId: r.tenantId,
    name: r.name,
    slug: r.slug,
    address: { line1: r.line1, line2: r.line2, city: r.city, region: r.region, postalCode: r.postalCode, country: r.country },
    capacity: r.capacity,
    venueType: r.venueType,
    timezone: r.timezone,
    isActive: r.isActive,
    refundPolicyHours: r.refundPolicyHours,
    createdAt: timestampFromDate(new Date(r.createdAt)),
    updatedAt: timestampFromDate(new Date(r.updatedAt)),
  });
}

export function venueService(store: VenueStore): ServiceRegistration {
  return implement(VenueServiceContract, {
    getVenue(req, ctx) {
      validate().id("venue_id", req.venueId).done();
      const venue = store.getVenue(tenantOf(ctx), req.venueId);
      if (!venue) throw notFound("venue");
      return { venue: toVenue(venue) };
    },
    validateVenueAccess(req, ctx) {
      validate().id("venue_id", req.venueId).optionalId("user_id", req.userId).done();
      const tenantId = tenantOf(ctx);
      // The acting user is the context token's; a request may only restate it.
      const contextUser = userOf(ctx);
      if (req.userId !== "" && req.userId !== contextUser) {
        throw new ConnectError("user_id does not match the context user", Code.PermissionDenied);
      }
      const venue = store.getVenue(tenantId, req.venueId);
      if (!venue) return { hasAccess: false, reason: "venue not found" };
      if (!venue.isActive) return { hasAccess: false, reason: "venue inactive", venue: toVenue(venue) };
      if (req.userId !== "") {
        const role = store.staffRole(tenantId, venue.id, req.userId);
        if (!role || !MANAGERS.has(role)) return { hasAccess: false, reason: "user may not manage this venue", venue: toVenue(venue) };
      }
      return { hasAccess: true, reason: "", venue: toVenue(venue) };
    },
  });
}
