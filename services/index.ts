/**
 * The platform services' RPC implementations, by workload name. The mesh
 * serves every contract; a service listed here answers with its handlers
 * (in-memory stores seeded with demo data), the others answer UNIMPLEMENTED
 * until their implementation lands.
 */
import type { ServiceRegistration } from "../src/server/routes.ts";
import type { ServiceName } from "../src/identity/workloads.ts";
import { ticketService } from "./ticket/handlers.ts";
import { createMemoryTicketStore } from "./ticket/store.ts";
import { demoTickets } from "./ticket/seed.ts";

export type ServiceFactory = () => ServiceRegistration;

export const implementations: Partial<Record<ServiceName, ServiceFactory>> = {
  "ticket-service": () => ticketService(createMemoryTicketStore(demoTickets())),
};
