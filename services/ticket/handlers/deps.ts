/** What ticket-service's handlers are built from. */
import type { ServiceImpl } from "@connectrpc/connect";
import type { TicketService } from "../../../src/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { OrderServiceClient } from "../../../src/gen/tickettoken/order/v1/order_service_rpc.ts";
import type { MintingServiceClient } from "../../../src/gen/tickettoken/minting/v1/minting_service_rpc.ts";
import type { Logger } from "../../../src/observability/logger.ts";
import type { Database } from "../../shared/database.ts";
import type { TicketStore } from "../store.ts";

export interface TicketDeps {
  readonly db: Database;
  readonly store: TicketStore;
  readonly logger: Logger;
  now(): Date;
  readonly orders: OrderServiceClient;
  readonly minting: MintingServiceClient;
}

export type TicketHandlers = Partial<ServiceImpl<typeof TicketService>>;
