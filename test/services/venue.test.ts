/**
 * venue-service over mTLS through its generated client: every RPC, success and
 * error paths, tenant isolation, user from the context token only.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { createVenueServiceClient, type VenueServiceClient } from "../../src/contracts/gen/tickettoken/venue/v1/venue_service_rpc.ts";
import { venueModule } from "../../services/venue/index.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

let pki: TestPki;
let venue: ServiceHarness;
let events: VenueServiceClient;

beforeAll(async () => {
  pki = await createTestPki();
  venue = await startService(pki, venueModule);
  events = await venue.client("event-service", createVenueServiceClient);
});

afterAll(async () => {
  await venue?.stop();
  pki?.cleanup();
});

describe("venue-service GetVenue", () => {
  it("returns the tenant's seeded venue", async () => {
    const res = await events.getVenue({ tenantId: ACME, venueId: "v-1" }, await venue.as(ACME));
    expect(res.venue).toMatchObject({ id: "v-1", tenantId: ACME, name: "Acme Arena", capacity: 5000, isActive: true });
    expect(res.venue?.address?.city).toBe("New York");
  });

  it("another tenant's venue is NOT_FOUND", async () => {
    const err = await callError(events.getVenue({ tenantId: GLOBEX, venueId: "v-1" }, await venue.as(GLOBEX)));
    expect(err.code).toBe(Code.NotFound);
  });

  it("a malformed id is INVALID_ARGUMENT naming the field", async () => {
    const err = await callError(events.getVenue({ tenantId: ACME, venueId: "" }, await venue.as(ACME)));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["venue_id"]);
  });
});

describe("venue-service ValidateVenueAccess", () => {
  it("grants a venue manager, with the venue", async () => {
    const res = await events.validateVenueAccess({ tenantId: ACME, venueId: "v-1", userId: "admin-1" }, await venue.as(ACME, "admin-1"));
    expect(res).toMatchObject({ hasAccess: true, reason: "" });
    expect(res.venue?.id).toBe("v-1");
  });

  it("denies a customer, an inactive venue and a missing venue, saying why", async () => {
    const customer = await events.validateVenueAccess({ tenantId: ACME, venueId: "v-1", userId: "u-1" }, await venue.as(ACME, "u-1"));
    expect(customer).toMatchObject({ hasAccess: false, reason: "user may not manage this venue" });
    const inactive = await events.validateVenueAccess({ tenantId: ACME, venueId: "v-2" }, await venue.as(ACME, "admin-1"));
    expect(inactive).toMatchObject({ hasAccess: false, reason: "venue inactive" });
    const missing = await events.validateVenueAccess({ tenantId: GLOBEX, venueId: "v-1" }, await venue.as(GLOBEX, "admin-g1"));
    expect(missing).toMatchObject({ hasAccess: false, reason: "venue not found" });
    expect(missing.venue).toBeUndefined();
  });

  it("a user id other than the context user's is PERMISSION_DENIED", async () => {
    const err = await callError(events.validateVenueAccess({ tenantId: ACME, venueId: "v-1", userId: "admin-1" }, await venue.as(ACME, "u-1")));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});
