/**
 * What every configuration serves and calls, so the four differ only in the
 * stack around the handler: TicketService.GetTicketStatus (unary; the small
 * case and, with a 64 KiB ticket_id echoed back, the large one) and
 * TicketService.ListTicketsByEvent (server streaming, STREAM_MESSAGES per call).
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  GetTicketStatusRequestSchema,
  GetTicketStatusResponseSchema,
  ListTicketsByEventRequestSchema,
  ListTicketsByEventResponseSchema,
  TicketService,
  TicketStatus,
  type GetTicketStatusRequest,
  type GetTicketStatusResponse,
  type ListTicketsByEventRequest,
  type ListTicketsByEventResponse,
} from "../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";

export const CONFIGS = ["a", "b", "c", "d", "e"] as const;
export type ConfigId = (typeof CONFIGS)[number];
export const CONFIG_NAMES: Record<ConfigId, string> = {
  a: "bare grpc-js",
  b: "grpc-js + jose JWT interceptors",
  c: "bare connect-node",
  d: "tt-rpc full path",
  e: "grpc-js + channel-bound MAC token (prototype)",
};

export const STREAM_MESSAGES = 1000;
export const LARGE_BYTES = 64 * 1024;
export const TENANT = "bench-tenant";
/** Unary callers are payment-service, streaming callers scanning-service: what the contract allows. */
export const UNARY_CALLER = "payment-service";
export const STREAM_CALLER = "scanning-service";
export const SERVER = "ticket-service";

export { TicketService };

export function statusOf(req: GetTicketStatusRequest): GetTicketStatusResponse {
  return create(GetTicketStatusResponseSchema, { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true });
}

/** One message per ticket; built once, the stream is the cost measured, not the handler. */
const streamItem = create(ListTicketsByEventResponseSchema, {
  ticket: { id: "0b6f3c7e-2f0a-4a8e-9d0b-5a1f2f0c1d2e", tenantId: TENANT, eventId: "e-1", status: TicketStatus.SOLD, ticketNumber: "A-0001" },
  qrCode: "qr:0b6f3c7e-2f0a-4a8e-9d0b-5a1f2f0c1d2e",
});
export async function* ticketsOf(_req: ListTicketsByEventRequest): AsyncGenerator<ListTicketsByEventResponse> {
  for (let i = 0; i < STREAM_MESSAGES; i++) yield streamItem;
}
export const streamItemMessage = streamItem;

export const smallRequest = create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "0b6f3c7e-2f0a-4a8e-9d0b-5a1f2f0c1d2e" });
export const largeRequest = create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "x".repeat(LARGE_BYTES) });
export const streamRequest = create(ListTicketsByEventRequestSchema, { tenantId: TENANT, eventId: "e-1" });

/** grpc-js (de)serializers from protobuf-es: the same encoder every configuration uses. */
function codec<D extends DescMessage>(schema: D) {
  return {
    serialize: (m: MessageShape<D>) => Buffer.from(toBinary(schema, m)),
    deserialize: (b: Buffer) => fromBinary(schema, b),
  };
}
const statusReq = codec(GetTicketStatusRequestSchema);
const statusRes = codec(GetTicketStatusResponseSchema);
const listReq = codec(ListTicketsByEventRequestSchema);
const listRes = codec(ListTicketsByEventResponseSchema);

export const UNARY_PATH = "/tickettoken.ticket.v1.TicketService/GetTicketStatus";
export const STREAM_PATH = "/tickettoken.ticket.v1.TicketService/ListTicketsByEvent";

/** The grpc-js service definition (a hand-written peer would use @grpc/proto-loader or this). */
export const grpcDefinition = {
  getTicketStatus: {
    path: UNARY_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: statusReq.serialize,
    requestDeserialize: statusReq.deserialize,
    responseSerialize: statusRes.serialize,
    responseDeserialize: statusRes.deserialize,
  },
  listTicketsByEvent: {
    path: STREAM_PATH,
    requestStream: false,
    responseStream: true,
    requestSerialize: listReq.serialize,
    requestDeserialize: listReq.deserialize,
    responseSerialize: listRes.serialize,
    responseDeserialize: listRes.deserialize,
  },
} as const;

/** The SPIFFE URI SAN of a peer certificate (hand-rolled peers check identity this way). */
export function uriSan(subjectaltname: string | undefined): string | undefined {
  const m = subjectaltname?.match(/URI:(spiffe:\/\/[^,\s]+)/);
  return m?.[1];
}
