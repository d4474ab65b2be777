/**
 * ticket-service's internal RPC surface: every method of the contract, from
 * the read, change and payment handler groups (handlers/*.ts).
 */
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { TicketServiceContract } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { changeHandlers } from "./handlers/changes.ts";
import type { TicketDeps } from "./handlers/deps.ts";
import { paymentHandlers } from "./handlers/payments.ts";
import { readHandlers } from "./handlers/reads.ts";

export type { TicketDeps } from "./handlers/deps.ts";

export function ticketService(deps: TicketDeps): ServiceRegistration {
  return implement(TicketServiceContract, { ...readHandlers(deps), ...changeHandlers(deps), ...paymentHandlers(deps) });
}
