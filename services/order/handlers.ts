/**
 * order-service's internal RPC surface: CreateOrder (the head of the
 * purchase flow: price, record, pay), GetOrder, CancelOrder.
 */
import { createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { OrderServiceContract } from "@tickettoken/contracts/tickettoken/order/v1/order_service_rpc";
import { OrderSchema, OrderStatus, type CreateOrderRequest, type Order } from "@tickettoken/contracts/tickettoken/order/v1/order_service_pb";
import type { TicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import type { PaymentServiceClient } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_rpc";
import type { Logger } from "@tickettoken/rpc";
import { idempotencyKeyOf, tenantOf, userOf } from "../shared/context.ts";
import { failedPrecondition, notFound } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { validate } from "../shared/validate.ts";
import { cancelOrderPayment, DEFAULT_PAYMENT_METHOD, payOrder, priceItems, type PaymentDeps } from "./checkout.ts";
import type { OrderRow, OrderState, OrderStore } from "./store.ts";

const MAX_ITEMS = 50;
const MAX_QUANTITY = 100;
const MAX_UNIT_PRICE_MINOR = 100_000_000_000n;
const MAX_METADATA_ENTRIES = 32;
const PAYMENT_METHOD = /^pm_[a-z0-9_]{1,60}$/;

const STATUS: Record<OrderState, OrderStatus> = {
  pending: OrderStatus.PENDING,
  paid: OrderStatus.PAID,
  confirmed: OrderStatus.CONFIRMED,
  cancelled: OrderStatus.CANCELLED,
  expired: OrderStatus.EXPIRED,
  refunded: OrderStatus.REFUNDED,
  partially_refunded: OrderStatus.PARTIALLY_REFUNDED,
};

export interface OrderServiceDeps {
  readonly store: OrderStore;
  readonly tickets: TicketServiceClient;
  readonly payments: PaymentServiceClient;
  readonly logger: Logger;
  now(): Date;
}

function money(amountMinor: bigint, currency: string) {
  return { amountMinor, currency };
}

function toOrder(r: OrderRow): Order {
  return create(OrderSchema, {
    id: r.id,
    tenantId: r.tenantId,
    userId: r.userId,
    eventId: r.eventId,
    orderNumber: r.orderNumber,
    status: STATUS[r.status],
    items: r.items.map((i) => ({
      id: i.id,
      ticketTypeId: i.ticketTypeId,
      quantity: i.quantity,
      unitPrice: money(i.unitPriceMinor, r.currency),
      totalPrice: money(i.unitPriceMinor * BigInt(i.quantity), r.currency),
    })),
    subtotal: money(r.subtotalMinor, r.currency),
    platformFee: money(r.platformFeeMinor, r.currency),
    processingFee: money(r.processingFeeMinor, r.currency),
    tax: money(r.taxMinor, r.currency),
    discount: money(r.discountMinor, r.currency),
    total: money(r.totalMinor, r.currency),
    paymentIntentId: r.paymentIntentId,
    createdAt: timestampFromDate(new Date(r.createdAt)),
    updatedAt: timestampFromDate(new Date(r.updatedAt)),
  });
}

function validateCreate(req: CreateOrderRequest): void {
  const v = validate().id("user_id", req.userId).id("event_id", req.eventId).currency("currency", req.currency);
  v.check(req.items.length >= 1 && req.items.length <= MAX_ITEMS, "items", `between 1 and ${MAX_ITEMS} items`);
  const seen = new Set<string>();
  req.items.forEach((item, i) => {
    v.id(`items[${i}].ticket_type_id`, item.ticketTypeId).range(`items[${i}].quantity`, item.quantity, 1, MAX_QUANTITY);
    v.check(!seen.has(item.ticketTypeId), `items[${i}].ticket_type_id`, "one line per ticket type");
    seen.add(item.ticketTypeId);
    if (item.unitPrice) {
      v.range(`items[${i}].unit_price.amount_minor`, item.unitPrice.amountMinor, 0n, MAX_UNIT_PRICE_MINOR);
      v.check(item.unitPrice.currency === req.currency, `items[${i}].unit_price.currency`, "must be the order currency");
    }
  });
  const entries = Object.entries(req.metadata);
  v.check(entries.length <= MAX_METADATA_ENTRIES, "metadata", `at most ${MAX_METADATA_ENTRIES} entries`);
  for (const [k, val] of entries) {
    v.check(k.length > 0 && k.length <= 64 && val.length <= 512, "metadata", "keys of 1 to 64 and values of at most 512 characters");
  }
  const method = req.metadata["payment_method"];
  if (method !== undefined) v.check(PAYMENT_METHOD.test(method), "metadata[payment_method]", "must be a payment method id, e.g. pm_card_visa");
  v.done();
}

/** What a CreateOrder key was used for: the same key with another request is a different order. */
function requestHash(req: CreateOrderRequest): string {
  const canonical = JSON.stringify([
    req.userId,
    req.eventId,
    req.currency,
    req.items.map((i) => [i.ticketTypeId, i.quantity, i.unitPrice ? [String(i.unitPrice.amountMinor), i.unitPrice.currency] : null]),
    Object.entries(req.metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
  ]);
  return createHash("sha256").update(canonical).digest("base64url");
}

/** A user id the request states for the acting user must be the context token's user. */
function requireActingUser(ctx: HandlerContext, userId: string): void {
  const contextUser = userOf(ctx);
  if (userId !== "" && contextUser !== undefined && userId !== contextUser) {
    throw new ConnectError("user_id does not match the context user", Code.PermissionDenied);
  }
}

/** As the framework's dedupe step answers it while the first response is still in memory (src/runtime/server/dedupe.ts). */
function keyReused(): ConnectError {
  return failedPrecondition("idempotency key was used with a different request");
}

function isUniqueViolation(err: unknown): boolean {
  return err instanceof Error && /UNIQUE constraint failed/.test(err.message);
}

export function orderService(deps: OrderServiceDeps): ServiceRegistration {
  const { store, tickets, payments, logger } = deps;
  const paymentDeps: PaymentDeps = { payments, store, logger, now: () => deps.now().toISOString() };

  return implement(OrderServiceContract, {
    async createOrder(req, ctx) {
      validateCreate(req);
      const tenantId = tenantOf(ctx);
      requireActingUser(ctx, req.userId);
      const key = idempotencyKeyOf(ctx);
      const hash = requestHash(req);

      // A retried create (same key) re-drives its first order to completion, never makes another.
      let order = key === undefined ? undefined : store.findByIdempotencyKey(tenantId, key);
      if (order && order.requestHash !== hash) throw keyReused();
      if (!order) {
        const prices = await priceItems(tickets, tenantId, req.currency, req.items.map((i) => ({
          ticketTypeId: i.ticketTypeId,
          quantity: i.quantity,
          quotedUnitMinor: i.unitPrice?.amountMinor,
        })));
        const subtotal = req.items.reduce((sum, item, i) => sum + prices[i]! * BigInt(item.quantity), 0n);
        const id = newId("ord");
        const at = deps.now().toISOString();
        const row: OrderRow = {
          tenantId, id, orderNumber: `ORD-${id.slice(4, 17).toUpperCase()}`, userId: req.userId, eventId: req.eventId,
          status: "pending", currency: req.currency, subtotalMinor: subtotal,
          // No fee, tax or discount policy exists for internal orders yet: the total is what the tickets cost.
          platformFeeMinor: 0n, processingFeeMinor: 0n, taxMinor: 0n, discountMinor: 0n, totalMinor: subtotal,
          paymentMethod: req.metadata["payment_method"] ?? DEFAULT_PAYMENT_METHOD, paymentId: undefined, paymentIntentId: "",
          paymentStatus: undefined, cancelReason: "", metadata: { ...req.metadata }, idempotencyKey: key, requestHash: hash,
          createdAt: at, updatedAt: at,
          items: req.items.map((item, i) => ({ id: newId("item"), ticketTypeId: item.ticketTypeId, quantity: item.quantity, unitPriceMinor: prices[i]! })),
        };
        try {
          store.insertOrder(row);
          order = row;
          logger.info({ orderId: id, total: String(subtotal) }, "order created");
        } catch (err) {
          // A concurrent attempt with the same key inserted first: continue with its order.
          const winner = key !== undefined && isUniqueViolation(err) ? store.findByIdempotencyKey(tenantId, key) : undefined;
          if (!winner) throw err;
          if (winner.requestHash !== hash) throw keyReused();
          order = winner;
        }
      }
      return { order: toOrder(await payOrder(paymentDeps, order)) };
    },

    getOrder(req, ctx) {
      validate().id("order_id", req.orderId).optionalId("user_id", req.userId).done();
      const order = store.getOrder(tenantOf(ctx), req.orderId);
      // Another user's order is as absent as another tenant's.
      if (!order || (req.userId !== "" && order.userId !== req.userId)) throw notFound("order");
      return { order: toOrder(order) };
    },

    async cancelOrder(req, ctx) {
      validate().id("order_id", req.orderId).optionalId("user_id", req.userId).optionalText("reason", req.reason, 200).done();
      const tenantId = tenantOf(ctx);
      requireActingUser(ctx, req.userId);
      const order = store.getOrder(tenantId, req.orderId);
      if (!order || (req.userId !== "" && order.userId !== req.userId)) throw notFound("order");
      if (order.status === "cancelled") return { order: toOrder(order) };

      // Only a payment not captured may be cancelled (payment contract); a captured one is refunded instead.
      const cancellable = order.status === "pending" || (order.status === "paid" && order.paymentStatus === "authorized");
      if (!cancellable) {
        throw failedPrecondition(order.status === "paid" || order.status === "confirmed" ? "order is paid: refund it instead" : `order is ${order.status.replace("_", " ")}`);
      }
      await cancelOrderPayment(payments, order);
      const reason = req.reason === "" ? "cancelled" : req.reason;
      if (store.cancel(tenantId, order.id, order.status, reason, deps.now().toISOString())) {
        logger.info({ orderId: order.id, paymentId: order.paymentId, reason }, "order cancelled");
        return { order: toOrder(store.getOrder(tenantId, order.id)!) };
      }
      // The order moved while its payment was being cancelled: answer from what it is now.
      const now = store.getOrder(tenantId, order.id)!;
      if (now.status === "cancelled") return { order: toOrder(now) };
      throw failedPrecondition(`order is ${now.status.replace("_", " ")}`);
    },
  });
}
