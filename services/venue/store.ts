/**
 * venue-service's storage port and its SQLite implementation. Every query is
 * keyed by tenant: another tenant's venue does not exist for the caller.
 */
import type { Database } from "../shared/database.ts";

export interface VenueRow {
  readonly tenantId: string;
  readonly id: string;
  readonly name: string;
  readonly slug: string;
  readonly line1: string;
  readonly line2: string;
  readonly city: string;
  readonly region: string;
  readonly postalCode: string;
  readonly country: string;
  readonly capacity: number;
  readonly venueType: string;
  readonly timezone: string;
  readonly isActive: boolean;
  readonly refundPolicyHours: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type StaffRole = "owner" | "manager" | "staff";

export interface VenueStore {
  getVenue(tenantId: string, venueId: string): VenueRow | undefined;
  /** The user's role at the venue, if any. */
  staffRole(tenantId: string, venueId: string, userId: string): StaffRole | undefined;
  insertVenue(venue: VenueRow): void;
  addStaff(tenantId: string, venueId: string, userId: string, role: StaffRole): void;
}

interface VenueRecord {
  tenant_id: string;
  id: string;
  name: string;
  slug: string;
  line1: string;
  line2: string;
  city: string;
  region: string;
  postal_code: string;
  country: string;
  capacity: number;
  venue_type: string;
  timezone: string;
  is_active: number;
  refund_policy_hours: number;
  created_at: string;
  updated_at: string;
}

export function createSqliteVenueStore(db: Database): VenueStore {
  const getVenue = db.prepare("SELECT * FROM venues WHERE tenant_id = ? AND id = ?");
  const staffRole = db.prepare("SELECT role FROM venue_staff WHERE tenant_id = ? AND venue_id = ? AND user_id = ?");
  const insertVenue = db.prepare(`INSERT INTO venues (tenant_id, id, name, slug, line1, line2, city, region, postal_code, country,
    capacity, venue_type, timezone, is_active, refund_policy_hours, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const addStaff = db.prepare("INSERT INTO venue_staff (tenant_id, venue_id, user_id, role) VALUES (?, ?, ?, ?)");
  return {
    getVenue(tenantId, venueId) {
      const r = getVenue.get(tenantId, venueId) as VenueRecord | undefined;
      return r && {
        tenantId: r.tenant_id,
        id: r.id,
        name: r.name,
        slug: r.slug,
        line1: r.line1,
        line2: r.line2,
        city: r.city,
        region: r.region,
        postalCode: r.postal_code,
        country: r.country,
        capacity: r.capacity,
        venueType: r.venue_type,
        timezone: r.timezone,
        isActive: r.is_active === 1,
        refundPolicyHours: r.refund_policy_hours,
        createdAt: r.created_at,
        updatedAt: r.updated_at,
      };
    },
    staffRole(tenantId, venueId, userId) {
      return (staffRole.get(tenantId, venueId, userId) as { role: StaffRole } | undefined)?.role;
    },
    insertVenue(v) {
      insertVenue.run(v.tenantId, v.id, v.name, v.slug, v.line1, v.line2, v.city, v.region, v.postalCode, v.country,
        v.capacity, v.venueType, v.timezone, v.isActive ? 1 : 0, v.refundPolicyHours, v.createdAt, v.updatedAt);
    },
    addStaff(tenantId, venueId, userId, role) {
      addStaff.run(tenantId, venueId, userId, role);
    },
  };
}
