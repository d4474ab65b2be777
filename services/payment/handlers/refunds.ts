/**
 * Refunds. The amount is reserved first (a `pending` refund row, written in
 * the same transaction that checks the payment's remaining amount, so
 * concurrent refunds can never add up past it), then the processor pays it
 * back, then ticket-service cancels the refunded tickets, then the refund is
 * marked succeeded. A crash or a failed downstream call leaves the refund
 * pending; the retry with the same idempotency key finds it and finishes it
 * (every step is keyed or idempotent).
 */
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import type { CreateRefundRequest } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import { CancelTicketOutcome } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import { tenantOf } from "../../shared/context.ts";
import { transaction } from "../../shared/database.ts";
import { failedPrecondition, notFound } from "../../shared/errors.ts";
import { validate } from "../../shared/validate.ts";
import type { PaymentRow, PaymentState, RefundRow } from "../store.ts";
import { keyConflict, keyedId, keyOf, money, requiredMoney, toRefund, type PaymentDeps } from "./common.ts";

const MAX_TICKETS = 100;
const REFUNDABLE: ReadonlySet<PaymentState> = new Set(["completed", "partially_refunded"]);

function refundRefusal(status: PaymentState): ConnectError {
  switch (status) {
    case "refunded":
      return failedPrecondition("payment already fully refunded");
    case "cancelled":
      return failedPrecondition("payment is cancelled");
    case "failed":
      return failedPrecondition("payment failed");
    default:
      return failedPrecondition("payment not captured");
  }
}

export function refundFlow(deps: PaymentDeps) {
  const { db, store, processor, tickets, logger } = deps;

  /**
   * Reserves `amount` (or everything left when undefined) of the payment for
   * a new pending refund, with its tickets. One synchronous transaction: the
   * check and the insert cannot interleave with another refund.
   */
  function reserve(
    tenantId: string,
    paymentId: string,
    refund: Omit<RefundRow, "amountMinor" | "currency">,
    amount: bigint | undefined,
    ticketIds: readonly string[],
    forEscrow = false,
  ): RefundRow {
    return transaction(db, () => {
      const p = store.getPayment(tenantId, paymentId);
      if (!p) throw notFound("payment");
      if (!REFUNDABLE.has(p.status)) throw refundRefusal(p.status);
      // Escrowed funds leave only through the escrow (released OR refunded), never past it.
      if (!forEscrow && store.escrowOfPayment(tenantId, paymentId)) throw failedPrecondition("payment is held in escrow; refund the escrow");
      const remaining = p.capturedMinor - store.committedRefunds(tenantId, paymentId);
      if (remaining <= 0n) throw failedPrecondition("payment already fully refunded");
      const wanted = amount ?? remaining;
      if (wanted > remaining) throw failedPrecondition("refund exceeds the refundable amount");
      for (const t of ticketIds) if (store.ticketRefund(tenantId, t) !== undefined) throw failedPrecondition("ticket already refunded");
      const row: RefundRow = { ...refund, amountMinor: wanted, currency: p.currency };
      store.insertRefund(row);
      for (const t of ticketIds) store.addRefundTicket(tenantId, t, row.id);
      return row;
    });
  }

  /** Pays a pending refund back, cancels its tickets, and marks it (and the payment) refunded. */
  async function settle(r: RefundRow, intentId: string): Promise<RefundRow> {
    if (r.status !== "pending") return r;
    const paid = await processor.refund({ tenantId: r.tenantId, key: `refund:${r.id}`, intentId, refundId: r.id, amountMinor: r.amountMinor, currency: r.currency });
    const ticketIds = store.refundTickets(r.tenantId, r.id);
    if (ticketIds.length > 0) {
      const res = await tickets.cancelTicketsBatch({ tenantId: r.tenantId, ticketIds, reason: r.reason || "refund", refundId: r.id });
      const notCancelled = res.results.filter((x) => x.outcome !== CancelTicketOutcome.CANCELLED).length;
      // The money is back with the buyer either way; a ticket left standing is for operators to look at.
      if (notCancelled > 0) logger.warn({ refundId: r.id, paymentId: r.paymentId, notCancelled }, "refund paid but some tickets were not cancelled");
    }
    const at = deps.now().toISOString();
    transaction(db, () => {
      if (!store.finishRefund(r.tenantId, r.id, "succeeded", paid.id, at)) return;
      const p = store.getPayment(r.tenantId, r.paymentId)!;
      const refunded = store.succeededRefunds(r.tenantId, r.paymentId);
      const to: PaymentState = refunded >= p.capturedMinor ? "refunded" : "partially_refunded";
      if (!store.transition(r.tenantId, p.id, p.status, to, at, { refundedMinor: refunded })) throw new Error("payment changed inside a transaction");
    });
    logger.info({ refundId: r.id, paymentId: r.paymentId, amountMinor: r.amountMinor.toString() }, "refund succeeded");
    return store.getRefund(r.tenantId, r.id)!;
  }

  /** The payment's intent, for the processor refund. */
  function intentOf(r: RefundRow): string {
    return store.getPayment(r.tenantId, r.paymentId)!.intentId;
  }

  async function checkTickets(p: PaymentRow, ticketIds: readonly string[]): Promise<void> {
    for (const t of ticketIds) if (store.ticketRefund(p.tenantId, t) !== undefined) throw failedPrecondition("ticket already refunded");
    const answers = await Promise.all(
      ticketIds.map((ticketId) =>
        tickets.getTicketForRefund({ tenantId: p.tenantId, ticketId }).catch((err: unknown) => {
          // ticket-service saying the ticket does not exist is an answer about this request.
          if (ConnectError.from(err).code === Code.NotFound) throw notFound("ticket");
          throw err;
        }),
      ),
    );
    for (const a of answers) {
      if (a.ticket?.orderId !== p.orderId) throw failedPrecondition("ticket is not part of the payment's order");
      if (!a.refundEligibility?.canRefund) {
        logger.info({ paymentId: p.id, ticketId: a.ticket.id, reasons: a.refundEligibility?.reasons }, "refund refused: ticket not refundable");
        throw failedPrecondition("ticket is not refundable");
      }
    }
  }

  return {
    reserve,
    settle,
    intentOf,
    async createRefund(req: CreateRefundRequest, ctx: HandlerContext) {
      const v = validate().id("payment_id", req.paymentId).optionalId("order_id", req.orderId).optionalText("reason", req.reason, 200)
        .check(req.ticketIds.length <= MAX_TICKETS, "ticket_ids", `at most ${MAX_TICKETS}`)
        .check(new Set(req.ticketIds).size === req.ticketIds.length, "ticket_ids", "must not repeat a ticket");
      req.ticketIds.forEach((t, i) => v.id(`ticket_ids[${i}]`, t));
      if (req.amount !== undefined) requiredMoney(v, "amount", req.amount);
      v.done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);

      const seen = store.refundByKey(tenantId, key);
      if (seen) {
        if (seen.paymentId !== req.paymentId) throw keyConflict();
        return { refund: toRefund(await settle(seen, intentOf(seen))) };
      }
      const p = store.getPayment(tenantId, req.paymentId);
      if (!p || (req.orderId !== "" && req.orderId !== p.orderId)) throw notFound("payment");
      if (!REFUNDABLE.has(p.status)) throw refundRefusal(p.status);
      if (req.amount !== undefined && req.amount.currency !== p.currency) validate().fail("amount.currency", "must be the payment's currency").done();
      await checkTickets(p, req.ticketIds);

      const refundId = keyedId("ref", tenantId, "CreateRefund", key);
      const reserved = reserve(tenantId, p.id, {
        tenantId, id: refundId, paymentId: p.id, orderId: p.orderId, status: "pending", reason: req.reason, processorRefundId: "",
        requestKey: key, createdAt: deps.now().toISOString(), completedAt: null,
      }, req.amount?.amountMinor, req.ticketIds);
      logger.info({ refundId, paymentId: p.id, amountMinor: reserved.amountMinor.toString(), tickets: req.ticketIds.length }, "refund reserved");
      return { refund: toRefund(await settle(reserved, p.intentId)) };
    },

    getRefundDetails(req: { refundId: string }, ctx: HandlerContext) {
      validate().id("refund_id", req.refundId).done();
      const tenantId = tenantOf(ctx);
      const r = store.getRefund(tenantId, req.refundId);
      if (!r) throw notFound("refund");
      const p = store.getPayment(tenantId, r.paymentId)!;
      return { refund: toRefund(r), originalAmount: money(p.amountMinor, p.currency) };
    },
  };
}
