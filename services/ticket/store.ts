/**
 * ticket-service's storage port and its in-memory default. Every lookup is
 * keyed by tenant: a ticket of tenant A is invisible to a call of tenant B.
 */
import type { Ticket } from "../../src/gen/tickettoken/ticket/v1/ticket_service_pb.ts";

export interface TicketStore {
  get(tenantId: string, ticketId: string): Ticket | undefined;
  listByEvent(tenantId: string, eventId: string): Iterable<Ticket>;
  countByOrder(tenantId: string, orderId: string): number;
}

export function createMemoryTicketStore(tickets: readonly Ticket[] = []): TicketStore {
  const byTenant = new Map<string, Map<string, Ticket>>();
  for (const t of tickets) {
    const m = byTenant.get(t.tenantId) ?? new Map<string, Ticket>();
    m.set(t.id, t);
    byTenant.set(t.tenantId, m);
  }
  const all = (tenantId: string) => byTenant.get(tenantId)?.values() ?? [].values();
  return {
    get: (tenantId, ticketId) => byTenant.get(tenantId)?.get(ticketId),
    *listByEvent(tenantId, eventId) {
      for (const t of all(tenantId)) if (t.eventId === eventId) yield t;
    },
    countByOrder(tenantId, orderId) {
      let n = 0;
      for (const t of all(tenantId)) if (t.orderId === orderId) n++;
      return n;
    },
  };
}
