/**
 * Every service's generated client calls a real HTTP/2 server on 127.0.0.1
 * and gets a typed response: one method per service, handlers built from the
 * generated contracts, one server hosting all eight.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AuthServiceContract, createAuthServiceClient } from "../../src/gen/tickettoken/auth/v1/auth_service_rpc.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { EventServiceContract, createEventServiceClient } from "../../src/gen/tickettoken/event/v1/event_service_rpc.ts";
import { PaymentServiceContract, createPaymentServiceClient } from "../../src/gen/tickettoken/payment/v1/payment_service_rpc.ts";
import { VenueServiceContract, createVenueServiceClient } from "../../src/gen/tickettoken/venue/v1/venue_service_rpc.ts";
import { OrderServiceContract, createOrderServiceClient } from "../../src/gen/tickettoken/order/v1/order_service_rpc.ts";
import { MintingServiceContract, createMintingServiceClient } from "../../src/gen/tickettoken/minting/v1/minting_service_rpc.ts";
import {
  NotificationServiceContract,
  createNotificationServiceClient,
} from "../../src/gen/tickettoken/notification/v1/notification_service_rpc.ts";
import { TicketStatus } from "../../src/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { PaymentStatus } from "../../src/gen/tickettoken/payment/v1/payment_service_pb.ts";
import { MintStatus } from "../../src/gen/tickettoken/minting/v1/minting_service_pb.ts";
import { OrderStatus } from "../../src/gen/tickettoken/order/v1/order_service_pb.ts";
import { NotificationStatus } from "../../src/gen/tickettoken/notification/v1/notification_service_pb.ts";
import { createServer, type RpcServer } from "../../src/server/server.ts";
import { implement } from "../../src/server/routes.ts";
import { closeClient, type ServiceClientOptions } from "../../src/client/service-client.ts";
import { silentLogger } from "../../src/observability/logger.ts";

const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
let server: RpcServer;
let opts: ServiceClientOptions;
const clients: object[] = [];
function track<T extends object>(c: T): T {
  clients.push(c);
  return c;
}

beforeAll(async () => {
  server = await createServer({
    port: 0,
    tls: "plaintext",
    logger: silentLogger(),
    services: [
      implement(AuthServiceContract, {
        getUser: (req) => ({ user: { id: req.userId, tenantId: req.tenantId, email: "ada@example.com", role: "customer" } }),
      }),
      implement(TicketServiceContract, {
        getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
      }),
      implement(EventServiceContract, {
        getEvent: (req) => ({ event: { id: req.eventId, tenantId: req.tenantId, name: "Jazz Night", resaleable: true, artistPercentage: 7.5 } }),
      }),
      implement(PaymentServiceContract, {
        getPaymentStatus: (req) => ({ paymentId: req.paymentId, status: PaymentStatus.COMPLETED }),
      }),
      implement(VenueServiceContract, {
        getVenue: (req) => ({ venue: { id: req.venueId, tenantId: req.tenantId, name: "Blue Hall", capacity: 1200 } }),
      }),
      implement(OrderServiceContract, {
        getOrder: (req) => ({ order: { id: req.orderId, tenantId: req.tenantId, status: OrderStatus.PAID, total: { amountMinor: 4200n, currency: "USD" } } }),
      }),
      implement(MintingServiceContract, {
        getMintStatus: (req) => ({ ticketId: req.ticketId, status: MintStatus.CONFIRMED, mintAddress: "So1anaMint" }),
      }),
      implement(NotificationServiceContract, {
        sendEmail: () => ({ notificationId: "n-1", status: NotificationStatus.QUEUED }),
      }),
    ],
  });
  opts = { address: `127.0.0.1:${server.port}`, tls: "plaintext" };
});

afterAll(async () => {
  clients.forEach(closeClient);
  await server?.stop(1000);
});

describe("generated clients over a real HTTP/2 server", () => {
  it("auth-service: GetUser", async () => {
    const res = await track(createAuthServiceClient(opts)).getUser({ tenantId: TENANT, userId: "u-1" });
    expect(res.user?.id).toBe("u-1");
    expect(res.user?.email).toBe("ada@example.com");
    expect(res.$typeName).toBe("tickettoken.auth.v1.GetUserResponse");
  });

  it("ticket-service: GetTicketStatus", async () => {
    const res = await track(createTicketServiceClient(opts)).getTicketStatus({ tenantId: TENANT, ticketId: "t-1" });
    expect(res.status).toBe(TicketStatus.SOLD);
    expect(res.canRefund).toBe(true);
  });

  it("event-service: GetEvent", async () => {
    const res = await track(createEventServiceClient(opts)).getEvent({ tenantId: TENANT, eventId: "e-1" });
    expect(res.event).toMatchObject({ id: "e-1", tenantId: TENANT, name: "Jazz Night", resaleable: true, artistPercentage: 7.5 });
  });

  it("payment-service: GetPaymentStatus", async () => {
    const res = await track(createPaymentServiceClient(opts)).getPaymentStatus({ tenantId: TENANT, paymentId: "p-1" });
    expect(res.status).toBe(PaymentStatus.COMPLETED);
  });

  it("venue-service: GetVenue", async () => {
    const res = await track(createVenueServiceClient(opts)).getVenue({ tenantId: TENANT, venueId: "v-1" });
    expect(res.venue?.capacity).toBe(1200);
  });

  it("order-service: GetOrder (int64 money survives the wire)", async () => {
    const res = await track(createOrderServiceClient(opts)).getOrder({ tenantId: TENANT, orderId: "o-1" });
    expect(res.order?.status).toBe(OrderStatus.PAID);
    expect(res.order?.total).toMatchObject({ amountMinor: 4200n, currency: "USD" });
  });

  it("minting-service: GetMintStatus", async () => {
    const res = await track(createMintingServiceClient(opts)).getMintStatus({ tenantId: TENANT, ticketId: "t-1" });
    expect(res.status).toBe(MintStatus.CONFIRMED);
    expect(res.mintAddress).toBe("So1anaMint");
  });

  it("notification-service: SendEmail", async () => {
    const res = await track(createNotificationServiceClient(opts)).sendEmail({ tenantId: TENANT, to: "ada@example.com", template: { name: "welcome" } });
    expect(res.status).toBe(NotificationStatus.QUEUED);
  });

  it("an unimplemented method answers UNIMPLEMENTED", async () => {
    await expect(track(createTicketServiceClient(opts)).recordScan({ tenantId: TENANT, ticketId: "t-1" })).rejects.toMatchObject({ code: 12 });
  });
});
