/** What ticket-service's handlers are built from. */
import type { ServiceImpl } from "@connectrpc/connect";
import type { TicketService } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import type { OrderServiceClient } from "@tickettoken/contracts/tickettoken/order/v1/order_service_rpc";
import type { MintingServiceClient } from "@tickettoken/contracts/tickettoken/minting/v1/minting_service_rpc";
import type { Logger } from "@tickettoken/rpc";
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
