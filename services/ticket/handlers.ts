/**
 * ticket-service's internal RPC surface: every method of the contract, from
 * the read, change and payment handler groups (handlers/*.ts).
 */
import { implement, type ServiceRegistration } from "../../src/server/routes.ts";
import { TicketServiceContract } from "../../src/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { changeHandlers } from "./handlers/changes.ts";
import type { TicketDeps } from "./handlers/deps.ts";
import { paymentHandlers } from "./handlers/payments.ts";
import { readHandlers } from "./handlers/reads.ts";

export type { TicketDeps } from "./handlers/deps.ts";

export function ticketService(deps: TicketDeps): ServiceRegistration {
  return implement(TicketServiceContract, { ...readHandlers(deps), ...changeHandlers(deps), ...paymentHandlers(deps) });
}
