/**
 * Every service's generated client calls a real HTTP/2 + mTLS server on
 * 127.0.0.1 and gets a typed response: one server per service, each with its
 * own certificate from our PKI tool; each call made by a caller the contract
 * allows, with a per-call token and a signed context token. The handler sees
 * the verified caller, tenant and user.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthServiceContract, createAuthServiceClient } from "../../src/contracts/gen/tickettoken/auth/v1/auth_service_rpc.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { EventServiceContract, createEventServiceClient } from "../../src/contracts/gen/tickettoken/event/v1/event_service_rpc.ts";
import { PaymentServiceContract, createPaymentServiceClient } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_rpc.ts";
import { VenueServiceContract, createVenueServiceClient } from "../../src/contracts/gen/tickettoken/venue/v1/venue_service_rpc.ts";
import { OrderServiceContract, createOrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { MintingServiceContract, createMintingServiceClient } from "../../src/contracts/gen/tickettoken/minting/v1/minting_service_rpc.ts";
import {
  NotificationServiceContract,
  createNotificationServiceClient,
} from "../../src/contracts/gen/tickettoken/notification/v1/notification_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { PaymentStatus } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_pb.ts";
import { MintStatus } from "../../src/contracts/gen/tickettoken/minting/v1/minting_service_pb.ts";
import { OrderStatus } from "../../src/contracts/gen/tickettoken/order/v1/order_service_pb.ts";
import { NotificationStatus } from "../../src/contracts/gen/tickettoken/notification/v1/notification_service_pb.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement, type ServiceRegistration } from "../../src/runtime/server/routes.ts";
import { closeClient, type ServiceClientOptions } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { callContext, type VerifiedCallContext } from "../../src/runtime/auth/call-context.ts";
import type { HandlerContext } from "@connectrpc/connect";
import type { ServiceName, WorkloadName } from "../../src/runtime/identity/workloads.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";
let pki: TestPki;
const servers: RpcServer[] = [];
const clients: object[] = [];
const seen = new Map<string, VerifiedCallContext>();
const addresses = new Map<string, string>();
let contextToken: string;

/** Records what the handler saw, keyed by method. */
function saw(method: string, ctx: HandlerContext): void {
  seen.set(method, callContext(ctx));
}

async function serve(name: ServiceName, registration: ServiceRegistration): Promise<void> {
  const server = await createServer({ identity: await pki.material(name), port: 0, logger: silentLogger(), services: [registration] });
  servers.push(server);
  addresses.set(name, `127.0.0.1:${server.port}`);
}

async function opts(target: ServiceName, caller: WorkloadName): Promise<ServiceClientOptions> {
  return { identity: await pki.material(caller), address: addresses.get(target)! };
}

function track<T extends object>(c: T): T {
  clients.push(c);
  return c;
}

/** Every call carries the edge's context token. */
const ctxHeader = () => ({ headers: { "tt-context": contextToken } });
/** Keyed (mutating) methods also carry an idempotency key; the server's dedupe step requires one. */
const keyedHeader = (key: string) => ({ headers: { "tt-context": contextToken, "idempotency-key": key } });

beforeAll(async () => {
  pki = await createTestPki();
  contextToken = await pki.contextToken({ tenantId: TENANT, userId: USER, scopes: ["events:read"] });
  await Promise.all([
    serve("auth-service", implement(AuthServiceContract, {
      getUser: (req, ctx) => (saw("getUser", ctx), { user: { id: req.userId, tenantId: req.tenantId, email: "ada@example.com", role: "customer" } }),
    })),
    serve("ticket-service", implement(TicketServiceContract, {
      getTicketStatus: (req, ctx) => (saw("getTicketStatus", ctx), { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
    })),
    serve("event-service", implement(EventServiceContract, {
      getEvent: (req, ctx) => (saw("getEvent", ctx), { event: { id: req.eventId, tenantId: req.tenantId, name: "Jazz Night", resaleable: true, artistPercentage: 7.5 } }),
    })),
    serve("payment-service", implement(PaymentServiceContract, {
      getPaymentStatus: (req, ctx) => (saw("getPaymentStatus", ctx), { paymentId: req.paymentId, status: PaymentStatus.COMPLETED }),
    })),
    serve("venue-service", implement(VenueServiceContract, {
      getVenue: (req, ctx) => (saw("getVenue", ctx), { venue: { id: req.venueId, tenantId: req.tenantId, name: "Blue Hall", capacity: 1200 } }),
    })),
    serve("order-service", implement(OrderServiceContract, {
      getOrder: (req, ctx) => (saw("getOrder", ctx), { order: { id: req.orderId, tenantId: req.tenantId, status: OrderStatus.PAID, total: { amountMinor: 4200n, currency: "USD" } } }),
    })),
    serve("minting-service", implement(MintingServiceContract, {
      getMintStatus: (req, ctx) => (saw("getMintStatus", ctx), { ticketId: req.ticketId, status: MintStatus.CONFIRMED, mintAddress: "So1anaMint" }),
    })),
    serve("notification-service", implement(NotificationServiceContract, {
      sendEmail: (_req, ctx) => (saw("sendEmail", ctx), { notificationId: "n-1", status: NotificationStatus.QUEUED }),
    })),
  ]);
});

afterAll(async () => {
  clients.forEach(closeClient);
  await Promise.all(servers.map((s) => s.stop(1000)));
  pki?.cleanup();
});

function expectContext(method: string, caller: WorkloadName): void {
  const ctx = seen.get(method);
  expect(ctx, `${method} handler did not run`).toBeDefined();
  expect(ctx!.caller).toEqual({ spiffeId: `spiffe://tickettoken.internal/ns/dev/sa/${caller}`, workload: caller, env: "dev" });
  expect(ctx!.tenantId).toBe(TENANT);
  expect(ctx!.userId).toBe(USER);
}

describe("generated clients over real HTTP/2 + mTLS servers", () => {
  it("auth-service: GetUser", async () => {
    const res = await track(createAuthServiceClient(await opts("auth-service", "order-service"))).getUser({ tenantId: TENANT, userId: "u-1" }, ctxHeader());
    expectContext("getUser", "order-service");
    expect(res.user?.id).toBe("u-1");
    expect(res.user?.email).toBe("ada@example.com");
    expect(res.$typeName).toBe("tickettoken.auth.v1.GetUserResponse");
  });

  it("ticket-service: GetTicketStatus", async () => {
    const res = await track(createTicketServiceClient(await opts("ticket-service", "payment-service"))).getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctxHeader());
    expectContext("getTicketStatus", "payment-service");
    expect(res.status).toBe(TicketStatus.SOLD);
    expect(res.canRefund).toBe(true);
  });

  it("event-service: GetEvent", async () => {
    const res = await track(createEventServiceClient(await opts("event-service", "minting-service"))).getEvent({ tenantId: TENANT, eventId: "e-1" }, ctxHeader());
    expectContext("getEvent", "minting-service");
    expect(res.event).toMatchObject({ id: "e-1", tenantId: TENANT, name: "Jazz Night", resaleable: true, artistPercentage: 7.5 });
  });

  it("payment-service: GetPaymentStatus", async () => {
    const res = await track(createPaymentServiceClient(await opts("payment-service", "ticket-service"))).getPaymentStatus({ tenantId: TENANT, paymentId: "p-1" }, ctxHeader());
    expectContext("getPaymentStatus", "ticket-service");
    expect(res.status).toBe(PaymentStatus.COMPLETED);
  });

  it("venue-service: GetVenue", async () => {
    const res = await track(createVenueServiceClient(await opts("venue-service", "event-service"))).getVenue({ tenantId: TENANT, venueId: "v-1" }, ctxHeader());
    expectContext("getVenue", "event-service");
    expect(res.venue?.capacity).toBe(1200);
  });

  it("order-service: GetOrder (int64 money survives the wire)", async () => {
    const res = await track(createOrderServiceClient(await opts("order-service", "ticket-service"))).getOrder({ tenantId: TENANT, orderId: "o-1" }, ctxHeader());
    expectContext("getOrder", "ticket-service");
    expect(res.order?.status).toBe(OrderStatus.PAID);
    expect(res.order?.total).toMatchObject({ amountMinor: 4200n, currency: "USD" });
  });

  it("minting-service: GetMintStatus", async () => {
    const res = await track(createMintingServiceClient(await opts("minting-service", "ticket-service"))).getMintStatus({ tenantId: TENANT, ticketId: "t-1" }, ctxHeader());
    expectContext("getMintStatus", "ticket-service");
    expect(res.status).toBe(MintStatus.CONFIRMED);
    expect(res.mintAddress).toBe("So1anaMint");
  });

  it("notification-service: SendEmail", async () => {
    const res = await track(createNotificationServiceClient(await opts("notification-service", "auth-service"))).sendEmail({ tenantId: TENANT, to: "ada@example.com", template: { name: "welcome" } }, keyedHeader("welcome-ada"));
    expectContext("sendEmail", "auth-service");
    expect(res.status).toBe(NotificationStatus.QUEUED);
  });

  it("an unimplemented method answers UNIMPLEMENTED", async () => {
    const client = track(createTicketServiceClient(await opts("ticket-service", "scanning-service")));
    await expect(client.recordScan({ tenantId: TENANT, ticketId: "t-1" }, keyedHeader("scan-t-1"))).rejects.toMatchObject({ code: 12 });
  });
});
