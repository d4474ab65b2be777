/**
 * What every payment-service handler shares: its dependencies, the mapping
 * from rows to contract messages, money checks and the idempotency key.
 */
import { createHash } from "node:crypto";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampFromDate, timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import {
  EscrowSchema,
  EscrowStatus,
  MoneySchema,
  PaymentSchema,
  PaymentStatus,
  RefundSchema,
  RefundStatus,
  type Escrow,
  type Money,
  type Payment,
  type Refund,
} from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import type { TicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import type { Logger } from "@tickettoken/rpc";
import type { Database } from "../../shared/database.ts";
import { idempotencyKeyOf } from "../../shared/context.ts";
import type { Validator } from "../../shared/validate.ts";
import type { PaymentProcessor } from "../processor.ts";
import type { EscrowRow, PaymentRow, PaymentState, PaymentStore, RefundRow } from "../store.ts";

export interface PaymentDeps {
  readonly db: Database;
  readonly store: PaymentStore;
  readonly processor: PaymentProcessor;
  readonly tickets: TicketServiceClient;
  readonly logger: Logger;
  now(): Date;
}

/** Largest amount accepted in one request: 10^12 minor units (ten billion dollars). */
export const MAX_AMOUNT = 1_000_000_000_000n;
/** Platform fee on ticket sales and on marketplace resales, in hundredths of a percent. */
export const PLATFORM_FEE_BP = 500n;

const STATUS: Record<PaymentState, PaymentStatus> = {
  authorized: PaymentStatus.AUTHORIZED,
  failed: PaymentStatus.FAILED,
  completed: PaymentStatus.COMPLETED,
  cancelled: PaymentStatus.CANCELLED,
  refunded: PaymentStatus.REFUNDED,
  partially_refunded: PaymentStatus.PARTIALLY_REFUNDED,
};

export function money(amountMinor: bigint, currency: string): Money {
  return create(MoneySchema, { amountMinor, currency });
}

const ts = (iso: string | null): Timestamp | undefined => (iso === null ? undefined : timestampFromDate(new Date(iso)));

export function paymentStatus(s: PaymentState): PaymentStatus {
  return STATUS[s];
}

export function toPayment(p: PaymentRow): Payment {
  return create(PaymentSchema, {
    id: p.id, tenantId: p.tenantId, orderId: p.orderId, userId: p.userId, venueId: p.venueId, eventId: p.eventId,
    amount: money(p.amountMinor, p.currency), status: STATUS[p.status], paymentIntentId: p.intentId,
    refundedAmount: money(p.refundedMinor, p.currency), createdAt: ts(p.createdAt), updatedAt: ts(p.updatedAt),
  });
}

const REFUND_STATUS = { pending: RefundStatus.PENDING, succeeded: RefundStatus.SUCCEEDED, failed: RefundStatus.FAILED } as const;

export function toRefund(r: RefundRow): Refund {
  return create(RefundSchema, {
    id: r.id, tenantId: r.tenantId, paymentId: r.paymentId, orderId: r.orderId, amount: money(r.amountMinor, r.currency),
    status: REFUND_STATUS[r.status], reason: r.reason, processorRefundId: r.processorRefundId, createdAt: ts(r.createdAt), completedAt: ts(r.completedAt),
  });
}

const ESCROW_STATUS = { held: EscrowStatus.HELD, released: EscrowStatus.RELEASED, refunded: EscrowStatus.REFUNDED } as const;

export function toEscrow(e: EscrowRow): Escrow {
  return create(EscrowSchema, {
    id: e.id, tenantId: e.tenantId, listingId: e.listingId, buyerUserId: e.buyerUserId, sellerUserId: e.sellerUserId, paymentId: e.paymentId,
    amount: money(e.amountMinor, e.currency), status: ESCROW_STATUS[e.status], heldAt: ts(e.heldAt), releasedAt: ts(e.releasedAt), refundedAt: ts(e.refundedAt),
  });
}

export function timestampIso(t: Timestamp | undefined): string | undefined {
  return t === undefined ? undefined : timestampDate(t).toISOString();
}

/** A required Money field: set, positive, within bounds, with a currency code. */
export function requiredMoney(v: Validator, field: string, m: Money | undefined, min = 1n): Validator {
  if (m === undefined) return v.fail(field, "required");
  return v.range(`${field}.amount_minor`, m.amountMinor, min, MAX_AMOUNT).currency(`${field}.currency`, m.currency);
}

/** `amount * bp / 10000`, rounded half up (amounts are never negative). */
export function percentOf(amount: bigint, bp: bigint): bigint {
  return (amount * bp + 5000n) / 10000n;
}

/**
 * The call's idempotency key. The framework already refuses a keyed method
 * without one; handlers store it with the row they write so a retry after a
 * restart finds that row.
 */
export function keyOf(ctx: HandlerContext): string {
  const key = idempotencyKeyOf(ctx);
  if (key === undefined) throw new ConnectError("idempotency-key header required", Code.InvalidArgument);
  return key;
}

/** The same key arriving with another request: the request conflicts with what the key already did. */
export function keyConflict(): ConnectError {
  return new ConnectError("idempotency key was used with a different request", Code.FailedPrecondition);
}

/**
 * A row id derived from the tenant and the request's idempotency key
 * (`<prefix>-<uuid shape>`): a retry after a crash between the processor call
 * and the database write computes the same id, so the processor (keyed by it)
 * answers with its first result instead of charging again.
 */
export function keyedId(prefix: string, tenantId: string, method: string, key: string): string {
  const h = createHash("sha256").update(`${tenantId}\0${method}\0${key}`).digest("hex");
  return `${prefix}-${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * Durable answers of keyed calls that change an existing row (no insert to
 * hang the key on): the first answer is stored with a hash of its request, a
 * retry with the key gets that answer back, after a restart too; the key with
 * a different request is refused.
 */
export function keyedAnswers<I extends DescMessage, O extends DescMessage>(deps: PaymentDeps, method: string, input: I, output: O) {
  const hash = (req: MessageShape<I>) => createHash("sha256").update(toBinary(input, req)).digest("base64");
  return {
    find(tenantId: string, key: string, req: MessageShape<I>): MessageShape<O> | undefined {
      const found = deps.store.keyedAnswer(tenantId, method, key);
      if (!found) return undefined;
      if (found.requestHash !== hash(req)) throw keyConflict();
      return fromBinary(output, found.response);
    },
    save(tenantId: string, key: string, req: MessageShape<I>, res: MessageShape<O>): MessageShape<O> {
      deps.store.saveKeyedAnswer(tenantId, method, key, hash(req), toBinary(output, res), deps.now().toISOString());
      return res;
    },
  };
}
