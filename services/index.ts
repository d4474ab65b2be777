/**
 * The platform services' RPC implementations, by workload name. Each module
 * brings its schema (migrations), its demo data and its handlers; the host
 * process (tt-rpc serve, the mesh, a test) gives it a database and identity.
 * Every contract has one (test/services/coverage.test.ts checks it).
 */
import type { ServiceName } from "@tickettoken/rpc";
import type { ServiceModule } from "./shared/runtime.ts";
import { venueModule } from "./venue/index.ts";
import { ticketModule } from "./ticket/index.ts";
import { paymentModule } from "./payment/index.ts";
import { orderModule } from "./order/index.ts";
import { mintingModule } from "./minting/index.ts";
import { authModule } from "./auth/index.ts";
import { eventModule } from "./event/index.ts";
import { notificationModule } from "./notification/index.ts";

export const serviceModules: Partial<Record<ServiceName, ServiceModule>> = {
  "auth-service": authModule,
  "venue-service": venueModule,
  "event-service": eventModule,
  "ticket-service": ticketModule,
  "payment-service": paymentModule,
  "order-service": orderModule,
  "minting-service": mintingModule,
  "notification-service": notificationModule,
};
