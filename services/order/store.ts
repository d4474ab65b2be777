/**
 * order-service's storage port and its SQLite implementation. Every query is
 * keyed by tenant: another tenant's order does not exist for the caller.
 * State changes are conditional on the state they leave, so two racing calls
 * (a payment completing, a cancel) cannot both win.
 */
import { transaction, type Database } from "../shared/database.ts";

export type OrderState = "pending" | "paid" | "confirmed" | "cancelled" | "expired" | "refunded" | "partially_refunded";
export type CompletedPaymentState = "completed" | "authorized";

export interface OrderItemRow {
  readonly id: string;
  readonly ticketTypeId: string;
  readonly quantity: number;
  readonly unitPriceMinor: bigint;
}

export interface OrderRow {
  readonly tenantId: string;
  readonly id: string;
  readonly orderNumber: string;
  readonly userId: string;
  readonly eventId: string;
  readonly status: OrderState;
  readonly currency: string;
  readonly subtotalMinor: bigint;
  readonly platformFeeMinor: bigint;
  readonly processingFeeMinor: bigint;
  readonly taxMinor: bigint;
  readonly discountMinor: bigint;
  readonly totalMinor: bigint;
  readonly paymentMethod: string;
  readonly paymentId: string | undefined;
  readonly paymentIntentId: string;
  readonly paymentStatus: CompletedPaymentState | undefined;
  readonly cancelReason: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly idempotencyKey: string | undefined;
  readonly requestHash: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly items: readonly OrderItemRow[];
}

export interface OrderStore {
  getOrder(tenantId: string, orderId: string): OrderRow | undefined;
  /** The order a CreateOrder idempotency key made, if any. */
  findByIdempotencyKey(tenantId: string, key: string): OrderRow | undefined;
  /** Inserts the order and its items in one transaction. */
  insertOrder(order: OrderRow): void;
  /** Records the payment started for a pending order; false if the order is no longer pending. */
  recordPayment(tenantId: string, orderId: string, paymentId: string, paymentIntentId: string, at: string): boolean;
  /** pending -> paid; false if the order was not pending. */
  markPaid(tenantId: string, orderId: string, paymentStatus: CompletedPaymentState, at: string): boolean;
  /** `from` -> cancelled; false if the order was no longer in `from`. */
  cancel(tenantId: string, orderId: string, from: OrderState, reason: string, at: string): boolean;
}

interface OrderRecord {
  tenant_id: string;
  id: string;
  order_number: string;
  user_id: string;
  event_id: string;
  status: OrderState;
  currency: string;
  subtotal_minor: number | bigint;
  platform_fee_minor: number | bigint;
  processing_fee_minor: number | bigint;
  tax_minor: number | bigint;
  discount_minor: number | bigint;
  total_minor: number | bigint;
  payment_method: string;
  payment_id: string | null;
  payment_intent_id: string;
  payment_status: CompletedPaymentState | null;
  cancel_reason: string;
  metadata_json: string;
  idempotency_key: string | null;
  request_hash: string;
  created_at: string;
  updated_at: string;
}

interface ItemRecord {
  id: string;
  ticket_type_id: string;
  quantity: number;
  unit_price_minor: number | bigint;
}

export function createSqliteOrderStore(db: Database): OrderStore {
  const getOrder = db.prepare("SELECT * FROM orders WHERE tenant_id = ? AND id = ?");
  const byKey = db.prepare("SELECT * FROM orders WHERE tenant_id = ? AND idempotency_key = ?");
  const items = db.prepare("SELECT id, ticket_type_id, quantity, unit_price_minor FROM order_items WHERE tenant_id = ? AND order_id = ? ORDER BY position");
  // Amounts are int64 minor units: read them as bigint, never through a double.
  for (const s of [getOrder, byKey, items]) s.setReadBigInts(true);
  const insertOrder = db.prepare(`INSERT INTO orders (tenant_id, id, order_number, user_id, event_id, status, currency, subtotal_minor,
    platform_fee_minor, processing_fee_minor, tax_minor, discount_minor, total_minor, payment_method, payment_id, payment_intent_id,
    payment_status, cancel_reason, metadata_json, idempotency_key, request_hash, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertItem = db.prepare(`INSERT INTO order_items (tenant_id, id, order_id, position, ticket_type_id, quantity, unit_price_minor)
    VALUES (?, ?, ?, ?, ?, ?, ?)`);
  const recordPayment = db.prepare(`UPDATE orders SET payment_id = ?, payment_intent_id = ?, updated_at = ?
    WHERE tenant_id = ? AND id = ? AND status = 'pending'`);
  const markPaid = db.prepare(`UPDATE orders SET status = 'paid', payment_status = ?, updated_at = ?
    WHERE tenant_id = ? AND id = ? AND status = 'pending' AND payment_id IS NOT NULL`);
  const cancel = db.prepare(`UPDATE orders SET status = 'cancelled', cancel_reason = ?, updated_at = ?
    WHERE tenant_id = ? AND id = ? AND status = ?`);

  function toRow(r: OrderRecord): OrderRow {
    const lines = (items.all(r.tenant_id, r.id) as unknown as ItemRecord[]).map((i) => ({
      id: i.id,
      ticketTypeId: i.ticket_type_id,
      quantity: Number(i.quantity),
      unitPriceMinor: BigInt(i.unit_price_minor),
    }));
    return {
      tenantId: r.tenant_id,
      id: r.id,
      orderNumber: r.order_number,
      userId: r.user_id,
      eventId: r.event_id,
      status: r.status,
      currency: r.currency,
      subtotalMinor: BigInt(r.subtotal_minor),
      platformFeeMinor: BigInt(r.platform_fee_minor),
      processingFeeMinor: BigInt(r.processing_fee_minor),
      taxMinor: BigInt(r.tax_minor),
      discountMinor: BigInt(r.discount_minor),
      totalMinor: BigInt(r.total_minor),
      paymentMethod: r.payment_method,
      paymentId: r.payment_id ?? undefined,
      paymentIntentId: r.payment_intent_id,
      paymentStatus: r.payment_status ?? undefined,
      cancelReason: r.cancel_reason,
      metadata: JSON.parse(r.metadata_json) as Record<string, string>,
      idempotencyKey: r.idempotency_key ?? undefined,
      requestHash: r.request_hash,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
      items: lines,
    };
  }

  return {
    getOrder(tenantId, orderId) {
      const r = getOrder.get(tenantId, orderId) as OrderRecord | undefined;
      return r && toRow(r);
    },
    findByIdempotencyKey(tenantId, key) {
      const r = byKey.get(tenantId, key) as OrderRecord | undefined;
      return r && toRow(r);
    },
    insertOrder(o) {
      transaction(db, () => {
        insertOrder.run(o.tenantId, o.id, o.orderNumber, o.userId, o.eventId, o.status, o.currency, o.subtotalMinor,
          o.platformFeeMinor, o.processingFeeMinor, o.taxMinor, o.discountMinor, o.totalMinor, o.paymentMethod, o.paymentId ?? null,
          o.paymentIntentId, o.paymentStatus ?? null, o.cancelReason, JSON.stringify(o.metadata), o.idempotencyKey ?? null,
          o.requestHash, o.createdAt, o.updatedAt);
        o.items.forEach((i, position) => insertItem.run(o.tenantId, i.id, o.id, position, i.ticketTypeId, i.quantity, i.unitPriceMinor));
      });
    },
    recordPayment(tenantId, orderId, paymentId, paymentIntentId, at) {
      return recordPayment.run(paymentId, paymentIntentId, at, tenantId, orderId).changes === 1;
    },
    markPaid(tenantId, orderId, paymentStatus, at) {
      return markPaid.run(paymentStatus, at, tenantId, orderId).changes === 1;
    },
    cancel(tenantId, orderId, from, reason, at) {
      return cancel.run(reason, at, tenantId, orderId, from).changes === 1;
    },
  };
}
