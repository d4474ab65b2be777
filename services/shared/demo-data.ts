/**
 * The demo data set every service seeds its own part of on first start, so
 * the ids line up across services: two tenants, their users and admins,
 * venues, events with ticket types, and one completed purchase (order o-1,
 * payment pay-1, tickets t-1..t-3) so every read method finds something.
 *
 * Ids are stable (READMEs and grpcurl examples use them); rows created at
 * run time get random ids.
 */
export const ACME = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
export const GLOBEX = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";

export const DEMO = {
  tenants: [
    { id: ACME, name: "Acme Live", slug: "acme" },
    { id: GLOBEX, name: "Globex Events", slug: "globex" },
  ],
  users: [
    { id: "u-1", tenantId: ACME, email: "alice@acme.test", firstName: "Alice", lastName: "Archer", role: "customer", phone: "+15550100001" },
    { id: "u-2", tenantId: ACME, email: "bob@acme.test", firstName: "Bob", lastName: "Baker", role: "customer", phone: "+15550100002" },
    { id: "admin-1", tenantId: ACME, email: "ops@acme.test", firstName: "Ada", lastName: "Admin", role: "admin", phone: "+15550100003" },
    { id: "u-g1", tenantId: GLOBEX, email: "carol@globex.test", firstName: "Carol", lastName: "Chen", role: "customer", phone: "+15550200001" },
    { id: "admin-g1", tenantId: GLOBEX, email: "ops@globex.test", firstName: "Gus", lastName: "Grant", role: "admin", phone: "+15550200002" },
  ],
  venues: [
    { id: "v-1", tenantId: ACME, name: "Acme Arena", slug: "acme-arena", capacity: 5000, venueType: "arena", timezone: "America/New_York", isActive: true, city: "New York", region: "NY", country: "US" },
    { id: "v-2", tenantId: ACME, name: "Acme Cellar", slug: "acme-cellar", capacity: 200, venueType: "club", timezone: "America/New_York", isActive: false, city: "New York", region: "NY", country: "US" },
    { id: "v-g1", tenantId: GLOBEX, name: "Globex Hall", slug: "globex-hall", capacity: 1200, venueType: "theater", timezone: "America/Chicago", isActive: true, city: "Chicago", region: "IL", country: "US" },
  ],
  /** (venue, user, role): who may manage a venue. */
  venueStaff: [
    { venueId: "v-1", userId: "admin-1", role: "manager" },
    { venueId: "v-g1", userId: "admin-g1", role: "manager" },
  ],
  events: [
    { id: "e-1", tenantId: ACME, venueId: "v-1", name: "Acme Summer Concert", startsAt: "2027-06-01T19:00:00Z", endsAt: "2027-06-01T23:00:00Z", status: "published", eventPda: "EvtPda1111111111111111111111111111111111111" },
    { id: "e-g1", tenantId: GLOBEX, venueId: "v-g1", name: "Globex Winter Play", startsAt: "2027-01-20T20:00:00Z", endsAt: "2027-01-20T22:30:00Z", status: "published", eventPda: "EvtPdaG111111111111111111111111111111111111" },
  ],
  ticketTypes: [
    { id: "tt-ga", tenantId: ACME, eventId: "e-1", name: "General Admission", priceMinor: 4500, currency: "USD", quantity: 1000 },
    { id: "tt-vip", tenantId: ACME, eventId: "e-1", name: "VIP", priceMinor: 15000, currency: "USD", quantity: 100 },
    { id: "tt-g-std", tenantId: GLOBEX, eventId: "e-g1", name: "Standard", priceMinor: 3000, currency: "USD", quantity: 500 },
  ],
  /** One completed purchase per tenant: order -> payment -> tickets (t-3 already scanned). */
  orders: [
    { id: "o-1", tenantId: ACME, userId: "u-1", eventId: "e-1", ticketTypeId: "tt-ga", quantity: 3, unitPriceMinor: 4500, currency: "USD", status: "confirmed", paymentId: "pay-1" },
    { id: "o-g1", tenantId: GLOBEX, userId: "u-g1", eventId: "e-g1", ticketTypeId: "tt-g-std", quantity: 1, unitPriceMinor: 3000, currency: "USD", status: "confirmed", paymentId: "pay-g1" },
  ],
  payments: [
    { id: "pay-1", tenantId: ACME, orderId: "o-1", userId: "u-1", amountMinor: 13500, currency: "USD", status: "succeeded", providerIntentId: "pi_demo_1" },
    { id: "pay-g1", tenantId: GLOBEX, orderId: "o-g1", userId: "u-g1", amountMinor: 3000, currency: "USD", status: "succeeded", providerIntentId: "pi_demo_g1" },
  ],
  tickets: [
    { id: "t-1", tenantId: ACME, eventId: "e-1", ticketTypeId: "tt-ga", orderId: "o-1", userId: "u-1", status: "sold", number: "TKT-0001", priceMinor: 4500, tokenId: "Mint111111111111111111111111111111111111111" },
    { id: "t-2", tenantId: ACME, eventId: "e-1", ticketTypeId: "tt-ga", orderId: "o-1", userId: "u-1", status: "sold", number: "TKT-0002", priceMinor: 4500, tokenId: "" },
    { id: "t-3", tenantId: ACME, eventId: "e-1", ticketTypeId: "tt-ga", orderId: "o-1", userId: "u-1", status: "used", number: "TKT-0003", priceMinor: 4500, tokenId: "" },
    { id: "t-g1", tenantId: GLOBEX, eventId: "e-g1", ticketTypeId: "tt-g-std", orderId: "o-g1", userId: "u-g1", status: "sold", number: "TKT-G001", priceMinor: 3000, tokenId: "" },
  ],
  /** Seeded mint: t-1 is already an NFT. */
  mints: [{ ticketId: "t-1", tenantId: ACME, mintAddress: "Mint111111111111111111111111111111111111111", signature: "sig-demo-t-1" }],
} as const;
