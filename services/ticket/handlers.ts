/**
 * ticket-service's internal RPC surface (the read side so far). Tenant comes
 * from the verified call context, never from the request alone: the framework
 * has already checked the request's tenant_id against it.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { implement, type ServiceRegistration } from "../../src/server/routes.ts";
import { TicketServiceContract } from "../../src/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { TicketStore } from "./store.ts";

const REFUNDABLE = new Set([TicketStatus.SOLD, TicketStatus.RESERVED]);

export function ticketService(store: TicketStore): ServiceRegistration {
  return implement(TicketServiceContract, {
    getTicketStatus(req) {
      const t = store.get(req.tenantId, req.ticketId);
      if (!t) throw new ConnectError("ticket not found", Code.NotFound);
      return {
        ticketId: t.id,
        status: t.status,
        userId: t.userId,
        hasBeenTransferred: t.transferCount > 0,
        nftMinted: t.isMinted,
        isUsed: t.status === TicketStatus.USED,
        ...(t.validatedAt ? { validatedAt: t.validatedAt } : {}),
        canRefund: REFUNDABLE.has(t.status) && t.transferCount === 0,
      };
    },
    async *listTicketsByEvent(req, ctx) {
      for (const ticket of store.listByEvent(req.tenantId, req.eventId)) {
        if (ctx.signal.aborted) return;
        if (req.status !== TicketStatus.UNSPECIFIED && ticket.status !== req.status) continue;
        yield { ticket };
      }
    },
    countOrderTickets(req) {
      const count = store.countByOrder(req.tenantId, req.orderId);
      return { orderId: req.orderId, count, hasTickets: count > 0 };
    },
  });
}
