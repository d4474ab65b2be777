/**
 * The purchase side: payment-service tells ticket-service a payment
 * succeeded (issue the order's tickets, once per payment, then have each
 * minted) or failed (release the order's reservation, once); minting-service
 * and queue-service ask it to mint a paid order's tickets.
 *
 * Remote calls (order-service GetOrder, minting-service MintTicket) happen
 * outside transactions; every write of one outcome commits in one
 * transaction, with the payment id as its unique key, so a retry (same key,
 * after a restart too) finds the first outcome and issues nothing new.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { OrderStatus, type Order } from "@tickettoken/contracts/tickettoken/order/v1/order_service_pb";
import { MintStatus } from "@tickettoken/contracts/tickettoken/minting/v1/minting_service_pb";
import { TicketMintStatus } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import { tenantOf } from "../../shared/context.ts";
import { transaction } from "../../shared/database.ts";
import { failedPrecondition, notFound } from "../../shared/errors.ts";
import { newId } from "../../shared/ids.ts";
import { validate } from "../../shared/validate.ts";
import { newQrCredential, newTicketNumber } from "../qr.ts";
import type { PaymentOutcomeRow, TicketRow } from "../store.ts";
import { applyNftUpdate, requireKey } from "./changes.ts";
import type { TicketDeps, TicketHandlers } from "./deps.ts";
import { ts } from "./mapping.ts";

/** Mints in flight at once for one order (each is independent; minting-service dedupes per ticket). */
const MINT_CONCURRENCY = 4;
import { MAX_BATCH } from "./reads.ts";

const ORDER_REFUSAL: Partial<Record<OrderStatus, string>> = {
  [OrderStatus.CANCELLED]: "order is cancelled",
  [OrderStatus.EXPIRED]: "order has expired",
  [OrderStatus.REFUNDED]: "order has been refunded",
  [OrderStatus.PARTIALLY_REFUNDED]: "order has been refunded",
};
const PAID = new Set([OrderStatus.PAID, OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_REFUNDED]);

interface MintOutcome {
  readonly status: TicketMintStatus;
  readonly mintAddress: string;
  readonly signature: string;
  readonly error: string;
}

export function paymentHandlers(deps: TicketDeps): TicketHandlers {
  const { db, store, now, logger, orders, minting } = deps;

  /** The order from order-service; its NOT_FOUND is ours to tell, anything else stays a dependency failure. */
  async function readOrder(tenantId: string, orderId: string): Promise<Order> {
    try {
      const { order } = await orders.getOrder({ tenantId, orderId });
      if (!order) throw notFound("order");
      return order;
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) throw notFound("order");
      throw err;
    }
  }

  /**
   * Mints one ticket through minting-service, keyed by the ticket so every
   * retry (ours or a re-drive after a restart) mints it once. A failure is
   * logged and reported, never thrown: the ticket stays issued, unminted.
   */
  async function mint(t: TicketRow, signal: AbortSignal): Promise<MintOutcome> {
    if (t.tokenId !== null) return { status: TicketMintStatus.MINTED, mintAddress: t.tokenId, signature: t.mintTransactionId, error: "" };
    if (signal.aborted) return { status: TicketMintStatus.PENDING, mintAddress: "", signature: "", error: "" };
    const event = store.getEvent(t.tenantId, t.eventId);
    try {
      const { result } = await minting.mintTicket(
        {
          tenantId: t.tenantId,
          ticket: {
            ticketId: t.id,
            userId: t.userId,
            eventId: t.eventId,
            ticketTypeId: t.ticketTypeId,
            metadata: {
              eventName: event?.name ?? "",
              ...(event ? { eventDate: ts(event.startsAt) } : {}),
              venue: event?.venueName ?? "",
              seatInfo: t.seatSection !== "" ? `Section ${t.seatSection}, Row ${t.seatRow}, Seat ${t.seatNumber}` : "",
              ticketType: t.ticketTypeName,
              price: { amountMinor: BigInt(t.priceMinor), currency: t.currency },
            },
          },
        },
        { headers: { "idempotency-key": `mint-${t.id}` } },
      );
      if (result?.status === MintStatus.CONFIRMED && result.mintAddress !== "") {
        // minting-service also calls UpdateNft; applying its answer here too is a no-op if that call came first.
        applyNftUpdate(deps, t.tenantId, t.id, { nftMintAddress: result.mintAddress, isMinted: true, mintTransactionId: result.transactionSignature });
        return { status: TicketMintStatus.MINTED, mintAddress: result.mintAddress, signature: result.transactionSignature, error: "" };
      }
      if (result?.status === MintStatus.FAILED) {
        logger.warn({ ticketId: t.id, orderId: t.orderId }, "ticket mint failed; ticket stays issued, unminted");
        return { status: TicketMintStatus.FAILED, mintAddress: "", signature: "", error: "mint failed" };
      }
      return { status: TicketMintStatus.PENDING, mintAddress: result?.mintAddress ?? "", signature: result?.transactionSignature ?? "", error: "" };
    } catch (err) {
      const e = ConnectError.from(err);
      logger.warn({ ticketId: t.id, orderId: t.orderId, code: Code[e.code] }, "ticket mint failed; ticket stays issued, unminted");
      return { status: TicketMintStatus.FAILED, mintAddress: "", signature: "", error: "minting unavailable" };
    }
  }

  /** Mints an order's tickets a few at a time: each mint waits on the chain, and the caller's deadline is shared. */
  async function mintAll(tenantId: string, ticketIds: readonly string[], signal: AbortSignal): Promise<void> {
    for (let i = 0; i < ticketIds.length; i += MINT_CONCURRENCY) {
      await Promise.all(
        ticketIds.slice(i, i + MINT_CONCURRENCY).map(async (id) => {
          const t = store.getTicket(tenantId, id);
          if (t && t.status !== "cancelled") await mint(t, signal);
        }),
      );
    }
  }

  /** Issues a paid order's tickets: confirms its reservation, issues the rest, records the outcome. Synchronous (one transaction). */
  function issue(tenantId: string, order: Order, paymentId: string, key: string): { outcome: PaymentOutcomeRow; issued: boolean } {
    return transaction(db, () => {
      // Another call for this payment (under another key) may have committed while we read the order.
      const prior = store.findPaymentOutcome(tenantId, paymentId);
      if (prior) return { outcome: prior, issued: false };
      if (store.findIssuingOutcomeOfOrder(tenantId, order.id)) throw failedPrecondition("order's tickets were issued for another payment");
      const at = now().toISOString();
      const reserved = store.ticketsOfOrder(tenantId, order.id).filter((t) => t.status === "reserved");
      const ticketIds: string[] = [];
      for (const item of order.items) {
        const type = store.getTicketType(tenantId, item.ticketTypeId);
        if (!type || type.eventId !== order.eventId) throw failedPrecondition("order has a ticket type that is not on sale");
        const price = item.unitPrice ? Number(item.unitPrice.amountMinor) : type.priceMinor;
        const currency = item.unitPrice?.currency || type.currency;
        let missing = item.quantity;
        for (const t of reserved) {
          if (missing === 0) break;
          if (t.ticketTypeId !== type.id || t.status !== "reserved" || ticketIds.includes(t.id)) continue;
          store.confirmReserved(tenantId, t.id, paymentId, price, currency, at);
          ticketIds.push(t.id);
          missing--;
        }
        if (store.countHeldOfType(tenantId, type.id) + missing > type.quantity) throw failedPrecondition("not enough tickets left");
        for (; missing > 0; missing--) {
          const id = newId("t");
          store.insertTicket({
            tenantId, id, eventId: order.eventId, ticketTypeId: type.id, orderId: order.id, userId: order.userId, status: "sold",
            ticketNumber: newTicketNumber(), priceMinor: price, currency, isTransferable: type.isTransferable, ...newQrCredential(id),
            paymentId, purchasedAt: at, createdAt: at,
          });
          ticketIds.push(id);
        }
      }
      // Reserved seats the paid order no longer holds go back on sale.
      for (const t of reserved) if (!ticketIds.includes(t.id)) store.cancel(tenantId, t.id, "not in the paid order", "", at);
      const outcome: PaymentOutcomeRow = {
        tenantId, paymentId, orderId: order.id, outcome: "succeeded", idempotencyKey: key, ticketIds,
        reservationReleased: false, reason: "", createdAt: at,
      };
      store.insertPaymentOutcome(outcome);
      return { outcome, issued: true };
    });
  }

  /** A stored outcome answers a retry only if it is the same payment of the same order. */
  function priorOutcome(tenantId: string, paymentId: string, orderId: string, key: string): PaymentOutcomeRow | undefined {
    const byKey = store.findPaymentOutcomeByKey(tenantId, key);
    if (byKey && byKey.paymentId !== paymentId) throw failedPrecondition("idempotency key was used for a different payment");
    const prior = store.findPaymentOutcome(tenantId, paymentId);
    if (prior && prior.orderId !== orderId) throw failedPrecondition("payment belongs to another order");
    return prior;
  }

  return {
    async handlePaymentSucceeded(req, ctx) {
      const v = validate().id("order_id", req.orderId).id("payment_id", req.paymentId).optionalId("idempotency_key", req.idempotencyKey);
      v.range("ticket_quantity", req.ticketQuantity, 0, 10_000);
      if (req.amount) v.range("amount.amount_minor", req.amount.amountMinor, 0n, 1n << 53n).currency("amount.currency", req.amount.currency);
      v.done();
      const tenantId = tenantOf(ctx);
      const key = requireKey(ctx);
      const prior = priorOutcome(tenantId, req.paymentId, req.orderId, key);
      if (prior?.outcome === "failed") throw failedPrecondition("payment was recorded as failed");
      if (prior) {
        // Applied before (e.g. before a restart): nothing new is issued; tickets whose mint failed then get another try.
        await mintAll(tenantId, prior.ticketIds, ctx.signal);
        return { orderId: prior.orderId, ticketIds: [...prior.ticketIds], duplicate: true };
      }

      const order = await readOrder(tenantId, req.orderId);
      const refusal = ORDER_REFUSAL[order.status];
      if (refusal) throw failedPrecondition(refusal);
      const quantity = order.items.reduce((n, i) => n + i.quantity, 0);
      if (quantity === 0) throw failedPrecondition("order has no tickets");
      if (req.ticketQuantity !== 0 && req.ticketQuantity !== quantity) throw failedPrecondition("ticket quantity does not match the order");
      if (order.userId === "" || order.eventId === "") throw failedPrecondition("order has no buyer or event");
      if (req.amount && req.amount.amountMinor !== 0n && order.total && order.total.amountMinor !== 0n &&
          (req.amount.amountMinor !== order.total.amountMinor || req.amount.currency !== order.total.currency)) {
        throw failedPrecondition("amount paid does not match the order total");
      }

      const { outcome, issued } = issue(tenantId, order, req.paymentId, key);
      if (outcome.outcome === "failed") throw failedPrecondition("payment was recorded as failed");
      const duplicate = !issued;
      if (issued) logger.info({ orderId: order.id, paymentId: req.paymentId, tickets: outcome.ticketIds.length }, "tickets issued");
      await mintAll(tenantId, outcome.ticketIds, ctx.signal);
      return { orderId: outcome.orderId, ticketIds: [...outcome.ticketIds], duplicate };
    },

    handlePaymentFailed(req, ctx) {
      validate()
        .id("order_id", req.orderId)
        .id("payment_id", req.paymentId)
        .optionalText("reason", req.reason, 500)
        .optionalId("idempotency_key", req.idempotencyKey)
        .done();
      const tenantId = tenantOf(ctx);
      const key = requireKey(ctx);
      return transaction(db, () => {
        const prior = priorOutcome(tenantId, req.paymentId, req.orderId, key);
        if (prior?.outcome === "succeeded") throw failedPrecondition("payment already succeeded");
        if (prior) return { orderId: prior.orderId, reservationReleased: prior.reservationReleased, duplicate: true };
        const at = now().toISOString();
        const reserved = store.ticketsOfOrder(tenantId, req.orderId).filter((t) => t.status === "reserved");
        for (const t of reserved) store.cancel(tenantId, t.id, "payment_failed", "", at);
        store.insertPaymentOutcome({
          tenantId, paymentId: req.paymentId, orderId: req.orderId, outcome: "failed", idempotencyKey: key, ticketIds: [],
          reservationReleased: reserved.length > 0, reason: req.reason, createdAt: at,
        });
        logger.info({ orderId: req.orderId, paymentId: req.paymentId, released: reserved.length }, "reservation released after failed payment");
        return { orderId: req.orderId, reservationReleased: reserved.length > 0, duplicate: false };
      });
    },

    async processMint(req, ctx) {
      const v = validate().id("order_id", req.orderId).optionalId("event_id", req.eventId).optionalId("user_id", req.userId);
      v.check(req.ticketIds.length <= MAX_BATCH, "ticket_ids", `at most ${MAX_BATCH}`);
      req.ticketIds.slice(0, MAX_BATCH).forEach((id, i) => v.id(`ticket_ids[${i}]`, id));
      v.done();
      const tenantId = tenantOf(ctx);
      const order = await readOrder(tenantId, req.orderId);
      if (!PAID.has(order.status)) throw failedPrecondition("order is not paid");
      if (req.eventId !== "" && req.eventId !== order.eventId) throw failedPrecondition("event does not match the order");
      if (req.userId !== "" && req.userId !== order.userId) throw failedPrecondition("user is not the order's buyer");
      const ofOrder = store.ticketsOfOrder(tenantId, order.id).filter((t) => t.status !== "reserved");
      const tickets = req.ticketIds.length === 0 ? ofOrder : req.ticketIds.map((id) => {
        const t = ofOrder.find((o) => o.id === id);
        if (!t) throw notFound("ticket");
        return t;
      });
      // Each mint is keyed by its ticket downstream, so repeating the job mints nothing twice.
      const results = [];
      for (const t of tickets) {
        if (t.status === "cancelled") {
          results.push({ ticketId: t.id, status: TicketMintStatus.FAILED, mintAddress: "", transactionSignature: "", error: "ticket is cancelled" });
          continue;
        }
        const r = await mint(t, ctx.signal);
        results.push({ ticketId: t.id, status: r.status, mintAddress: r.mintAddress, transactionSignature: r.signature, error: r.error });
      }
      return { orderId: order.id, results };
    },
  };
}

