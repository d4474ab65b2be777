/**
 * ticket-service's storage port and its SQLite implementation. Every query is
 * keyed by tenant: another tenant's ticket does not exist for the caller.
 * The store only reads and writes rows; the state machines live in the
 * handlers, which group multi-row writes in `transaction()`.
 */
import type { Database } from "../shared/database.ts";

export type TicketState = "reserved" | "sold" | "transferred" | "used" | "cancelled";
export type ScanType = "entry" | "exit" | "reentry";

export interface EventRow {
  readonly tenantId: string;
  readonly id: string;
  readonly name: string;
  readonly venueId: string;
  readonly venueName: string;
  readonly refundPolicyHours: number;
  readonly startsAt: string;
  readonly endsAt: string;
  readonly status: string;
  readonly timezone: string;
  readonly eventType: string;
}

export interface TicketTypeRow {
  readonly tenantId: string;
  readonly id: string;
  readonly eventId: string;
  readonly name: string;
  readonly description: string;
  readonly priceMinor: number;
  readonly currency: string;
  readonly quantity: number;
  readonly isTransferable: boolean;
}

export interface TicketRow {
  readonly tenantId: string;
  readonly id: string;
  readonly eventId: string;
  readonly ticketTypeId: string;
  readonly ticketTypeName: string;
  readonly orderId: string;
  readonly userId: string;
  readonly status: TicketState;
  readonly ticketNumber: string;
  readonly seatSection: string;
  readonly seatRow: string;
  readonly seatNumber: string;
  readonly priceMinor: number;
  readonly currency: string;
  readonly isTransferable: boolean;
  readonly transferCount: number;
  readonly qrCode: string;
  readonly qrHmacSecret: string;
  readonly tokenId: string | null;
  readonly isMinted: boolean;
  readonly mintTransactionId: string;
  readonly mintedAt: string | null;
  readonly walletAddress: string;
  readonly metadataUri: string;
  readonly lastTransferSignature: string;
  readonly scanCount: number;
  readonly lastScannedAt: string | null;
  readonly validatedAt: string | null;
  readonly usedAt: string | null;
  readonly cancelReason: string;
  readonly refundId: string;
  readonly cancelledAt: string | null;
  readonly paymentId: string;
  readonly purchasedAt: string | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/** A new ticket: identity, ownership and price; NFT and scan state start empty. */
export type NewTicket = Pick<
  TicketRow,
  | "tenantId" | "id" | "eventId" | "ticketTypeId" | "orderId" | "userId" | "status" | "ticketNumber" | "priceMinor" | "currency"
  | "isTransferable" | "qrCode" | "qrHmacSecret" | "paymentId" | "purchasedAt" | "createdAt"
> & Partial<Pick<TicketRow, "seatSection" | "seatRow" | "seatNumber" | "tokenId" | "isMinted" | "mintTransactionId" | "mintedAt" | "usedAt" | "validatedAt" | "scanCount" | "lastScannedAt">>;

export interface TransferRow {
  readonly tenantId: string;
  readonly id: string;
  readonly ticketId: string;
  readonly fromUserId: string;
  readonly toUserId: string;
  readonly reason: string;
  readonly transferCountAfter: number;
  readonly idempotencyKey: string;
  readonly transferredAt: string;
}

export interface ScanRow {
  readonly tenantId: string;
  readonly id: string;
  readonly ticketId: string;
  readonly deviceId: string;
  readonly venueId: string;
  readonly scanType: ScanType;
  readonly scanCountAfter: number;
  readonly statusAfter: TicketState;
  readonly idempotencyKey: string;
  readonly scannedAt: string;
}

export interface PaymentOutcomeRow {
  readonly tenantId: string;
  readonly paymentId: string;
  readonly orderId: string;
  readonly outcome: "succeeded" | "failed";
  readonly idempotencyKey: string;
  readonly ticketIds: readonly string[];
  readonly reservationReleased: boolean;
  readonly reason: string;
  readonly createdAt: string;
}

export interface EventTicketStats {
  readonly total: number;
  readonly sold: number;
  readonly used: number;
  readonly transferred: number;
  readonly cancelled: number;
  readonly validated: number;
  readonly lastValidationAt: string | null;
}

/** The NFT fields UpdateNft may set; undefined leaves a field as it is. */
export interface NftUpdate {
  readonly tokenId?: string;
  readonly isMinted?: boolean;
  readonly mintedAt?: string | null;
  readonly walletAddress?: string;
  readonly metadataUri?: string;
  readonly lastTransferSignature?: string;
  readonly mintTransactionId?: string;
}

export interface TicketStore {
  getEvent(tenantId: string, eventId: string): EventRow | undefined;
  getTicketType(tenantId: string, ticketTypeId: string): TicketTypeRow | undefined;
  /** Tickets of a type that hold inventory (every state but cancelled). */
  countHeldOfType(tenantId: string, ticketTypeId: string): number;

  getTicket(tenantId: string, ticketId: string): TicketRow | undefined;
  getTicketByToken(tenantId: string, tokenId: string): TicketRow | undefined;
  ticketsByTokens(tenantId: string, tokenIds: readonly string[]): TicketRow[];
  /** One page of an event's tickets in id order, after `afterId`. */
  eventTicketsPage(tenantId: string, eventId: string, status: TicketState | undefined, afterId: string, limit: number): TicketRow[];
  ticketsOfOrder(tenantId: string, orderId: string): TicketRow[];
  /** Tickets issued for an order (reservations not counted). */
  countIssuedForOrder(tenantId: string, orderId: string): number;
  eventStats(tenantId: string, eventId: string): EventTicketStats;

  insertEvent(event: EventRow): void;
  insertTicketType(type: TicketTypeRow): void;
  insertTicket(ticket: NewTicket): void;
  /** Reserved -> sold for a paid order. */
  confirmReserved(tenantId: string, ticketId: string, paymentId: string, priceMinor: number, currency: string, at: string): void;
  transferOwnership(tenantId: string, ticketId: string, toUserId: string, at: string): void;
  cancel(tenantId: string, ticketId: string, reason: string, refundId: string, at: string): void;
  applyScan(tenantId: string, ticketId: string, status: TicketState, firstEntry: boolean, at: string): void;
  updateNft(tenantId: string, ticketId: string, update: NftUpdate, at: string): void;

  findTransferByKey(tenantId: string, key: string): TransferRow | undefined;
  insertTransfer(transfer: TransferRow): void;
  findScanByKey(tenantId: string, key: string): ScanRow | undefined;
  insertScan(scan: ScanRow): void;
  findPaymentOutcome(tenantId: string, paymentId: string): PaymentOutcomeRow | undefined;
  findPaymentOutcomeByKey(tenantId: string, key: string): PaymentOutcomeRow | undefined;
  findIssuingOutcomeOfOrder(tenantId: string, orderId: string): PaymentOutcomeRow | undefined;
  insertPaymentOutcome(outcome: PaymentOutcomeRow): void;
}

interface TicketRecord {
  tenant_id: string;
  id: string;
  event_id: string;
  ticket_type_id: string;
  ticket_type_name: string;
  order_id: string;
  user_id: string;
  status: TicketState;
  ticket_number: string;
  seat_section: string;
  seat_row: string;
  seat_number: string;
  price_minor: number;
  currency: string;
  is_transferable: number;
  transfer_count: number;
  qr_code: string;
  qr_hmac_secret: string;
  token_id: string | null;
  is_minted: number;
  mint_transaction_id: string;
  minted_at: string | null;
  wallet_address: string;
  metadata_uri: string;
  last_transfer_signature: string;
  scan_count: number;
  last_scanned_at: string | null;
  validated_at: string | null;
  used_at: string | null;
  cancel_reason: string;
  refund_id: string;
  cancelled_at: string | null;
  payment_id: string;
  purchased_at: string | null;
  created_at: string;
  updated_at: string;
}

function toTicket(r: TicketRecord): TicketRow {
  return {
    tenantId: r.tenant_id, id: r.id, eventId: r.event_id, ticketTypeId: r.ticket_type_id, ticketTypeName: r.ticket_type_name,
    orderId: r.order_id, userId: r.user_id, status: r.status, ticketNumber: r.ticket_number, seatSection: r.seat_section,
    seatRow: r.seat_row, seatNumber: r.seat_number, priceMinor: r.price_minor, currency: r.currency,
    isTransferable: r.is_transferable === 1, transferCount: r.transfer_count, qrCode: r.qr_code, qrHmacSecret: r.qr_hmac_secret,
    tokenId: r.token_id, isMinted: r.is_minted === 1, mintTransactionId: r.mint_transaction_id, mintedAt: r.minted_at,
    walletAddress: r.wallet_address, metadataUri: r.metadata_uri, lastTransferSignature: r.last_transfer_signature,
    scanCount: r.scan_count, lastScannedAt: r.last_scanned_at, validatedAt: r.validated_at, usedAt: r.used_at,
    cancelReason: r.cancel_reason, refundId: r.refund_id, cancelledAt: r.cancelled_at, paymentId: r.payment_id,
    purchasedAt: r.purchased_at, createdAt: r.created_at, updatedAt: r.updated_at,
  };
}

interface OutcomeRecord {
  tenant_id: string;
  payment_id: string;
  order_id: string;
  outcome: "succeeded" | "failed";
  idempotency_key: string;
  ticket_ids: string;
  reservation_released: number;
  reason: string;
  created_at: string;
}

function toOutcome(r: OutcomeRecord | undefined): PaymentOutcomeRow | undefined {
  return r && {
    tenantId: r.tenant_id, paymentId: r.payment_id, orderId: r.order_id, outcome: r.outcome, idempotencyKey: r.idempotency_key,
    ticketIds: JSON.parse(r.ticket_ids) as string[], reservationReleased: r.reservation_released === 1, reason: r.reason, createdAt: r.created_at,
  };
}

// Tickets are always read with their type's name (Ticket.ticket_type_name).
const TICKET_SELECT = "SELECT t.*, tt.name AS ticket_type_name FROM tickets t JOIN ticket_types tt ON tt.tenant_id = t.tenant_id AND tt.id = t.ticket_type_id";

export function createSqliteTicketStore(db: Database): TicketStore {
  const getEvent = db.prepare("SELECT * FROM events WHERE tenant_id = ? AND id = ?");
  const getType = db.prepare("SELECT * FROM ticket_types WHERE tenant_id = ? AND id = ?");
  const countHeld = db.prepare("SELECT COUNT(*) AS n FROM tickets WHERE tenant_id = ? AND ticket_type_id = ? AND status <> 'cancelled'");
  const getTicket = db.prepare(`${TICKET_SELECT} WHERE t.tenant_id = ? AND t.id = ?`);
  const getByToken = db.prepare(`${TICKET_SELECT} WHERE t.tenant_id = ? AND t.token_id = ?`);
  const byTokens = db.prepare(`${TICKET_SELECT} WHERE t.tenant_id = ? AND t.token_id IN (SELECT value FROM json_each(?))`);
  const eventPage = db.prepare(`${TICKET_SELECT} WHERE t.tenant_id = ? AND t.event_id = ? AND t.id > ? AND (? IS NULL OR t.status = ?) ORDER BY t.id LIMIT ?`);
  const ofOrder = db.prepare(`${TICKET_SELECT} WHERE t.tenant_id = ? AND t.order_id = ? ORDER BY t.ticket_number`);
  const countIssued = db.prepare("SELECT COUNT(*) AS n FROM tickets WHERE tenant_id = ? AND order_id = ? AND status <> 'reserved'");
  const stats = db.prepare(`SELECT COUNT(*) AS total,
      COALESCE(SUM(status = 'sold'), 0) AS sold, COALESCE(SUM(status = 'used'), 0) AS used,
      COALESCE(SUM(status = 'transferred'), 0) AS transferred, COALESCE(SUM(status = 'cancelled'), 0) AS cancelled,
      COALESCE(SUM(validated_at IS NOT NULL), 0) AS validated, MAX(validated_at) AS last_validation_at
    FROM tickets WHERE tenant_id = ? AND event_id = ? AND status <> 'reserved'`);
  const insertEvent = db.prepare(`INSERT INTO events (tenant_id, id, name, venue_id, venue_name, refund_policy_hours, starts_at, ends_at, status, timezone, event_type)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertType = db.prepare(`INSERT INTO ticket_types (tenant_id, id, event_id, name, description, price_minor, currency, quantity, is_transferable)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertTicket = db.prepare(`INSERT INTO tickets (tenant_id, id, event_id, ticket_type_id, order_id, user_id, status, ticket_number,
      seat_section, seat_row, seat_number, price_minor, currency, is_transferable, qr_code, qr_hmac_secret, token_id, is_minted,
      mint_transaction_id, minted_at, scan_count, last_scanned_at, validated_at, used_at, payment_id, purchased_at, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const confirmReserved = db.prepare(`UPDATE tickets SET status = 'sold', payment_id = ?, price_minor = ?, currency = ?, purchased_at = ?, updated_at = ?
    WHERE tenant_id = ? AND id = ? AND status = 'reserved'`);
  const transfer = db.prepare(`UPDATE tickets SET user_id = ?, status = 'transferred', transfer_count = transfer_count + 1, updated_at = ?
    WHERE tenant_id = ? AND id = ?`);
  const cancel = db.prepare(`UPDATE tickets SET status = 'cancelled', cancel_reason = ?, refund_id = ?, cancelled_at = ?, updated_at = ?
    WHERE tenant_id = ? AND id = ?`);
  const scan = db.prepare(`UPDATE tickets SET status = ?, scan_count = scan_count + 1, last_scanned_at = ?,
      validated_at = CASE WHEN ? THEN COALESCE(validated_at, ?) ELSE validated_at END,
      used_at = CASE WHEN ? THEN COALESCE(used_at, ?) ELSE used_at END, updated_at = ?
    WHERE tenant_id = ? AND id = ?`);
  const nft = db.prepare(`UPDATE tickets SET
      token_id = CASE WHEN ? THEN ? ELSE token_id END,
      is_minted = CASE WHEN ? THEN ? ELSE is_minted END,
      minted_at = CASE WHEN ? THEN ? ELSE minted_at END,
      wallet_address = CASE WHEN ? THEN ? ELSE wallet_address END,
      metadata_uri = CASE WHEN ? THEN ? ELSE metadata_uri END,
      last_transfer_signature = CASE WHEN ? THEN ? ELSE last_transfer_signature END,
      mint_transaction_id = CASE WHEN ? THEN ? ELSE mint_transaction_id END,
      updated_at = ?
    WHERE tenant_id = ? AND id = ?`);
  const transferByKey = db.prepare("SELECT * FROM ticket_transfers WHERE tenant_id = ? AND idempotency_key = ?");
  const insertTransfer = db.prepare(`INSERT INTO ticket_transfers (tenant_id, id, ticket_id, from_user_id, to_user_id, reason, status, transfer_count_after, idempotency_key, transferred_at)
    VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?)`);
  const scanByKey = db.prepare("SELECT * FROM ticket_scans WHERE tenant_id = ? AND idempotency_key = ?");
  const insertScan = db.prepare(`INSERT INTO ticket_scans (tenant_id, id, ticket_id, device_id, venue_id, scan_type, scan_count_after, status_after, idempotency_key, scanned_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const outcomeByPayment = db.prepare("SELECT * FROM payment_outcomes WHERE tenant_id = ? AND payment_id = ?");
  const outcomeByKey = db.prepare("SELECT * FROM payment_outcomes WHERE tenant_id = ? AND idempotency_key = ?");
  const issuingOutcome = db.prepare("SELECT * FROM payment_outcomes WHERE tenant_id = ? AND order_id = ? AND outcome = 'succeeded'");
  const insertOutcome = db.prepare(`INSERT INTO payment_outcomes (tenant_id, payment_id, order_id, outcome, idempotency_key, ticket_ids, reservation_released, reason, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`);

  const set = (v: unknown) => (v === undefined ? 0 : 1);
  return {
    getEvent(tenantId, eventId) {
      const r = getEvent.get(tenantId, eventId) as Record<string, string | number> | undefined;
      return r && {
        tenantId: r.tenant_id as string, id: r.id as string, name: r.name as string, venueId: r.venue_id as string,
        venueName: r.venue_name as string, refundPolicyHours: r.refund_policy_hours as number, startsAt: r.starts_at as string,
        endsAt: r.ends_at as string, status: r.status as string, timezone: r.timezone as string, eventType: r.event_type as string,
      };
    },
    getTicketType(tenantId, ticketTypeId) {
      const r = getType.get(tenantId, ticketTypeId) as Record<string, string | number> | undefined;
      return r && {
        tenantId: r.tenant_id as string, id: r.id as string, eventId: r.event_id as string, name: r.name as string,
        description: r.description as string, priceMinor: r.price_minor as number, currency: r.currency as string,
        quantity: r.quantity as number, isTransferable: r.is_transferable === 1,
      };
    },
    countHeldOfType: (tenantId, ticketTypeId) => (countHeld.get(tenantId, ticketTypeId) as { n: number }).n,
    getTicket(tenantId, ticketId) {
      const r = getTicket.get(tenantId, ticketId) as TicketRecord | undefined;
      return r && toTicket(r);
    },
    getTicketByToken(tenantId, tokenId) {
      const r = getByToken.get(tenantId, tokenId) as TicketRecord | undefined;
      return r && toTicket(r);
    },
    ticketsByTokens: (tenantId, tokenIds) => (byTokens.all(tenantId, JSON.stringify(tokenIds)) as unknown as TicketRecord[]).map(toTicket),
    eventTicketsPage: (tenantId, eventId, status, afterId, limit) =>
      (eventPage.all(tenantId, eventId, afterId, status ?? null, status ?? null, limit) as unknown as TicketRecord[]).map(toTicket),
    ticketsOfOrder: (tenantId, orderId) => (ofOrder.all(tenantId, orderId) as unknown as TicketRecord[]).map(toTicket),
    countIssuedForOrder: (tenantId, orderId) => (countIssued.get(tenantId, orderId) as { n: number }).n,
    eventStats(tenantId, eventId) {
      const r = stats.get(tenantId, eventId) as Record<string, number | string | null>;
      return {
        total: r.total as number, sold: r.sold as number, used: r.used as number, transferred: r.transferred as number,
        cancelled: r.cancelled as number, validated: r.validated as number, lastValidationAt: r.last_validation_at as string | null,
      };
    },
    insertEvent(e) {
      insertEvent.run(e.tenantId, e.id, e.name, e.venueId, e.venueName, e.refundPolicyHours, e.startsAt, e.endsAt, e.status, e.timezone, e.eventType);
    },
    insertTicketType(t) {
      insertType.run(t.tenantId, t.id, t.eventId, t.name, t.description, t.priceMinor, t.currency, t.quantity, t.isTransferable ? 1 : 0);
    },
    insertTicket(t) {
      insertTicket.run(t.tenantId, t.id, t.eventId, t.ticketTypeId, t.orderId, t.userId, t.status, t.ticketNumber,
        t.seatSection ?? "", t.seatRow ?? "", t.seatNumber ?? "", t.priceMinor, t.currency, t.isTransferable ? 1 : 0, t.qrCode, t.qrHmacSecret,
        t.tokenId ?? null, t.isMinted ? 1 : 0, t.mintTransactionId ?? "", t.mintedAt ?? null, t.scanCount ?? 0, t.lastScannedAt ?? null,
        t.validatedAt ?? null, t.usedAt ?? null, t.paymentId, t.purchasedAt, t.createdAt, t.createdAt);
    },
    confirmReserved(tenantId, ticketId, paymentId, priceMinor, currency, at) {
      confirmReserved.run(paymentId, priceMinor, currency, at, at, tenantId, ticketId);
    },
    transferOwnership(tenantId, ticketId, toUserId, at) {
      transfer.run(toUserId, at, tenantId, ticketId);
    },
    cancel(tenantId, ticketId, reason, refundId, at) {
      cancel.run(reason, refundId, at, at, tenantId, ticketId);
    },
    applyScan(tenantId, ticketId, status, firstEntry, at) {
      const entry = firstEntry ? 1 : 0;
      scan.run(status, at, entry, at, entry, at, at, tenantId, ticketId);
    },
    updateNft(tenantId, ticketId, u, at) {
      nft.run(
        set(u.tokenId), u.tokenId ?? null,
        set(u.isMinted), u.isMinted ? 1 : 0,
        set(u.mintedAt), u.mintedAt ?? null,
        set(u.walletAddress), u.walletAddress ?? "",
        set(u.metadataUri), u.metadataUri ?? "",
        set(u.lastTransferSignature), u.lastTransferSignature ?? "",
        set(u.mintTransactionId), u.mintTransactionId ?? "",
        at, tenantId, ticketId,
      );
    },
    findTransferByKey(tenantId, key) {
      const r = transferByKey.get(tenantId, key) as Record<string, string | number> | undefined;
      return r && {
        tenantId: r.tenant_id as string, id: r.id as string, ticketId: r.ticket_id as string, fromUserId: r.from_user_id as string,
        toUserId: r.to_user_id as string, reason: r.reason as string, transferCountAfter: r.transfer_count_after as number,
        idempotencyKey: r.idempotency_key as string, transferredAt: r.transferred_at as string,
      };
    },
    insertTransfer(t) {
      insertTransfer.run(t.tenantId, t.id, t.ticketId, t.fromUserId, t.toUserId, t.reason, t.transferCountAfter, t.idempotencyKey, t.transferredAt);
    },
    findScanByKey(tenantId, key) {
      const r = scanByKey.get(tenantId, key) as Record<string, string | number> | undefined;
      return r && {
        tenantId: r.tenant_id as string, id: r.id as string, ticketId: r.ticket_id as string, deviceId: r.device_id as string,
        venueId: r.venue_id as string, scanType: r.scan_type as ScanType, scanCountAfter: r.scan_count_after as number,
        statusAfter: r.status_after as TicketState, idempotencyKey: r.idempotency_key as string, scannedAt: r.scanned_at as string,
      };
    },
    insertScan(s) {
      insertScan.run(s.tenantId, s.id, s.ticketId, s.deviceId, s.venueId, s.scanType, s.scanCountAfter, s.statusAfter, s.idempotencyKey, s.scannedAt);
    },
    findPaymentOutcome: (tenantId, paymentId) => toOutcome(outcomeByPayment.get(tenantId, paymentId) as OutcomeRecord | undefined),
    findPaymentOutcomeByKey: (tenantId, key) => toOutcome(outcomeByKey.get(tenantId, key) as OutcomeRecord | undefined),
    findIssuingOutcomeOfOrder: (tenantId, orderId) => toOutcome(issuingOutcome.get(tenantId, orderId) as OutcomeRecord | undefined),
    insertPaymentOutcome(o) {
      insertOutcome.run(o.tenantId, o.paymentId, o.orderId, o.outcome, o.idempotencyKey, JSON.stringify(o.ticketIds),
        o.reservationReleased ? 1 : 0, o.reason, o.createdAt);
    },
  };
}
