/**
 * payment-service: payment intents, captures, refunds, marketplace escrow,
 * venue payouts and tax. Calls ticket-service (payment outcome, refund
 * checks, ticket cancellation). The processor is the local fake by default
 * (services/payment/processor.ts); a deployment passes a real adapter to
 * createPaymentModule.
 */
import { createTicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import type { Database } from "../shared/database.ts";
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { paymentService } from "./handlers/index.ts";
import { createFakeProcessor, type PaymentProcessor } from "./processor.ts";
import { seedPayments } from "./seed.ts";
import { createSqlitePaymentStore } from "./store.ts";

export function createPaymentModule(makeProcessor: (db: Database, now: () => Date) => PaymentProcessor = createFakeProcessor): ServiceModule {
  return {
    name: "payment-service",
    migrationsDir: migrationsNextTo(import.meta.url),
    seed: seedPayments,
    create: (rt) =>
      paymentService({
        db: rt.db,
        store: createSqlitePaymentStore(rt.db),
        processor: makeProcessor(rt.db, () => rt.now()),
        tickets: rt.client(createTicketServiceClient),
        logger: rt.logger,
        now: () => rt.now(),
      }),
  };
}

export const paymentModule: ServiceModule = createPaymentModule();
