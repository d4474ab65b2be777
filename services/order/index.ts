/** order-service: orders and their lines; calls ticket-service (prices) and payment-service (payment). */
import { createTicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { createPaymentServiceClient } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_rpc";
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { orderService } from "./handlers.ts";
import { seedOrders } from "./seed.ts";
import { createSqliteOrderStore } from "./store.ts";

export const orderModule: ServiceModule = {
  name: "order-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedOrders,
  create: (rt) =>
    orderService({
      store: createSqliteOrderStore(rt.db),
      tickets: rt.client(createTicketServiceClient),
      payments: rt.client(createPaymentServiceClient),
      logger: rt.logger,
      now: () => rt.now(),
    }),
};
