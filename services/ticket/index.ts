/**
 * ticket-service: ticket types, tickets and their life cycle (issue on
 * payment, transfer, scan, refund cancel, NFT fields). Downstream:
 * order-service (GetOrder, to issue a paid order's tickets) and
 * minting-service (MintTicket per issued ticket).
 */
import { createMintingServiceClient } from "@tickettoken/contracts/tickettoken/minting/v1/minting_service_rpc";
import { createOrderServiceClient } from "@tickettoken/contracts/tickettoken/order/v1/order_service_rpc";
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { ticketService } from "./handlers.ts";
import { seedTickets } from "./seed.ts";
import { createSqliteTicketStore } from "./store.ts";

export const ticketModule: ServiceModule = {
  name: "ticket-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedTickets,
  create: (rt) =>
    ticketService({
      db: rt.db,
      store: createSqliteTicketStore(rt.db),
      logger: rt.logger,
      now: () => rt.now(),
      orders: rt.client(createOrderServiceClient),
      minting: rt.client(createMintingServiceClient),
    }),
};
