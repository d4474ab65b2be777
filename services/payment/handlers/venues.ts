/**
 * Venue payouts: the processor account a venue is paid out to, transfers to
 * it, and what a venue has earned (captured ticket sales minus the platform
 * fee and refunds) against what it has been paid. A transfer never exceeds
 * what is earned and not yet paid out: checked and written in one transaction.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import {
  ConnectedAccountSchema,
  VenueTransferSchema,
  VenueTransferStatus,
  type CreateConnectedAccountRequest,
  type CreateVenueTransferRequest,
  type GetVenueEarningsRequest,
} from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import { tenantOf } from "../../shared/context.ts";
import { transaction } from "../../shared/database.ts";
import { alreadyExists, failedPrecondition, notFound } from "../../shared/errors.ts";
import { validate } from "../../shared/validate.ts";
import type { AccountRow, TransferRow } from "../store.ts";
import { keyConflict, keyedId, keyOf, money, percentOf, PLATFORM_FEE_BP, requiredMoney, timestampIso, type PaymentDeps } from "./common.ts";

const BUSINESS_TYPES = new Set(["company", "individual", "non_profit", "government_entity"]);
const COUNTRY = /^[A-Z]{2}$/;
const HTTPS_URL = /^https:\/\/[^\s]{1,500}$/;
/** Bounds that cover every stored ISO-8601 timestamp. */
const EVER = "0000";
const NEVER = "9999";

const TRANSFER_STATUS = {
  pending: VenueTransferStatus.PENDING,
  paid: VenueTransferStatus.PAID,
  failed: VenueTransferStatus.FAILED,
  reversed: VenueTransferStatus.REVERSED,
} as const;

function toAccount(a: AccountRow) {
  return create(ConnectedAccountSchema, {
    id: a.id, venueId: a.venueId, chargesEnabled: a.chargesEnabled, payoutsEnabled: a.payoutsEnabled, detailsSubmitted: a.detailsSubmitted,
    createdAt: timestampFromDate(new Date(a.createdAt)),
  });
}

function toTransfer(t: TransferRow) {
  return create(VenueTransferSchema, {
    id: t.id, tenantId: t.tenantId, venueId: t.venueId, connectedAccountId: t.connectedAccountId, amount: money(t.amountMinor, t.currency),
    status: TRANSFER_STATUS[t.status], processorTransferId: t.processorTransferId, createdAt: timestampFromDate(new Date(t.createdAt)),
  });
}

export interface Earnings {
  readonly currency: string;
  readonly gross: bigint;
  readonly fees: bigint;
  readonly net: bigint;
  readonly paidOut: bigint;
  readonly pending: bigint;
}

export function venueHandlers(deps: PaymentDeps) {
  const { db, store, processor, logger } = deps;

  function earnings(tenantId: string, venueId: string, currency: string, from = EVER, to = NEVER): Earnings {
    const sales = store.venueSales(tenantId, venueId, currency, from, to);
    const fees = percentOf(sales.capturedMinor, PLATFORM_FEE_BP);
    const net = sales.capturedMinor - fees - sales.refundedMinor;
    const paidOut = store.venueTransfers(tenantId, venueId, currency, from, to);
    const pending = net - paidOut;
    return { currency, gross: sales.capturedMinor, fees, net: net > 0n ? net : 0n, paidOut, pending: pending > 0n ? pending : 0n };
  }

  async function pay(t: TransferRow): Promise<TransferRow> {
    if (t.status !== "pending") return t;
    const tr = await processor.transfer({ tenantId: t.tenantId, key: `transfer:${t.id}`, destination: t.connectedAccountId, amountMinor: t.amountMinor, currency: t.currency, objectId: t.id });
    store.markTransferPaid(t.tenantId, t.id, tr.id);
    logger.info({ transferId: t.id, venueId: t.venueId }, "venue transfer paid");
    return store.getTransfer(t.tenantId, t.id)!;
  }

  return {
    async createConnectedAccount(req: CreateConnectedAccountRequest, ctx: HandlerContext) {
      validate().id("venue_id", req.venueId).email("email", req.email)
        .check(COUNTRY.test(req.country), "country", "must be an ISO 3166-1 alpha-2 code, e.g. US")
        .check(BUSINESS_TYPES.has(req.businessType), "business_type", "must be company, individual, non_profit or government_entity")
        .check(HTTPS_URL.test(req.returnUrl), "return_url", "must be an https URL")
        .check(HTTPS_URL.test(req.refreshUrl), "refresh_url", "must be an https URL")
        .done();
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      const replay = (a: AccountRow) => {
        if (a.venueId !== req.venueId) throw keyConflict();
        return { account: toAccount(a), onboardingUrl: a.onboardingUrl };
      };
      const seen = store.accountByKey(tenantId, key);
      if (seen) return replay(seen);
      if (store.accountOfVenue(tenantId, req.venueId)) throw alreadyExists("venue already has a connected account");
      const res = await processor.createAccount({ tenantId, key: `account:${req.venueId}`, venueId: req.venueId, country: req.country, businessType: req.businessType });
      const row: AccountRow = {
        tenantId, id: res.accountId, venueId: req.venueId, email: req.email, country: req.country, businessType: req.businessType,
        // A new account cannot take payouts until the venue finishes onboarding with the processor.
        chargesEnabled: false, payoutsEnabled: false, detailsSubmitted: false, onboardingUrl: res.onboardingUrl, createKey: key, createdAt: deps.now().toISOString(),
      };
      const written = transaction(db, () => {
        const raced = store.accountByKey(tenantId, key);
        if (raced) return raced;
        if (store.accountOfVenue(tenantId, req.venueId)) throw alreadyExists("venue already has a connected account");
        store.insertAccount(row);
        return row;
      });
      if (written === row) logger.info({ venueId: req.venueId, accountId: row.id }, "connected account created");
      return replay(written);
    },

    async createVenueTransfer(req: CreateVenueTransferRequest, ctx: HandlerContext) {
      const v = validate().id("venue_id", req.venueId).optionalId("event_id", req.eventId).optionalText("description", req.description, 200);
      requiredMoney(v, "amount", req.amount).done();
      const amount = req.amount!;
      const tenantId = tenantOf(ctx);
      const key = keyOf(ctx);
      const replay = async (t: TransferRow) => {
        if (t.venueId !== req.venueId || t.amountMinor !== amount.amountMinor || t.currency !== amount.currency) throw keyConflict();
        return { transfer: toTransfer(await pay(t)) };
      };
      const seen = store.transferByKey(tenantId, key);
      if (seen) return replay(seen);
      const account = store.accountOfVenue(tenantId, req.venueId);
      if (!account) throw failedPrecondition("venue has no connected account");
      if (!account.payoutsEnabled) throw failedPrecondition("venue's connected account cannot receive payouts yet");
      const id = keyedId("vtr", tenantId, "CreateVenueTransfer", key);
      const written = transaction(db, () => {
        const raced = store.transferByKey(tenantId, key);
        if (raced) return raced;
        if (amount.amountMinor > earnings(tenantId, req.venueId, amount.currency).pending) throw failedPrecondition("transfer exceeds the venue's pending payout");
        const row: TransferRow = {
          tenantId, id, venueId: req.venueId, connectedAccountId: account.id, eventId: req.eventId, amountMinor: amount.amountMinor,
          currency: amount.currency, status: "pending", description: req.description, processorTransferId: "", createKey: key, createdAt: deps.now().toISOString(),
        };
        store.insertTransfer(row);
        return row;
      });
      return replay(written);
    },

    getVenueEarnings(req: GetVenueEarningsRequest, ctx: HandlerContext) {
      const from = timestampIso(req.startTime);
      const to = timestampIso(req.endTime);
      validate().id("venue_id", req.venueId).check(from === undefined || to === undefined || from < to, "end_time", "must be after start_time").done();
      const tenantId = tenantOf(ctx);
      const currency = store.venueCurrency(tenantId, req.venueId);
      // A venue this tenant has neither sold for nor set up payouts for is unknown here.
      if (currency === undefined && !store.accountOfVenue(tenantId, req.venueId)) throw notFound("venue");
      const e = earnings(tenantId, req.venueId, currency ?? "USD", from, to);
      return {
        venueId: req.venueId,
        grossEarnings: money(e.gross, e.currency),
        platformFees: money(e.fees, e.currency),
        netEarnings: money(e.net, e.currency),
        paidOut: money(e.paidOut, e.currency),
        pendingPayout: money(e.pending, e.currency),
      };
    },
  };
}
