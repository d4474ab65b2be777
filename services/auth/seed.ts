/**
 * auth-service's part of the demo data set (services/shared/demo-data.ts):
 * tenants, users and venue staff from the shared set, plus what only auth
 * knows: the roles and their permissions per tenant, explicit grants,
 * verification flags, and one deleted account (never returned by any read).
 */
import type { Database } from "../shared/database.ts";
import { ACME, DEMO } from "../shared/demo-data.ts";
import { createSqliteAuthStore } from "./store.ts";

/** Roles every demo tenant has; "*" grants everything. */
export const DEMO_ROLES: Readonly<Record<string, readonly string[]>> = {
  customer: ["events:read", "tickets:purchase", "tickets:read", "tickets:transfer"],
  venue_staff: ["events:read", "tickets:read", "tickets:scan"],
  venue_manager: ["events:read", "events:write", "tickets:read", "tickets:scan", "venues:read", "venues:write"],
  admin: ["*"],
};

/** A user of ACME who deleted their account: present in the table, absent from every answer. */
export const DELETED_USER = { id: "u-deleted", email: "gone@acme.test" };

/** Users whose email is not verified yet (every other demo user's is). */
const UNVERIFIED = new Set(["u-2"]);

export function seedAuth(db: Database, now: Date): void {
  const store = createSqliteAuthStore(db);
  const at = now.toISOString();
  for (const t of DEMO.tenants) {
    store.insertTenant(t);
    for (const [role, permissions] of Object.entries(DEMO_ROLES)) store.insertRole(t.id, role, permissions);
  }
  for (const u of DEMO.users) {
    store.insertUser({
      tenantId: u.tenantId, id: u.id, email: u.email, firstName: u.firstName, lastName: u.lastName, role: u.role,
      emailVerified: !UNVERIFIED.has(u.id), mfaEnabled: u.role === "admin", createdAt: at, updatedAt: at,
    });
  }
  store.insertUser({
    tenantId: ACME, id: DELETED_USER.id, email: DELETED_USER.email, firstName: "Gone", lastName: "User", role: "customer",
    emailVerified: true, mfaEnabled: false, createdAt: at, updatedAt: at, deletedAt: at,
  });
  // Bob may also resell on the marketplace, beyond what customers may do.
  store.grantPermission(ACME, "u-2", "marketplace:sell");
  for (const s of DEMO.venueStaff) {
    const venue = DEMO.venues.find((v) => v.id === s.venueId)!;
    store.setVenueRole(venue.tenantId, s.userId, s.venueId, s.role);
  }
}
