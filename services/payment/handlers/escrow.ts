/**
 * Marketplace escrow: a resale buyer's payment is held until the ticket
 * transfer completes, then released to the seller (minus platform fee and
 * royalty) OR refunded to the buyer. Held once per payment; released once or
 * refunded once, never both: each is a conditional update from `held`.
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { HoldEscrowRequest, RefundEscrowRequest } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import { tenantOf } from "../../shared/context.ts";
import { transaction } from "../../shared/database.ts";
import { alreadyExists, failedPrecondition, notFound } from "../../shared/errors.ts";
import { validate } from "../../shared/validate.ts";
import type { EscrowRow, PaymentRow } from "../store.ts";
import { keyConflict, keyedId, keyOf, money, percentOf, PLATFORM_FEE_BP, requiredMoney, toEscrow, type PaymentDeps } from "./common.ts";
import type { refundFlow } from "./refunds.ts";

/** Royalty to the event's venue/artist on a resale, in hundredths of a percent. */
export const ROYALTY_BP = 500n;

export function sellerPayout(amount: bigint): bigint {
  return amount - percentOf(amount, PLATFORM_FEE_BP) - percentOf(amount, ROYALTY_BP);
}

function settledRefusal(e: EscrowRow) {
  return failedPrecondition(e.status === "released" ? "escrow already released" : "escrow already refunded");
}

export function escrowHandlers(deps: PaymentDeps, refunds: ReturnType<typeof refundFlow>) {
  const { db, store, processor, logger } = deps;

  function requireEscrow(tenantId: string, id: string): EscrowRow {
    const e = store.getEscrow(tenantId, id);
    if (!e) throw notFound("escrow");
    return e;
  }

  /** Pays the seller of a released escrow (keyed by the escrow: paid once). */
  async function paySeller(e: EscrowRow): Promise<EscrowRow> {
    if (e.processorTransferId !== "") return e;
    const tr = await processor.transfer({ tenantId: e.tenantId, key: `escrow-release:${e.id}`, destination: `seller:${e.sellerUserId}`, amountMinor: e.sellerPayoutMinor, currency: e.currency, objectId: e.id });
    store.setEscrowTransfer(e.tenantId, e.id, tr.id);
    return requireEscrow(e.tenantId, e.id);
  }

  /** Pays the buyer of a refunded escrow back through its refund row. */
  async function refundBuyer(e: EscrowRow): Promise<EscrowRow> {
    const r = store.getRefund(e.tenantId, e.refundId)!;
    await refunds.settle(r, refunds.intentOf(r));
    return requireEscrow(e.tenantId, e.id);
  }

  return {
    async holdEscrow(req: HoldEscrowRequest, ctx: HandlerContext) {
      const v = validate().id("listing_id", req.listingId).id("buyer_user_id", req.buyerUserId).id("seller_user_id", req.sellerUserId)
        .id("payment_id", req.paymentId).check(req.buyerUserId !== req.sellerUserId, "seller_user_id", "must differ from buyer_user_id");
      requiredMoney(v, "amount", req.amount).done();
      const amount = req.amount!;
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);

      const replay = (e: EscrowRow) => {
        if (e.paymentId !== req.paymentId || e.listingId !== req.listingId || e.amountMinor !== amount.amountMinor) throw keyConflict();
        return { escrow: toEscrow(e) };
      };
      const seen = store.escrowByHoldKey(tenantId, key);
      if (seen) return replay(seen);
      const p = store.getPayment(tenantId, req.paymentId);
      if (!p) throw notFound("payment");
      if (amount.currency !== p.currency) validate().fail("amount.currency", "must be the payment's currency").done();
      checkHoldable(p, req, amount.amountMinor);
      if (store.escrowOfPayment(tenantId, p.id)) throw alreadyExists("payment already held in escrow");

      // An authorized resale payment is captured now: the platform holds the funds.
      if (p.status === "authorized") {
        await processor.capture({ tenantId, key: `capture:${p.id}`, intentId: p.intentId, amountMinor: p.amountMinor, currency: p.currency });
      }
      const id = keyedId("esc", tenantId, "HoldEscrow", key);
      const at = deps.now().toISOString();
      const written = transaction(db, () => {
        const raced = store.escrowByHoldKey(tenantId, key);
        if (raced) return raced;
        if (store.escrowOfPayment(tenantId, p.id)) throw alreadyExists("payment already held in escrow");
        const now = store.getPayment(tenantId, p.id)!;
        checkHoldable(now, req, amount.amountMinor);
        if (now.status === "authorized") store.transition(tenantId, p.id, "authorized", "completed", at, { capturedMinor: now.amountMinor });
        const row: EscrowRow = {
          tenantId, id, listingId: req.listingId, buyerUserId: req.buyerUserId, sellerUserId: req.sellerUserId, paymentId: p.id,
          amountMinor: amount.amountMinor, currency: amount.currency, status: "held", sellerPayoutMinor: 0n, processorTransferId: "", refundId: "",
          holdKey: key, releaseKey: null, refundKey: null, heldAt: at, releasedAt: null, refundedAt: null,
        };
        store.insertEscrow(row);
        return row;
      });
      if (written.id === id) logger.info({ escrowId: id, paymentId: p.id, listingId: req.listingId }, "escrow held");
      return replay(written);
    },

    async releaseEscrow(req: { escrowId: string }, ctx: HandlerContext) {
      validate().id("escrow_id", req.escrowId).done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      let e = requireEscrow(tenantId, req.escrowId);
      if (e.status === "released" && e.releaseKey === key) {
        e = await paySeller(e);
        return { escrow: toEscrow(e), sellerPayout: money(e.sellerPayoutMinor, e.currency) };
      }
      if (e.status !== "held") throw settledRefusal(e);
      const payout = sellerPayout(e.amountMinor);
      transaction(db, () => {
        if (!store.releaseEscrow(tenantId, e.id, key, payout, deps.now().toISOString())) throw settledRefusal(requireEscrow(tenantId, e.id));
      });
      logger.info({ escrowId: e.id, paymentId: e.paymentId }, "escrow released");
      e = await paySeller(requireEscrow(tenantId, e.id));
      return { escrow: toEscrow(e), sellerPayout: money(e.sellerPayoutMinor, e.currency) };
    },

    async refundEscrow(req: RefundEscrowRequest, ctx: HandlerContext) {
      validate().id("escrow_id", req.escrowId).optionalText("reason", req.reason, 200).done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      const e = requireEscrow(tenantId, req.escrowId);
      if (e.status === "refunded" && e.refundKey === key) return { escrow: toEscrow(await refundBuyer(e)) };
      if (e.status !== "held") throw settledRefusal(e);
      const refundId = keyedId("ref", tenantId, "RefundEscrow", key);
      const at = deps.now().toISOString();
      // The escrow's state and the payment's refund reservation change together, or not at all.
      transaction(db, () => {
        if (!store.refundEscrow(tenantId, e.id, key, refundId, at)) throw settledRefusal(requireEscrow(tenantId, e.id));
        refunds.reserve(tenantId, e.paymentId, {
          tenantId, id: refundId, paymentId: e.paymentId, orderId: "", status: "pending", reason: req.reason || "escrow_refunded",
          processorRefundId: "", requestKey: null, createdAt: at, completedAt: null,
        }, e.amountMinor, [], true);
      });
      logger.info({ escrowId: e.id, paymentId: e.paymentId, refundId }, "escrow refunded");
      return { escrow: toEscrow(await refundBuyer(requireEscrow(tenantId, e.id))) };
    },
  };
}

function checkHoldable(p: PaymentRow, req: HoldEscrowRequest, amount: bigint): void {
  if (p.status !== "authorized" && p.status !== "completed") {
    throw failedPrecondition(p.status === "cancelled" ? "payment is cancelled" : p.status === "failed" ? "payment failed" : "payment already refunded");
  }
  if (p.listingId !== "" && p.listingId !== req.listingId) throw failedPrecondition("payment is for another listing");
  if (p.userId !== req.buyerUserId) throw failedPrecondition("payment was made by another user");
  if (amount > p.amountMinor) throw failedPrecondition("escrow exceeds the payment");
}
