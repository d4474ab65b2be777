/** venue-service's part of the demo data set (services/shared/demo-data.ts). */
import type { Database } from "../shared/database.ts";
import { DEMO } from "../shared/demo-data.ts";
import { createSqliteVenueStore } from "./store.ts";

export function seedVenues(db: Database, now: Date): void {
  const store = createSqliteVenueStore(db);
  const at = now.toISOString();
  for (const v of DEMO.venues) {
    store.insertVenue({
      tenantId: v.tenantId, id: v.id, name: v.name, slug: v.slug, line1: "1 Main St", line2: "", city: v.city, region: v.region,
      postalCode: "10001", country: v.country, capacity: v.capacity, venueType: v.venueType, timezone: v.timezone,
      isActive: v.isActive, refundPolicyHours: 24, createdAt: at, updatedAt: at,
    });
  }
  for (const s of DEMO.venueStaff) {
    const venue = DEMO.venues.find((v) => v.id === s.venueId)!;
    store.addStaff(venue.tenantId, s.venueId, s.userId, s.role);
  }
}
