/**
 * The purchase flow's order-side steps: price the items with ticket-service,
 * then take the payment with payment-service (intent, then completion).
 *
 * Every payment call carries an idempotency key derived from the order id, so
 * re-driving the same order (a retried CreateOrder, even after a restart)
 * reaches payment-service with the same keys and is applied there once.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { TicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import type { PaymentServiceClient } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_rpc";
import { PaymentStatus } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import type { Logger } from "@tickettoken/rpc";
import { failedPrecondition, notFound } from "../shared/errors.ts";
import type { CompletedPaymentState, OrderRow, OrderStore } from "./store.ts";

export const DEFAULT_PAYMENT_METHOD = "pm_card_visa";

export interface RequestedItem {
  readonly ticketTypeId: string;
  readonly quantity: number;
  /** The price quoted to the buyer, if the caller sent one. */
  readonly quotedUnitMinor: bigint | undefined;
}

/** Downstream idempotency keys: one per order and step, stable across retries and restarts. */
export const paymentKeys = {
  intent: (orderId: string) => `order-${orderId}-payment-intent`,
  complete: (orderId: string) => `order-${orderId}-payment-complete`,
  cancel: (orderId: string) => `order-${orderId}-payment-cancel`,
};

function keyed(key: string) {
  return { headers: { "idempotency-key": key } };
}

/**
 * Unit prices of the requested ticket types from ticket-service
 * (CalculatePrice, one line per ticket type id asked). A quote that no longer
 * matches the price, or a price in another currency, is refused.
 */
export async function priceItems(
  tickets: TicketServiceClient,
  tenantId: string,
  currency: string,
  items: readonly RequestedItem[],
): Promise<bigint[]> {
  let res;
  try {
    res = await tickets.calculatePrice({ tenantId, ticketIds: items.map((i) => i.ticketTypeId) });
  } catch (err) {
    // ticket-service's NOT_FOUND means a ticket type of the order does not exist: the caller's answer.
    if (ConnectError.from(err).code === Code.NotFound) throw notFound("ticket type");
    throw err;
  }
  const prices = new Map(res.priceBreakdown.map((line) => [line.ticketId, line.price]));
  return items.map((item) => {
    const price = prices.get(item.ticketTypeId);
    if (!price) throw notFound("ticket type");
    if (price.currency !== currency) throw failedPrecondition("ticket type is priced in another currency");
    if (item.quotedUnitMinor !== undefined && item.quotedUnitMinor !== price.amountMinor) throw failedPrecondition("quoted price is out of date");
    return price.amountMinor;
  });
}

export interface PaymentDeps {
  readonly payments: PaymentServiceClient;
  readonly store: OrderStore;
  readonly logger: Logger;
  now(): string;
}

/**
 * Takes a pending order through payment: intent, then completion. Returns the
 * order as it ends: paid, cancelled (declined), or as it was when it was not
 * pending. A failure in between leaves the order pending with what was done
 * recorded; calling this again continues from there.
 */
export async function payOrder(deps: PaymentDeps, order: OrderRow): Promise<OrderRow> {
  const { payments, store, logger } = deps;
  const { tenantId, id: orderId } = order;
  if (order.status !== "pending") return order;

  let paymentId = order.paymentId;
  if (paymentId === undefined) {
    let intent;
    try {
      intent = await payments.createPaymentIntent(
        {
          tenantId,
          orderId,
          userId: order.userId,
          eventId: order.eventId,
          amount: { amountMinor: order.totalMinor, currency: order.currency },
          metadata: { payment_method: order.paymentMethod, order_number: order.orderNumber },
        },
        keyed(paymentKeys.intent(orderId)),
      );
    } catch (err) {
      if (ConnectError.from(err).code === Code.FailedPrecondition) return declined(deps, order, "payment_declined");
      throw err;
    }
    paymentId = intent.paymentId;
    if (!store.recordPayment(tenantId, orderId, paymentId, intent.paymentIntentId, deps.now())) return reread(store, order);
    logger.info({ orderId, paymentId }, "payment intent created");
  }

  let completed;
  try {
    completed = await payments.completePayment({ tenantId, orderId, paymentId }, keyed(paymentKeys.complete(orderId)));
  } catch (err) {
    // payment-service refuses to complete a declined or cancelled payment: the order is not paid.
    if (ConnectError.from(err).code === Code.FailedPrecondition) return declined(deps, order, "payment_declined");
    throw err;
  }
  const status = completed.transaction?.status ?? PaymentStatus.UNSPECIFIED;
  const paid = paidState(status);
  if (paid) {
    if (store.markPaid(tenantId, orderId, paid, deps.now())) logger.info({ orderId, paymentId }, "order paid");
    return reread(store, order);
  }
  if (status === PaymentStatus.FAILED || status === PaymentStatus.CANCELLED) {
    return declined(deps, order, status === PaymentStatus.FAILED ? "payment_declined" : "payment_cancelled");
  }
  // Still processing at the processor: the order stays pending; the same CreateOrder retried continues here.
  throw new ConnectError("payment is still processing", Code.Unavailable);
}

function paidState(status: PaymentStatus): CompletedPaymentState | undefined {
  if (status === PaymentStatus.COMPLETED) return "completed";
  if (status === PaymentStatus.AUTHORIZED) return "authorized";
  return undefined;
}

function declined(deps: PaymentDeps, order: OrderRow, reason: string): OrderRow {
  if (deps.store.cancel(order.tenantId, order.id, "pending", reason, deps.now())) {
    deps.logger.info({ orderId: order.id, paymentId: order.paymentId, reason }, "order cancelled: payment not taken");
  }
  return reread(deps.store, order);
}

function reread(store: OrderStore, order: OrderRow): OrderRow {
  return store.getOrder(order.tenantId, order.id) ?? order;
}

/**
 * Cancels the payment of an order being cancelled, where the payment contract
 * allows it (a payment not captured). When payment-service refuses, the
 * payment's state says why: one that failed or was cancelled leaves nothing
 * to undo; one that was taken must be refunded instead (our refusal).
 */
export async function cancelOrderPayment(payments: PaymentServiceClient, order: OrderRow): Promise<void> {
  const { tenantId, paymentId } = order;
  if (paymentId === undefined) return;
  try {
    await payments.cancelPayment({ tenantId, paymentId, reason: "order_cancelled" }, keyed(paymentKeys.cancel(order.id)));
    return;
  } catch (err) {
    if (ConnectError.from(err).code !== Code.FailedPrecondition) throw err;
  }
  const { payments: listed } = await payments.listOrderPayments({ tenantId, orderId: order.id });
  const status = listed.find((p) => p.id === paymentId)?.status;
  if (status === PaymentStatus.FAILED || status === PaymentStatus.CANCELLED) return;
  throw failedPrecondition("order payment can no longer be cancelled: refund it instead");
}
