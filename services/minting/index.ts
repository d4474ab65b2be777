/**
 * minting-service: one mint per ticket on Solana (a local fake adapter by
 * default); calls ticket-service (UpdateNft) and event-service (GetEventPda).
 */
import { createTicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { createEventServiceClient } from "@tickettoken/contracts/tickettoken/event/v1/event_service_rpc";
import { migrationsNextTo, type ServiceModule } from "../shared/runtime.ts";
import { mintingService } from "./handlers.ts";
import { createMinter } from "./minter.ts";
import { seedMints } from "./seed.ts";
import { createFakeSolana, fakeConfirmationMs } from "./solana.ts";
import { createSqliteMintStore } from "./store.ts";

export const mintingModule: ServiceModule = {
  name: "minting-service",
  migrationsDir: migrationsNextTo(import.meta.url),
  seed: seedMints,
  create(rt) {
    const store = createSqliteMintStore(rt.db);
    const solana = createFakeSolana(rt.db, () => rt.now(), fakeConfirmationMs(rt.env));
    const tickets = rt.client(createTicketServiceClient);
    const minter = createMinter({ store, solana, tickets, logger: rt.logger, now: () => rt.now() });
    return mintingService({ store, minter, solana, events: rt.client(createEventServiceClient), logger: rt.logger });
  },
};
