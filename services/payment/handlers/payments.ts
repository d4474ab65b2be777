/**
 * Payment intents and their life: create (authorize with the processor),
 * complete (capture, then tell ticket-service), capture, cancel, and reads.
 *
 *   authorized --capture/complete--> completed --refund--> partially_refunded / refunded
 *   authorized --cancel--> cancelled          (declined at creation: failed)
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  CancelPaymentRequestSchema,
  CancelPaymentResponseSchema,
  CapturePaymentRequestSchema,
  CapturePaymentResponseSchema,
  CompletePaymentRequestSchema,
  CompletePaymentResponseSchema,
  type CancelPaymentRequest,
  type CapturePaymentRequest,
  type CompletePaymentRequest,
  type CreatePaymentIntentRequest,
  type CreatePaymentIntentResponse,
} from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import { tenantOf } from "../../shared/context.ts";
import { transaction } from "../../shared/database.ts";
import { alreadyExists, failedPrecondition, notFound } from "../../shared/errors.ts";
import { validate } from "../../shared/validate.ts";
import { DEFAULT_METHOD } from "../processor.ts";
import type { PaymentRow, PaymentState } from "../store.ts";
import { keyConflict, keyedAnswers, keyedId, keyOf, paymentStatus, requiredMoney, toPayment, type PaymentDeps } from "./common.ts";

const PAYMENT_METHOD = /^pm_[a-z0-9_]{1,60}$/;
/** States in which an order counts as paid (or being paid): a second intent for it is refused. */
const ACTIVE: ReadonlySet<PaymentState> = new Set(["authorized", "completed", "partially_refunded", "refunded"]);
const CAPTURED: ReadonlySet<PaymentState> = new Set(["completed", "partially_refunded", "refunded"]);

/** Why a payment in this state cannot be captured, completed or cancelled. */
function stateRefusal(status: PaymentState): ConnectError {
  switch (status) {
    case "cancelled":
      return failedPrecondition("payment is cancelled");
    case "failed":
      return failedPrecondition("payment failed");
    default:
      return failedPrecondition("payment already captured");
  }
}

/**
 * The key ticket-service deduplicates a payment notice on, derived from the
 * payment alone so every retry (in this process or after a restart) carries
 * the same one; the legacy shape `payment-{orderId}-{paymentId}` when it fits
 * the 128-character key limit.
 */
export function ticketNoticeKey(kind: "succeeded" | "failed", orderId: string, paymentId: string): string {
  const prefix = kind === "succeeded" ? "payment" : "payment-failed";
  const full = `${prefix}-${orderId}-${paymentId}`;
  return full.length <= 128 ? full : `${prefix}-${paymentId}`;
}

/**
 * The answer CreatePaymentIntent gave when it wrote the payment: a retry with
 * its key gets exactly that, whatever happened to the payment since (an
 * intent is created authorized or failed, and a failed one never changes).
 */
function intentResponse(p: PaymentRow): Omit<CreatePaymentIntentResponse, "$typeName"> {
  return { paymentId: p.id, paymentIntentId: p.intentId, clientSecret: p.clientSecret, status: paymentStatus(p.status === "failed" ? "failed" : "authorized") };
}

export function paymentHandlers(deps: PaymentDeps) {
  const { db, store, processor, tickets, logger } = deps;
  const completed = keyedAnswers(deps, "CompletePayment", CompletePaymentRequestSchema, CompletePaymentResponseSchema);
  const captured = keyedAnswers(deps, "CapturePayment", CapturePaymentRequestSchema, CapturePaymentResponseSchema);
  const cancelled = keyedAnswers(deps, "CancelPayment", CancelPaymentRequestSchema, CancelPaymentResponseSchema);

  function requirePayment(tenantId: string, paymentId: string): PaymentRow {
    const p = store.getPayment(tenantId, paymentId);
    if (!p) throw notFound("payment");
    return p;
  }

  /**
   * Tells ticket-service the outcome of a payment whose notice is pending,
   * keyed so ticket-service applies it once however often it is sent. On
   * failure the payment stays recorded with the notice pending (the next
   * CompletePayment retries it) and the error goes to the caller, so the
   * framework's dedupe keeps no answer and a retry runs this again.
   */
  async function sendTicketNotice(p: PaymentRow): Promise<void> {
    const succeeded = CAPTURED.has(p.status);
    const key = ticketNoticeKey(succeeded ? "succeeded" : "failed", p.orderId, p.id);
    const options = { headers: { "idempotency-key": key } };
    try {
      if (succeeded) {
        await tickets.handlePaymentSucceeded(
          { tenantId: p.tenantId, orderId: p.orderId, paymentId: p.id, amount: { amountMinor: p.capturedMinor, currency: p.currency }, ticketQuantity: p.ticketQuantity, idempotencyKey: key },
          options,
        );
      } else {
        await tickets.handlePaymentFailed(
          { tenantId: p.tenantId, orderId: p.orderId, paymentId: p.id, reason: p.failureReason || "payment_failed", idempotencyKey: key },
          options,
        );
      }
    } catch (err) {
      logger.warn({ paymentId: p.id, orderId: p.orderId, code: Code[ConnectError.from(err).code] }, "ticket-service not told of the payment outcome; notice pending");
      throw err;
    }
    store.setTicketNotice(p.tenantId, p.id, "sent", deps.now().toISOString());
    logger.info({ paymentId: p.id, orderId: p.orderId, outcome: succeeded ? "succeeded" : "failed" }, "ticket-service told of the payment outcome");
  }

  return {
    async createPaymentIntent(req: CreatePaymentIntentRequest, ctx: HandlerContext) {
      const method = req.metadata["payment_method"] ?? DEFAULT_METHOD;
      const quantity = req.metadata["ticket_quantity"];
      const v = validate()
        .optionalId("order_id", req.orderId)
        .optionalId("listing_id", req.listingId)
        .check(req.orderId !== "" || req.listingId !== "", "order_id", "order_id or listing_id required")
        .id("user_id", req.userId)
        .optionalId("venue_id", req.venueId)
        .optionalId("event_id", req.eventId)
        .check(Object.keys(req.metadata).length <= 50, "metadata", "at most 50 entries")
        .check(Object.entries(req.metadata).every(([k, val]) => k.length <= 40 && val.length <= 500), "metadata", "keys at most 40, values at most 500 characters")
        .check(PAYMENT_METHOD.test(method), "metadata[payment_method]", "must be a payment method id, e.g. pm_card_visa")
        .check(quantity === undefined || /^\d{1,5}$/.test(quantity), "metadata[ticket_quantity]", "must be a number up to 99999");
      requiredMoney(v, "amount", req.amount).done();
      const amount = req.amount!;
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);

      const sameRequest = (p: PaymentRow) => p.orderId === req.orderId && p.listingId === req.listingId && p.amountMinor === amount.amountMinor && p.currency === amount.currency;
      const replay = (p: PaymentRow) => {
        if (!sameRequest(p)) throw keyConflict();
        return intentResponse(p);
      };
      const seen = store.paymentByCreateKey(tenantId, key);
      if (seen) return replay(seen);
      const activeOf = () => (req.orderId === "" ? undefined : store.orderPayments(tenantId, req.orderId).find((p) => ACTIVE.has(p.status)));
      if (activeOf()) throw alreadyExists("order already has a payment");

      const paymentId = keyedId("pay", tenantId, "CreatePaymentIntent", key);
      const intent = await processor.createIntent({ tenantId, key: `intent:${paymentId}`, paymentId, amountMinor: amount.amountMinor, currency: amount.currency, paymentMethod: method });
      const at = deps.now().toISOString();
      const row: PaymentRow = {
        tenantId, id: paymentId, orderId: req.orderId, listingId: req.listingId, userId: req.userId, venueId: req.venueId, eventId: req.eventId,
        amountMinor: amount.amountMinor, currency: amount.currency, status: intent.outcome === "succeeded" ? "authorized" : "failed",
        capturedMinor: 0n, refundedMinor: 0n, intentId: intent.intentId, clientSecret: intent.clientSecret, paymentMethod: method,
        cardBrand: intent.card.brand, cardLast4: intent.card.last4, failureReason: intent.declineReason, ticketQuantity: Number(quantity ?? 0),
        ticketNotice: "none", createKey: key, captureKey: null, createdAt: at, updatedAt: at,
      };
      // Re-checked inside the write: a concurrent call for the same order may have won while we awaited the processor.
      const written = transaction(db, () => {
        const raced = store.paymentByCreateKey(tenantId, key);
        if (raced) return raced;
        if (activeOf()) throw alreadyExists("order already has a payment");
        store.insertPayment(row);
        return row;
      });
      if (written !== row) return replay(written);
      logger.info({ paymentId, orderId: req.orderId || undefined, listingId: req.listingId || undefined, status: row.status }, "payment intent created");
      return intentResponse(row);
    },

    async completePayment(req: CompletePaymentRequest, ctx: HandlerContext) {
      validate().id("order_id", req.orderId).id("payment_id", req.paymentId).done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      const first = completed.find(tenantId, key, req);
      if (first) return first;
      let p = requirePayment(tenantId, req.paymentId);
      if (p.orderId !== req.orderId) throw notFound("payment");
      if (p.status === "cancelled") throw stateRefusal(p.status);

      if (p.status === "authorized") {
        await processor.capture({ tenantId, key: `capture:${p.id}`, intentId: p.intentId, amountMinor: p.amountMinor, currency: p.currency });
        const at = deps.now().toISOString();
        transaction(db, () => {
          if (!store.transition(tenantId, p.id, "authorized", "completed", at, { capturedMinor: p.amountMinor })) {
            const now = requirePayment(tenantId, p.id);
            if (!CAPTURED.has(now.status)) throw stateRefusal(now.status);
            return;
          }
          store.setTicketNotice(tenantId, p.id, "pending", at);
        });
        logger.info({ paymentId: p.id, orderId: p.orderId }, "payment completed");
      } else if (p.ticketNotice === "none") {
        // Declined at creation, or captured through CapturePayment: ticket-service has not heard yet.
        store.setTicketNotice(tenantId, p.id, "pending", deps.now().toISOString());
      }
      p = requirePayment(tenantId, p.id);
      if (p.ticketNotice === "pending") await sendTicketNotice(p);
      const answer = create(CompletePaymentResponseSchema, { orderId: p.orderId, paymentId: p.id, transaction: toPayment(requirePayment(tenantId, p.id)) });
      return completed.save(tenantId, key, req, answer);
    },

    async capturePayment(req: CapturePaymentRequest, ctx: HandlerContext) {
      const v = validate().id("payment_id", req.paymentId);
      if (req.amount !== undefined) requiredMoney(v, "amount", req.amount);
      v.done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      const first = captured.find(tenantId, key, req);
      if (first) return first;
      const p = requirePayment(tenantId, req.paymentId);
      if (p.status !== "authorized") throw stateRefusal(p.status);
      if (req.amount !== undefined && req.amount.currency !== p.currency) validate().fail("amount.currency", "must be the payment's currency").done();
      const amount = req.amount?.amountMinor ?? p.amountMinor;
      if (amount > p.amountMinor) throw failedPrecondition("capture exceeds the authorized amount");
      await processor.capture({ tenantId, key: `capture:${p.id}`, intentId: p.intentId, amountMinor: amount, currency: p.currency });
      const at = deps.now().toISOString();
      transaction(db, () => {
        if (!store.transition(tenantId, p.id, "authorized", "completed", at, { capturedMinor: amount, captureKey: key })) {
          throw stateRefusal(requirePayment(tenantId, p.id).status);
        }
      });
      logger.info({ paymentId: p.id, orderId: p.orderId || undefined }, "payment captured");
      return captured.save(tenantId, key, req, create(CapturePaymentResponseSchema, { payment: toPayment(requirePayment(tenantId, p.id)) }));
    },

    async cancelPayment(req: CancelPaymentRequest, ctx: HandlerContext) {
      validate().id("payment_id", req.paymentId).optionalText("reason", req.reason, 200).done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      const first = cancelled.find(tenantId, key, req);
      if (first) return first;
      const p = requirePayment(tenantId, req.paymentId);
      // Cancelling twice is a no-op: the second call answers the cancelled payment.
      if (p.status === "cancelled") return cancelled.save(tenantId, key, req, create(CancelPaymentResponseSchema, { payment: toPayment(p) }));
      if (p.status !== "authorized") throw p.status === "failed" ? failedPrecondition("payment failed; nothing to cancel") : failedPrecondition("payment already captured; refund it instead");
      await processor.cancel({ tenantId, key: `cancel:${p.id}`, intentId: p.intentId });
      const at = deps.now().toISOString();
      transaction(db, () => {
        if (!store.transition(tenantId, p.id, "authorized", "cancelled", at)) {
          const now = requirePayment(tenantId, p.id);
          if (now.status !== "cancelled") throw stateRefusal(now.status);
        }
      });
      logger.info({ paymentId: p.id, orderId: p.orderId || undefined, reason: req.reason || undefined }, "payment cancelled");
      return cancelled.save(tenantId, key, req, create(CancelPaymentResponseSchema, { payment: toPayment(requirePayment(tenantId, p.id)) }));
    },

    getPayment(req: { paymentId: string }, ctx: HandlerContext) {
      validate().id("payment_id", req.paymentId).done();
      return { payment: toPayment(requirePayment(tenantOf(ctx), req.paymentId)) };
    },

    getPaymentStatus(req: { paymentId: string }, ctx: HandlerContext) {
      validate().id("payment_id", req.paymentId).done();
      const p = toPayment(requirePayment(tenantOf(ctx), req.paymentId));
      return { paymentId: p.id, status: p.status, updatedAt: p.updatedAt };
    },

    listOrderPayments(req: { orderId: string }, ctx: HandlerContext) {
      validate().id("order_id", req.orderId).done();
      return { payments: store.orderPayments(tenantOf(ctx), req.orderId).map(toPayment) };
    },

    getPaymentDetails(req: { paymentId: string }, ctx: HandlerContext) {
      validate().id("payment_id", req.paymentId).done();
      const p = requirePayment(tenantOf(ctx), req.paymentId);
      return {
        payment: toPayment(p),
        cardBrand: p.cardBrand,
        cardLast4: p.cardLast4,
        receiptUrl: CAPTURED.has(p.status) ? `https://pay.stripe.test/receipts/${p.intentId}` : "",
      };
    },
  };
}

