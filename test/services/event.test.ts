/**
 * event-service over mTLS through its generated client: every RPC, success and
 * error paths, tenant isolation. CreateEvent runs against the REAL venue module
 * (access and capacity checks, keyed retries, a restart on a file database),
 * then with venue-service stopped: a recently seen venue is served stale
 * (venue_stale) until the breaker opens, and a venue never seen is UNAVAILABLE.
 * GetEventScanStats reads ticket counts from a small fake ticket-service
 * (GetEventTicketStats is built by another helper).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { timestampFromDate, timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type CallOptions, type HandlerContext } from "@connectrpc/connect";
import { createEventServiceClient, type EventServiceClient } from "../../src/contracts/gen/tickettoken/event/v1/event_service_rpc.ts";
import { CreateEventRequestSchema, EventStatus, type CreateEventRequest } from "../../src/contracts/gen/tickettoken/event/v1/event_service_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { create } from "@bufbuild/protobuf";
import { callContext } from "../../src/runtime/auth/call-context.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { ResilienceRegistry, resilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { eventModule } from "../../services/event/index.ts";
import { venueModule } from "../../services/venue/index.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, rpcAddressEnv, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

let pki: TestPki;
let venue: ServiceHarness;
let event: ServiceHarness;
let ticketFake: RpcServer;
let minting: EventServiceClient;
let gateway: EventServiceClient;
let tmp: string;
let clock = new Date("2026-12-01T12:00:00Z");
const ticketCalls: { tenantId: string | undefined; eventId: string }[] = [];

function env(): NodeJS.ProcessEnv {
  return { ...rpcAddressEnv("venue-service", venue.address), ...rpcAddressEnv("ticket-service", `127.0.0.1:${ticketFake.port}`) };
}

beforeAll(async () => {
  pki = await createTestPki();
  tmp = mkdtempSync(join(tmpdir(), "tt-event-"));
  venue = await startService(pki, venueModule);
  ticketFake = await createServer({
    identity: await pki.material("ticket-service"),
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        getEventTicketStats(req, ctx: HandlerContext) {
          ticketCalls.push({ tenantId: callContext(ctx).tenantId, eventId: req.eventId });
          return {
            eventId: req.eventId, totalTickets: 700, soldTickets: 550, usedTickets: 110, transferredTickets: 5, cancelledTickets: 20,
            validatedTickets: 110, lastValidationAt: timestampFromDate(new Date("2026-11-30T21:00:00Z")),
          };
        },
      }),
    ],
  });
  event = await startService(pki, eventModule, { env: env(), now: () => clock });
  minting = await event.client("minting-service", createEventServiceClient);
  gateway = await event.client("api-gateway", createEventServiceClient);
}, 30_000);

afterAll(async () => {
  await event?.stop();
  await venue?.stop();
  await ticketFake?.stop(1000);
  pki?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const read = (tenantId = ACME) => event.as(tenantId, "u-1", ["events:read"]);

async function write(tenantId: string, userId: string, key: string, harness = event): Promise<CallOptions> {
  const opts = await harness.as(tenantId, userId, ["events:write"]);
  return { ...opts, headers: { ...(opts.headers as Record<string, string>), "idempotency-key": key } };
}

interface EventOverrides {
  tenantId?: string;
  venueId?: string;
  name?: string;
  startsAt?: Timestamp;
  capacity?: number;
  ticketTypes?: { name: string; priceMinor: bigint; currency: string; quantity: number }[];
}

function newEvent(overrides: EventOverrides = {}): CreateEventRequest {
  return create(CreateEventRequestSchema, {
    tenantId: ACME,
    venueId: "v-1",
    name: "Acme Spring Gala",
    description: "An evening of music",
    startsAt: timestampFromDate(new Date("2027-03-01T19:00:00Z")),
    endsAt: timestampFromDate(new Date("2027-03-01T23:00:00Z")),
    capacity: 0,
    ticketTypes: [
      { name: "GA", priceMinor: 5000n, currency: "USD", quantity: 400 },
      { name: "VIP", priceMinor: 20000n, currency: "USD", quantity: 50 },
    ],
    ...overrides,
  });
}

function countEvents(harness: ServiceHarness, where = "1 = 1", ...params: string[]): number {
  return (harness.service.runtime.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE ${where}`).get(...params) as { n: number }).n;
}

describe("event-service GetEvent", () => {
  it("returns the tenant's event with its blockchain fields", async () => {
    const res = await minting.getEvent({ tenantId: ACME, eventId: "e-1" }, await read());
    expect(res.event).toMatchObject({
      id: "e-1", tenantId: ACME, venueId: "v-1", name: "Acme Summer Concert", status: EventStatus.PUBLISHED, capacity: 1100,
      eventPda: "EvtPda1111111111111111111111111111111111111", artistPercentage: 5, venuePercentage: 3, resaleable: true,
    });
    expect(timestampDate(res.event!.startsAt!).toISOString()).toBe("2027-06-01T19:00:00.000Z");
  });

  it("another tenant's event is NOT_FOUND; a bad id INVALID_ARGUMENT; no events:read scope PERMISSION_DENIED", async () => {
    expect((await callError(minting.getEvent({ tenantId: GLOBEX, eventId: "e-1" }, await read(GLOBEX)))).code).toBe(Code.NotFound);
    const bad = await callError(minting.getEvent({ tenantId: ACME, eventId: "" }, await read()));
    expect(violatedFields(bad)).toEqual(["event_id"]);
    expect((await callError(minting.getEvent({ tenantId: ACME, eventId: "e-1" }, await event.as(ACME, "u-1", [])))).code).toBe(Code.PermissionDenied);
  });
});

describe("event-service GetEventPda", () => {
  it("returns the on-chain configuration, and says when it is incomplete", async () => {
    const full = await minting.getEventPda({ tenantId: ACME, eventId: "e-1" }, await read());
    expect(full).toMatchObject({ eventId: "e-1", venueId: "v-1", status: EventStatus.PUBLISHED, hasBlockchainConfig: true });
    expect(full.blockchain).toMatchObject({ artistWallet: "ArtWa11et1111111111111111111111111111111111", platformPercentage: 2.5, maxResalePricePercentage: 150 });
    const partial = await minting.getEventPda({ tenantId: GLOBEX, eventId: "e-g1" }, await read(GLOBEX));
    expect(partial).toMatchObject({ hasBlockchainConfig: false });
    expect(partial.blockchain?.eventPda).toBe("EvtPdaG111111111111111111111111111111111111");
  });

  it("an unknown event is NOT_FOUND", async () => {
    expect((await callError(minting.getEventPda({ tenantId: ACME, eventId: "e-404" }, await read()))).code).toBe(Code.NotFound);
  });
});

describe("event-service GetEventScanStats", () => {
  it("joins the event, ticket-service's counts, derived metrics and timing (injected clock)", async () => {
    const scanner = await event.client("scanning-service", createEventServiceClient);
    const res = await scanner.getEventScanStats({ tenantId: ACME, eventId: "e-1" }, await read());
    expect(ticketCalls.at(-1)).toEqual({ tenantId: ACME, eventId: "e-1" });
    expect(res.event).toMatchObject({ id: "e-1", capacity: 1100, timezone: "America/New_York", name: "Acme Summer Concert" });
    expect(res.ticketStats).toMatchObject({ totalTickets: 700, soldTickets: 550, validatedTickets: 110, cancelledTickets: 20 });
    expect(res.metrics).toMatchObject({ entryRatePercent: 20, capacityUtilizationPercent: 50, availableCapacity: 550 });
    const untilStart = Math.trunc((Date.parse("2027-06-01T19:00:00Z") - clock.getTime()) / 60_000);
    expect(res.timing).toMatchObject({ isUpcoming: true, isOngoing: false, isPast: false, doorsAreOpen: false, minutesUntilStart: untilStart });

    const before = clock;
    try {
      clock = new Date("2027-06-01T20:00:00Z"); // an hour in: doors opened at 18:00
      const live = await scanner.getEventScanStats({ tenantId: ACME, eventId: "e-1" }, await read());
      expect(live.timing).toMatchObject({ isUpcoming: false, isOngoing: true, isPast: false, doorsAreOpen: true, minutesUntilStart: -60, minutesSinceEnd: -180 });
    } finally {
      clock = before;
    }
  });

  it("ticket-service unreachable is UNAVAILABLE, not a partial answer", async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const isolated = await startService(pki, eventModule, {
      env: { ...env(), ...rpcAddressEnv("ticket-service", `127.0.0.1:${closedPort}`) },
      // Its own breakers, so this outage does not touch the file's other tests.
      resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }) },
    });
    try {
      const client = await isolated.client("scanning-service", createEventServiceClient);
      const err = await callError(client.getEventScanStats({ tenantId: ACME, eventId: "e-1" }, await isolated.as(ACME, "u-1", ["events:read"])));
      expect(err.code).toBe(Code.Unavailable);
    } finally {
      await isolated.stop();
    }
  });

  it("another tenant's event is NOT_FOUND without asking ticket-service", async () => {
    const calls = ticketCalls.length;
    const err = await callError(minting.getEventScanStats({ tenantId: GLOBEX, eventId: "e-1" }, await read(GLOBEX)));
    expect(err.code).toBe(Code.NotFound);
    expect(ticketCalls.length).toBe(calls);
  });
});

describe("event-service CreateEvent (real venue-service)", () => {
  it("creates a draft event with the venue's capacity and time zone, and its ticket types", async () => {
    const res = await gateway.createEvent(newEvent(), await write(ACME, "admin-1", "create-1"));
    expect(res.venueStale).toBe(false);
    expect(res.event).toMatchObject({ tenantId: ACME, venueId: "v-1", status: EventStatus.DRAFT, capacity: 5000, timezone: "America/New_York" });
    expect(res.ticketTypes.map((t) => [t.name, t.priceMinor, t.quantity])).toEqual([["GA", 5000n, 400], ["VIP", 20000n, 50]]);
    const read1 = await minting.getEvent({ tenantId: ACME, eventId: res.event!.id }, await read());
    expect(read1.event?.name).toBe("Acme Spring Gala");
  });

  it("a keyed retry answers the first result and writes one event", async () => {
    const before = countEvents(event);
    const first = await gateway.createEvent(newEvent({ name: "Retry Night" }), await write(ACME, "admin-1", "create-retry"));
    const again = await gateway.createEvent(newEvent({ name: "Retry Night" }), await write(ACME, "admin-1", "create-retry"));
    expect(again.event?.id).toBe(first.event?.id);
    expect(countEvents(event)).toBe(before + 1);
    expect(countEvents(event, "idempotency_key = ?", "create-retry")).toBe(1);
    const ticketTypes = event.service.runtime.db.prepare("SELECT COUNT(*) AS n FROM ticket_types WHERE event_id = ?").get(first.event!.id) as { n: number };
    expect(ticketTypes.n).toBe(2);
    // The same key for a different request is refused, and writes nothing.
    const err = await callError(gateway.createEvent(newEvent({ name: "Other Night" }), await write(ACME, "admin-1", "create-retry")));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(countEvents(event)).toBe(before + 1);
  });

  it("refuses a user who may not manage the venue (PERMISSION_DENIED), another tenant's venue (NOT_FOUND), an inactive venue", async () => {
    const denied = await callError(gateway.createEvent(newEvent(), await write(ACME, "u-1", "deny-1")));
    expect(denied.code).toBe(Code.PermissionDenied);
    expect(denied.rawMessage).toBe("user may not create events at this venue");
    const foreign = await callError(gateway.createEvent(newEvent({ tenantId: GLOBEX }), await write(GLOBEX, "admin-g1", "foreign-1")));
    expect(foreign.code).toBe(Code.NotFound);
    const otherTenantsVenue = await callError(gateway.createEvent(newEvent({ venueId: "v-g1" }), await write(ACME, "admin-1", "foreign-2")));
    expect(otherTenantsVenue.code).toBe(Code.NotFound);
    const inactive = await callError(gateway.createEvent(newEvent({ venueId: "v-2" }), await write(ACME, "admin-1", "inactive-1")));
    expect(inactive.code).toBe(Code.FailedPrecondition);
    expect(countEvents(event, "idempotency_key IN ('deny-1', 'foreign-1', 'foreign-2', 'inactive-1')")).toBe(0);
  });

  it("capacity above the venue's is FAILED_PRECONDITION; bad fields are INVALID_ARGUMENT by name", async () => {
    const tooBig = await callError(gateway.createEvent(newEvent({ capacity: 6000 }), await write(ACME, "admin-1", "cap-1")));
    expect(tooBig.code).toBe(Code.FailedPrecondition);
    const bad = await callError(
      gateway.createEvent(
        newEvent({
          name: "",
          startsAt: timestampFromDate(new Date("2026-01-01T00:00:00Z")),
          ticketTypes: [{ name: "GA", priceMinor: -1n, currency: "usd", quantity: 0 }],
        }),
        await write(ACME, "admin-1", "bad-1"),
      ),
    );
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["name", "starts_at", "ticket_types[0].price_minor", "ticket_types[0].currency", "ticket_types[0].quantity"]);
    const noTypes = await callError(gateway.createEvent(newEvent({ ticketTypes: [] }), await write(ACME, "admin-1", "bad-2")));
    expect(violatedFields(noTypes)).toEqual(["ticket_types"]);
  });

  it("only api-gateway with events:write may create", async () => {
    const opts = await write(ACME, "admin-1", "scope-1");
    const noScope = await event.as(ACME, "admin-1", ["events:read"]);
    expect((await callError(gateway.createEvent(newEvent(), { ...noScope, headers: { ...(noScope.headers as object), "idempotency-key": "s-2" } }))).code).toBe(Code.PermissionDenied);
    expect((await callError(minting.createEvent(newEvent(), opts))).code).toBe(Code.PermissionDenied);
  });

  it("a keyed retry after a restart (file database) answers the first event and writes nothing", async () => {
    const database = join(tmp, "event.db");
    let durable = await startService(pki, eventModule, { env: env(), now: () => clock, database });
    let first;
    try {
      const client = await durable.client("api-gateway", createEventServiceClient);
      first = await client.createEvent(newEvent({ name: "Durable Night" }), await write(ACME, "admin-1", "restart-1", durable));
    } finally {
      await durable.stop();
    }
    durable = await startService(pki, eventModule, { env: env(), now: () => clock, database });
    try {
      const client = await durable.client("api-gateway", createEventServiceClient);
      // First after the restart, so the stored row (not the framework's in-memory dedupe) refuses the key for another request.
      const err = await callError(client.createEvent(newEvent({ name: "Another Night" }), await write(ACME, "admin-1", "restart-1", durable)));
      expect(err.code).toBe(Code.FailedPrecondition);
      const again = await client.createEvent(newEvent({ name: "Durable Night" }), await write(ACME, "admin-1", "restart-1", durable));
      expect(again.event?.id).toBe(first.event?.id);
      expect(again.ticketTypes.map((t) => t.id)).toEqual(first.ticketTypes.map((t) => t.id));
      expect(countEvents(durable, "idempotency_key = ?", "restart-1")).toBe(1);

    } finally {
      await durable.stop();
    }
  });
});

describe("event-service CreateEvent with venue-service stopped", () => {
  it("serves the recently seen venue flagged stale, opens the breaker, and is UNAVAILABLE for a venue never seen", async () => {
    // Seen while venue-service is up: fills the fallback caches for (ACME, v-1, admin-1).
    const fresh = await gateway.createEvent(newEvent({ name: "Before Outage" }), await write(ACME, "admin-1", "outage-0"));
    expect(fresh.venueStale).toBe(false);
    await venue.stop();

    const breaker = () => resilienceRegistry().list().find((b) => b.target === "venue-service");
    const staleEvents: string[] = [];
    for (let i = 1; i <= 12 && breaker()?.state !== "open"; i++) {
      const res = await gateway.createEvent(newEvent({ name: `Outage ${i}` }), await write(ACME, "admin-1", `outage-${i}`));
      expect(res.venueStale).toBe(true);
      expect(res.event?.capacity).toBe(5000);
      staleEvents.push(res.event!.id);
    }
    expect(breaker()?.state).toBe("open");
    // With the breaker open the stale copy still answers, without a network attempt.
    const open = await gateway.createEvent(newEvent({ name: "Breaker Open" }), await write(ACME, "admin-1", "outage-open"));
    expect(open.venueStale).toBe(true);
    const row = event.service.runtime.db.prepare("SELECT venue_stale FROM events WHERE id = ?").get(open.event!.id) as { venue_stale: number };
    expect(row.venue_stale).toBe(1);
    expect(staleEvents.length).toBeGreaterThan(0);

    // Nothing cached for GLOBEX's venue: no stale answer, UNAVAILABLE, nothing written.
    const before = countEvents(event);
    const err = await callError(gateway.createEvent(newEvent({ tenantId: GLOBEX, venueId: "v-g1" }), await write(GLOBEX, "admin-g1", "outage-unseen")));
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.code).toBe(Code.Unavailable);
    expect(countEvents(event)).toBe(before);
  }, 60_000);
});
