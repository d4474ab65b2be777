/**
 * A small stand-in for ticket-service in payment-service's tests (the real
 * one is built in parallel): a real mTLS server answering the four methods
 * payment-service calls, and counting what it received, per idempotency key,
 * so a test can prove a keyed notice reached it and was applied once.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { CancelTicketOutcome } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { TestPki } from "../support/pki.ts";

export interface FakeTicket {
  readonly orderId: string;
  readonly canRefund: boolean;
}

export interface PaymentNotice {
  readonly method: "succeeded" | "failed";
  readonly key: string | null;
  readonly bodyKey: string;
  readonly orderId: string;
  readonly paymentId: string;
  readonly amountMinor?: bigint;
}

export interface TicketFake {
  readonly server: RpcServer;
  readonly address: string;
  /** Tickets GetTicketForRefund knows (id -> order, eligibility); others are NOT_FOUND. */
  readonly tickets: Map<string, FakeTicket>;
  /** Every HandlePaymentSucceeded/Failed call the handler ran, refused ones included. */
  readonly received: PaymentNotice[];
  /** Notices applied (handler ran and answered OK), by idempotency key. */
  readonly applied: Map<string, number>;
  readonly cancelled: { ticketIds: string[]; refundId: string }[];
  readonly refundLookups: string[];
  /** While true, payment notices answer UNAVAILABLE (ticket-service down). */
  down: boolean;
  /** While true, CancelTicketsBatch answers UNAVAILABLE. */
  cancelDown: boolean;
  stop(): Promise<void>;
}

export async function startTicketFake(pki: TestPki): Promise<TicketFake> {
  const fake = {
    tickets: new Map<string, FakeTicket>(),
    received: [] as PaymentNotice[],
    applied: new Map<string, number>(),
    cancelled: [] as { ticketIds: string[]; refundId: string }[],
    refundLookups: [] as string[],
    down: false,
    cancelDown: false,
  };
  const apply = (key: string | null) => {
    if (fake.down) throw new ConnectError("ticket-service down", Code.Unavailable);
    fake.applied.set(key ?? "", (fake.applied.get(key ?? "") ?? 0) + 1);
  };
  const server = await createServer({
    identity: await pki.material("ticket-service"),
    host: "127.0.0.1",
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        handlePaymentSucceeded(req, ctx) {
          const key = ctx.requestHeader.get("idempotency-key");
          fake.received.push({ method: "succeeded", key, bodyKey: req.idempotencyKey, orderId: req.orderId, paymentId: req.paymentId, amountMinor: req.amount?.amountMinor });
          apply(key);
          return { orderId: req.orderId, ticketIds: ["t-new-1"], duplicate: false };
        },
        handlePaymentFailed(req, ctx) {
          const key = ctx.requestHeader.get("idempotency-key");
          fake.received.push({ method: "failed", key, bodyKey: req.idempotencyKey, orderId: req.orderId, paymentId: req.paymentId });
          apply(key);
          return { orderId: req.orderId, reservationReleased: true, duplicate: false };
        },
        getTicketForRefund(req) {
          fake.refundLookups.push(req.ticketId);
          const t = fake.tickets.get(req.ticketId);
          if (!t) throw new ConnectError("ticket not found", Code.NotFound);
          return {
            ticket: { id: req.ticketId, tenantId: req.tenantId, orderId: t.orderId },
            refundEligibility: { canRefund: t.canRefund, reasons: t.canRefund ? [] : ["Ticket has been used"] },
          };
        },
        cancelTicketsBatch(req) {
          if (fake.cancelDown) throw new ConnectError("ticket-service down", Code.Unavailable);
          fake.cancelled.push({ ticketIds: [...req.ticketIds], refundId: req.refundId });
          return { results: req.ticketIds.map((ticketId) => ({ ticketId, outcome: CancelTicketOutcome.CANCELLED })) };
        },
      }),
    ],
  });
  return Object.assign(fake, {
    server,
    address: `127.0.0.1:${server.port}`,
    stop: () => server.stop(1000),
  });
}
