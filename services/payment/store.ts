/**
 * payment-service's storage port and its SQLite implementation. Every query
 * takes the tenant id: another tenant's payment does not exist for the
 * caller. State changes are conditional updates (`... WHERE status = ?`), so
 * a transition happens once however many calls race for it; the handlers run
 * check-and-write sequences inside one `transaction()`.
 */
import type { Database } from "../shared/database.ts";

export type PaymentState = "authorized" | "failed" | "completed" | "cancelled" | "refunded" | "partially_refunded";
export type TicketNotice = "none" | "pending" | "sent";

export interface PaymentRow {
  readonly tenantId: string;
  readonly id: string;
  readonly orderId: string;
  readonly listingId: string;
  readonly userId: string;
  readonly venueId: string;
  readonly eventId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: PaymentState;
  readonly capturedMinor: bigint;
  readonly refundedMinor: bigint;
  readonly intentId: string;
  readonly clientSecret: string;
  readonly paymentMethod: string;
  readonly cardBrand: string;
  readonly cardLast4: string;
  readonly failureReason: string;
  readonly ticketQuantity: number;
  readonly ticketNotice: TicketNotice;
  readonly createKey: string | null;
  readonly captureKey: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type RefundState = "pending" | "succeeded" | "failed";

export interface RefundRow {
  readonly tenantId: string;
  readonly id: string;
  readonly paymentId: string;
  readonly orderId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: RefundState;
  readonly reason: string;
  readonly processorRefundId: string;
  readonly requestKey: string | null;
  readonly createdAt: string;
  readonly completedAt: string | null;
}

export type EscrowState = "held" | "released" | "refunded";

export interface EscrowRow {
  readonly tenantId: string;
  readonly id: string;
  readonly listingId: string;
  readonly buyerUserId: string;
  readonly sellerUserId: string;
  readonly paymentId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: EscrowState;
  readonly sellerPayoutMinor: bigint;
  readonly processorTransferId: string;
  readonly refundId: string;
  readonly holdKey: string | null;
  readonly releaseKey: string | null;
  readonly refundKey: string | null;
  readonly heldAt: string;
  readonly releasedAt: string | null;
  readonly refundedAt: string | null;
}

export interface AccountRow {
  readonly tenantId: string;
  readonly id: string;
  readonly venueId: string;
  readonly email: string;
  readonly country: string;
  readonly businessType: string;
  readonly chargesEnabled: boolean;
  readonly payoutsEnabled: boolean;
  readonly detailsSubmitted: boolean;
  readonly onboardingUrl: string;
  readonly createKey: string | null;
  readonly createdAt: string;
}

export type TransferState = "pending" | "paid" | "failed" | "reversed";

export interface TransferRow {
  readonly tenantId: string;
  readonly id: string;
  readonly venueId: string;
  readonly connectedAccountId: string;
  readonly eventId: string;
  readonly amountMinor: bigint;
  readonly currency: string;
  readonly status: TransferState;
  readonly description: string;
  readonly processorTransferId: string;
  readonly createKey: string | null;
  readonly createdAt: string;
}

export interface TaxRateRow {
  readonly tenantId: string;
  readonly country: string;
  readonly region: string;
  readonly city: string;
  readonly jurisdiction: string;
  readonly rateBp: number;
}

/** A venue's captured sales and refunds in one currency, over a period. */
export interface VenueSales {
  readonly capturedMinor: bigint;
  readonly refundedMinor: bigint;
  readonly paymentCount: number;
}

export interface PaymentStore {
  getPayment(tenantId: string, id: string): PaymentRow | undefined;
  paymentByCreateKey(tenantId: string, key: string): PaymentRow | undefined;
  /** The order's payments, oldest first. */
  orderPayments(tenantId: string, orderId: string): PaymentRow[];
  insertPayment(p: PaymentRow): void;
  /** Moves a payment from `from` to `to` (with the captured/refunded amounts); false when it was not in `from`. */
  transition(tenantId: string, id: string, from: PaymentState, to: PaymentState, at: string, change?: { capturedMinor?: bigint; refundedMinor?: bigint; captureKey?: string }): boolean;
  setTicketNotice(tenantId: string, id: string, notice: TicketNotice, at: string): void;

  getRefund(tenantId: string, id: string): RefundRow | undefined;
  refundByKey(tenantId: string, key: string): RefundRow | undefined;
  /** Sum of the payment's refunds that are pending (reserved) or succeeded. */
  committedRefunds(tenantId: string, paymentId: string): bigint;
  succeededRefunds(tenantId: string, paymentId: string): bigint;
  insertRefund(r: RefundRow): void;
  finishRefund(tenantId: string, id: string, status: "succeeded" | "failed", processorRefundId: string, at: string): boolean;
  /** The refund a ticket was refunded by, if any. */
  ticketRefund(tenantId: string, ticketId: string): string | undefined;
  refundTickets(tenantId: string, refundId: string): string[];
  addRefundTicket(tenantId: string, ticketId: string, refundId: string): void;

  getEscrow(tenantId: string, id: string): EscrowRow | undefined;
  escrowByHoldKey(tenantId: string, key: string): EscrowRow | undefined;
  escrowOfPayment(tenantId: string, paymentId: string): EscrowRow | undefined;
  insertEscrow(e: EscrowRow): void;
  releaseEscrow(tenantId: string, id: string, key: string, sellerPayoutMinor: bigint, at: string): boolean;
  setEscrowTransfer(tenantId: string, id: string, processorTransferId: string): void;
  refundEscrow(tenantId: string, id: string, key: string, refundId: string, at: string): boolean;

  accountOfVenue(tenantId: string, venueId: string): AccountRow | undefined;
  accountByKey(tenantId: string, key: string): AccountRow | undefined;
  insertAccount(a: AccountRow): void;

  transferByKey(tenantId: string, key: string): TransferRow | undefined;
  insertTransfer(t: TransferRow): void;
  getTransfer(tenantId: string, id: string): TransferRow | undefined;
  /** pending -> paid, with the processor's transfer id. */
  markTransferPaid(tenantId: string, id: string, processorTransferId: string): void;
  /** Sum of a venue's transfers in `currency` that are pending or paid, created in [from, to). */
  venueTransfers(tenantId: string, venueId: string, currency: string, from: string, to: string): bigint;
  /** The venue's captured sales and refunds in `currency`, payments created in [from, to). */
  venueSales(tenantId: string, venueId: string, currency: string, from: string, to: string): VenueSales;
  /** The currency of the venue's first payment, if it has any. */
  venueCurrency(tenantId: string, venueId: string): string | undefined;

  /** The stored answer of a keyed call, if any. */
  keyedAnswer(tenantId: string, method: string, key: string): { requestHash: string; response: Uint8Array } | undefined;
  /** Stores a keyed call's answer; the first one stays. */
  saveKeyedAnswer(tenantId: string, method: string, key: string, requestHash: string, response: Uint8Array, at: string): void;

  /** Rates that apply to an address: country-wide, region-wide and city rows. */
  taxRates(tenantId: string, country: string, region: string, city: string): TaxRateRow[];
  insertTaxRate(r: TaxRateRow): void;
}

type Row = Record<string, string | number | null>;
const big = (v: unknown): bigint => BigInt(v as number);
const str = (v: unknown): string => v as string;
const optStr = (v: unknown): string | null => (v === null ? null : (v as string));

function toPayment(r: Row): PaymentRow {
  return {
    tenantId: str(r.tenant_id), id: str(r.id), orderId: str(r.order_id), listingId: str(r.listing_id), userId: str(r.user_id),
    venueId: str(r.venue_id), eventId: str(r.event_id), amountMinor: big(r.amount_minor), currency: str(r.currency),
    status: r.status as PaymentState, capturedMinor: big(r.captured_minor), refundedMinor: big(r.refunded_minor),
    intentId: str(r.intent_id), clientSecret: str(r.client_secret), paymentMethod: str(r.payment_method), cardBrand: str(r.card_brand),
    cardLast4: str(r.card_last4), failureReason: str(r.failure_reason), ticketQuantity: r.ticket_quantity as number,
    ticketNotice: r.ticket_notice as TicketNotice, createKey: optStr(r.create_key), captureKey: optStr(r.capture_key),
    createdAt: str(r.created_at), updatedAt: str(r.updated_at),
  };
}

function toRefund(r: Row): RefundRow {
  return {
    tenantId: str(r.tenant_id), id: str(r.id), paymentId: str(r.payment_id), orderId: str(r.order_id), amountMinor: big(r.amount_minor),
    currency: str(r.currency), status: r.status as RefundState, reason: str(r.reason), processorRefundId: str(r.processor_refund_id),
    requestKey: optStr(r.request_key), createdAt: str(r.created_at), completedAt: optStr(r.completed_at),
  };
}

function toEscrow(r: Row): EscrowRow {
  return {
    tenantId: str(r.tenant_id), id: str(r.id), listingId: str(r.listing_id), buyerUserId: str(r.buyer_user_id), sellerUserId: str(r.seller_user_id),
    paymentId: str(r.payment_id), amountMinor: big(r.amount_minor), currency: str(r.currency), status: r.status as EscrowState,
    sellerPayoutMinor: big(r.seller_payout_minor), processorTransferId: str(r.processor_transfer_id), refundId: str(r.refund_id),
    holdKey: optStr(r.hold_key), releaseKey: optStr(r.release_key), refundKey: optStr(r.refund_key), heldAt: str(r.held_at),
    releasedAt: optStr(r.released_at), refundedAt: optStr(r.refunded_at),
  };
}

function toAccount(r: Row): AccountRow {
  return {
    tenantId: str(r.tenant_id), id: str(r.id), venueId: str(r.venue_id), email: str(r.email), country: str(r.country),
    businessType: str(r.business_type), chargesEnabled: r.charges_enabled === 1, payoutsEnabled: r.payouts_enabled === 1,
    detailsSubmitted: r.details_submitted === 1, onboardingUrl: str(r.onboarding_url), createKey: optStr(r.create_key), createdAt: str(r.created_at),
  };
}

function toTransfer(r: Row): TransferRow {
  return {
    tenantId: str(r.tenant_id), id: str(r.id), venueId: str(r.venue_id), connectedAccountId: str(r.connected_account_id), eventId: str(r.event_id),
    amountMinor: big(r.amount_minor), currency: str(r.currency), status: r.status as TransferState, description: str(r.description),
    processorTransferId: str(r.processor_transfer_id), createKey: optStr(r.create_key), createdAt: str(r.created_at),
  };
}

export function createSqlitePaymentStore(db: Database): PaymentStore {
  const q = {
    payment: db.prepare("SELECT * FROM payments WHERE tenant_id = ? AND id = ?"),
    paymentByKey: db.prepare("SELECT * FROM payments WHERE tenant_id = ? AND create_key = ?"),
    orderPayments: db.prepare("SELECT * FROM payments WHERE tenant_id = ? AND order_id = ? ORDER BY created_at, rowid"),
    insertPayment: db.prepare(`INSERT INTO payments (tenant_id, id, order_id, listing_id, user_id, venue_id, event_id, amount_minor, currency, status,
      captured_minor, refunded_minor, intent_id, client_secret, payment_method, card_brand, card_last4, failure_reason, ticket_quantity, ticket_notice,
      create_key, capture_key, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    transition: db.prepare(`UPDATE payments SET status = ?, captured_minor = COALESCE(?, captured_minor), refunded_minor = COALESCE(?, refunded_minor),
      capture_key = COALESCE(?, capture_key), updated_at = ? WHERE tenant_id = ? AND id = ? AND status = ?`),
    notice: db.prepare("UPDATE payments SET ticket_notice = ?, updated_at = ? WHERE tenant_id = ? AND id = ?"),
    refund: db.prepare("SELECT * FROM refunds WHERE tenant_id = ? AND id = ?"),
    refundByKey: db.prepare("SELECT * FROM refunds WHERE tenant_id = ? AND request_key = ?"),
    committed: db.prepare("SELECT COALESCE(SUM(amount_minor), 0) AS s FROM refunds WHERE tenant_id = ? AND payment_id = ? AND status IN ('pending', 'succeeded')"),
    succeeded: db.prepare("SELECT COALESCE(SUM(amount_minor), 0) AS s FROM refunds WHERE tenant_id = ? AND payment_id = ? AND status = 'succeeded'"),
    insertRefund: db.prepare(`INSERT INTO refunds (tenant_id, id, payment_id, order_id, amount_minor, currency, status, reason, processor_refund_id,
      request_key, created_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    finishRefund: db.prepare("UPDATE refunds SET status = ?, processor_refund_id = ?, completed_at = ? WHERE tenant_id = ? AND id = ? AND status = 'pending'"),
    ticketRefund: db.prepare("SELECT refund_id FROM refund_tickets WHERE tenant_id = ? AND ticket_id = ?"),
    refundTickets: db.prepare("SELECT ticket_id FROM refund_tickets WHERE tenant_id = ? AND refund_id = ? ORDER BY rowid"),
    addRefundTicket: db.prepare("INSERT INTO refund_tickets (tenant_id, ticket_id, refund_id) VALUES (?, ?, ?)"),
    escrow: db.prepare("SELECT * FROM escrows WHERE tenant_id = ? AND id = ?"),
    escrowByKey: db.prepare("SELECT * FROM escrows WHERE tenant_id = ? AND hold_key = ?"),
    escrowOfPayment: db.prepare("SELECT * FROM escrows WHERE tenant_id = ? AND payment_id = ?"),
    insertEscrow: db.prepare(`INSERT INTO escrows (tenant_id, id, listing_id, buyer_user_id, seller_user_id, payment_id, amount_minor, currency, status,
      hold_key, held_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'held', ?, ?)`),
    releaseEscrow: db.prepare(`UPDATE escrows SET status = 'released', release_key = ?, seller_payout_minor = ?, released_at = ?
      WHERE tenant_id = ? AND id = ? AND status = 'held'`),
    escrowTransfer: db.prepare("UPDATE escrows SET processor_transfer_id = ? WHERE tenant_id = ? AND id = ?"),
    refundEscrow: db.prepare(`UPDATE escrows SET status = 'refunded', refund_key = ?, refund_id = ?, refunded_at = ?
      WHERE tenant_id = ? AND id = ? AND status = 'held'`),
    accountOfVenue: db.prepare("SELECT * FROM connected_accounts WHERE tenant_id = ? AND venue_id = ?"),
    accountByKey: db.prepare("SELECT * FROM connected_accounts WHERE tenant_id = ? AND create_key = ?"),
    insertAccount: db.prepare(`INSERT INTO connected_accounts (tenant_id, id, venue_id, email, country, business_type, charges_enabled, payouts_enabled,
      details_submitted, onboarding_url, create_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    transferByKey: db.prepare("SELECT * FROM venue_transfers WHERE tenant_id = ? AND create_key = ?"),
    insertTransfer: db.prepare(`INSERT INTO venue_transfers (tenant_id, id, venue_id, connected_account_id, event_id, amount_minor, currency, status,
      description, processor_transfer_id, create_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    transfer: db.prepare("SELECT * FROM venue_transfers WHERE tenant_id = ? AND id = ?"),
    transferPaid: db.prepare("UPDATE venue_transfers SET status = 'paid', processor_transfer_id = ? WHERE tenant_id = ? AND id = ? AND status = 'pending'"),
    venueTransfers: db.prepare(`SELECT COALESCE(SUM(amount_minor), 0) AS s FROM venue_transfers WHERE tenant_id = ? AND venue_id = ? AND currency = ?
      AND status IN ('pending', 'paid') AND created_at >= ? AND created_at < ?`),
    venueSales: db.prepare(`SELECT COALESCE(SUM(captured_minor), 0) AS captured, COALESCE(SUM(refunded_minor), 0) AS refunded, COUNT(*) AS n
      FROM payments WHERE tenant_id = ? AND venue_id = ? AND currency = ? AND captured_minor > 0 AND created_at >= ? AND created_at < ?`),
    venueCurrency: db.prepare("SELECT currency FROM payments WHERE tenant_id = ? AND venue_id = ? ORDER BY created_at, rowid LIMIT 1"),
    keyedAnswer: db.prepare("SELECT request_hash, response FROM keyed_answers WHERE tenant_id = ? AND method = ? AND request_key = ?"),
    saveKeyedAnswer: db.prepare(`INSERT INTO keyed_answers (tenant_id, method, request_key, request_hash, response, created_at) VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT DO NOTHING`),
    taxRates: db.prepare(`SELECT * FROM tax_rates WHERE tenant_id = ? AND country = ? AND (region = '' OR region = ?)
      AND (city = '' OR lower(city) = lower(?)) ORDER BY length(region), length(city), jurisdiction`),
    insertTaxRate: db.prepare("INSERT INTO tax_rates (tenant_id, country, region, city, jurisdiction, rate_bp) VALUES (?, ?, ?, ?, ?, ?)"),
  };
  const one = <T>(stmt: { get(...a: (string | number | bigint | null)[]): unknown }, map: (r: Row) => T, ...args: (string | number | bigint | null)[]): T | undefined => {
    const r = stmt.get(...args) as Row | undefined;
    return r && map(r);
  };
  const sum = (stmt: { get(...a: string[]): unknown }, ...args: string[]): bigint => big((stmt.get(...args) as { s: number }).s);

  return {
    getPayment: (t, id) => one(q.payment, toPayment, t, id),
    paymentByCreateKey: (t, key) => one(q.paymentByKey, toPayment, t, key),
    orderPayments: (t, orderId) => (q.orderPayments.all(t, orderId) as Row[]).map(toPayment),
    insertPayment(p) {
      q.insertPayment.run(p.tenantId, p.id, p.orderId, p.listingId, p.userId, p.venueId, p.eventId, p.amountMinor, p.currency, p.status,
        p.capturedMinor, p.refundedMinor, p.intentId, p.clientSecret, p.paymentMethod, p.cardBrand, p.cardLast4, p.failureReason, p.ticketQuantity,
        p.ticketNotice, p.createKey, p.captureKey, p.createdAt, p.updatedAt);
    },
    transition(t, id, from, to, at, change = {}) {
      return q.transition.run(to, change.capturedMinor ?? null, change.refundedMinor ?? null, change.captureKey ?? null, at, t, id, from).changes === 1;
    },
    setTicketNotice(t, id, notice, at) {
      q.notice.run(notice, at, t, id);
    },
    getRefund: (t, id) => one(q.refund, toRefund, t, id),
    refundByKey: (t, key) => one(q.refundByKey, toRefund, t, key),
    committedRefunds: (t, paymentId) => sum(q.committed, t, paymentId),
    succeededRefunds: (t, paymentId) => sum(q.succeeded, t, paymentId),
    insertRefund(r) {
      q.insertRefund.run(r.tenantId, r.id, r.paymentId, r.orderId, r.amountMinor, r.currency, r.status, r.reason, r.processorRefundId, r.requestKey,
        r.createdAt, r.completedAt);
    },
    finishRefund: (t, id, status, processorRefundId, at) => q.finishRefund.run(status, processorRefundId, at, t, id).changes === 1,
    ticketRefund: (t, ticketId) => (q.ticketRefund.get(t, ticketId) as { refund_id: string } | undefined)?.refund_id,
    refundTickets: (t, refundId) => (q.refundTickets.all(t, refundId) as { ticket_id: string }[]).map((r) => r.ticket_id),
    addRefundTicket(t, ticketId, refundId) {
      q.addRefundTicket.run(t, ticketId, refundId);
    },
    getEscrow: (t, id) => one(q.escrow, toEscrow, t, id),
    escrowByHoldKey: (t, key) => one(q.escrowByKey, toEscrow, t, key),
    escrowOfPayment: (t, paymentId) => one(q.escrowOfPayment, toEscrow, t, paymentId),
    insertEscrow(e) {
      q.insertEscrow.run(e.tenantId, e.id, e.listingId, e.buyerUserId, e.sellerUserId, e.paymentId, e.amountMinor, e.currency, e.holdKey, e.heldAt);
    },
    releaseEscrow: (t, id, key, payout, at) => q.releaseEscrow.run(key, payout, at, t, id).changes === 1,
    setEscrowTransfer(t, id, transferId) {
      q.escrowTransfer.run(transferId, t, id);
    },
    refundEscrow: (t, id, key, refundId, at) => q.refundEscrow.run(key, refundId, at, t, id).changes === 1,
    accountOfVenue: (t, venueId) => one(q.accountOfVenue, toAccount, t, venueId),
    accountByKey: (t, key) => one(q.accountByKey, toAccount, t, key),
    insertAccount(a) {
      q.insertAccount.run(a.tenantId, a.id, a.venueId, a.email, a.country, a.businessType, a.chargesEnabled ? 1 : 0, a.payoutsEnabled ? 1 : 0,
        a.detailsSubmitted ? 1 : 0, a.onboardingUrl, a.createKey, a.createdAt);
    },
    transferByKey: (t, key) => one(q.transferByKey, toTransfer, t, key),
    insertTransfer(x) {
      q.insertTransfer.run(x.tenantId, x.id, x.venueId, x.connectedAccountId, x.eventId, x.amountMinor, x.currency, x.status, x.description,
        x.processorTransferId, x.createKey, x.createdAt);
    },
    getTransfer: (t, id) => one(q.transfer, toTransfer, t, id),
    markTransferPaid(t, id, processorTransferId) {
      q.transferPaid.run(processorTransferId, t, id);
    },
    venueTransfers: (t, venueId, currency, from, to) => sum(q.venueTransfers, t, venueId, currency, from, to),
    venueSales(t, venueId, currency, from, to) {
      const r = q.venueSales.get(t, venueId, currency, from, to) as { captured: number; refunded: number; n: number };
      return { capturedMinor: big(r.captured), refundedMinor: big(r.refunded), paymentCount: r.n };
    },
    venueCurrency: (t, venueId) => (q.venueCurrency.get(t, venueId) as { currency: string } | undefined)?.currency,
    keyedAnswer(t, method, key) {
      const r = q.keyedAnswer.get(t, method, key) as { request_hash: string; response: Uint8Array } | undefined;
      return r && { requestHash: r.request_hash, response: r.response };
    },
    saveKeyedAnswer(t, method, key, requestHash, response, at) {
      q.saveKeyedAnswer.run(t, method, key, requestHash, response, at);
    },
    taxRates: (t, country, region, city) =>
      (q.taxRates.all(t, country, region, city) as Row[]).map((r) => ({
        tenantId: str(r.tenant_id), country: str(r.country), region: str(r.region), city: str(r.city), jurisdiction: str(r.jurisdiction), rateBp: r.rate_bp as number,
      })),
    insertTaxRate(r) {
      q.insertTaxRate.run(r.tenantId, r.country, r.region, r.city, r.jurisdiction, r.rateBp);
    },
  };
}
