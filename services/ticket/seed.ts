/** Demo data for the local mesh, so a first grpcurl call has something to find. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { TicketSchema, TicketStatus, type Ticket } from "../../src/gen/tickettoken/ticket/v1/ticket_service_pb.ts";

export const DEMO_TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
export const DEMO_EVENT = "e-1";

export function demoTickets(): Ticket[] {
  const purchasedAt = timestampFromDate(new Date("2026-11-01T18:00:00Z"));
  return [1, 2, 3].map((n) =>
    create(TicketSchema, {
      id: `t-${n}`,
      tenantId: DEMO_TENANT,
      eventId: DEMO_EVENT,
      ticketTypeName: "General Admission",
      userId: "u-1",
      orderId: "o-1",
      status: n === 3 ? TicketStatus.USED : TicketStatus.SOLD,
      ticketNumber: `TKT-000${n}`,
      price: { amountMinor: 4500n, currency: "USD" },
      isTransferable: true,
      purchasedAt,
    }),
  );
}
