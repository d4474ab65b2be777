/**
 * The payment processor (Stripe) as an adapter: what payment-service asks of
 * it, and a local fake that is the default. The fake records every request as
 * a row in the service's own database (`processor_requests`, readable back)
 * and answers deterministically: ids derive from the object they are for
 * (payment `pay-<uuid>` -> intent `pi_<uuid>`), and a repeated request key
 * returns the first answer, as Stripe's idempotency keys do, so a retry after
 * a crash never charges, refunds or pays out twice.
 *
 * Failure is chosen by the request, never by a switch: the payment method
 * `pm_card_declined` is declined; every other method (default `pm_card_visa`)
 * succeeds.
 */
import { createHash } from "node:crypto";
import type { Database } from "../shared/database.ts";

export interface Card {
  readonly brand: string;
  readonly last4: string;
}

export interface IntentResult {
  readonly intentId: string;
  readonly clientSecret: string;
  readonly outcome: "succeeded" | "declined";
  readonly declineReason: string;
  readonly card: Card;
}

export interface ProcessorObject {
  readonly id: string;
}

export interface AccountResult {
  readonly accountId: string;
  readonly onboardingUrl: string;
}

/** Every call carries a request key: the same key answers like the first call. */
export interface PaymentProcessor {
  /** Creates and confirms a payment intent (authorized, to capture later) with a payment method. */
  createIntent(req: { tenantId: string; key: string; paymentId: string; amountMinor: bigint; currency: string; paymentMethod: string }): Promise<IntentResult>;
  capture(req: { tenantId: string; key: string; intentId: string; amountMinor: bigint; currency: string }): Promise<ProcessorObject>;
  cancel(req: { tenantId: string; key: string; intentId: string }): Promise<ProcessorObject>;
  refund(req: { tenantId: string; key: string; intentId: string; refundId: string; amountMinor: bigint; currency: string }): Promise<ProcessorObject>;
  createAccount(req: { tenantId: string; key: string; venueId: string; country: string; businessType: string }): Promise<AccountResult>;
  /** Moves funds to a connected account (venue payout) or to a marketplace seller. */
  transfer(req: { tenantId: string; key: string; destination: string; amountMinor: bigint; currency: string; objectId: string }): Promise<ProcessorObject>;
}

export const DECLINED_METHOD = "pm_card_declined";
export const DEFAULT_METHOD = "pm_card_visa";

/** Test cards of the fake, as Stripe names them. */
const CARDS: Record<string, Card> = {
  pm_card_visa: { brand: "visa", last4: "4242" },
  pm_card_mastercard: { brand: "mastercard", last4: "4444" },
  pm_card_amex: { brand: "amex", last4: "8431" },
  [DECLINED_METHOD]: { brand: "visa", last4: "0002" },
};

interface RequestRow {
  outcome: "succeeded" | "declined";
  result_id: string;
  detail: string;
}

/** `pay-<uuid>` -> `<prefix>_<uuid>`; any other id gets a stable hash. */
function derivedId(prefix: string, objectId: string): string {
  const m = /^[a-z]+-([0-9a-f-]{36})$/.exec(objectId);
  const tail = m ? m[1]!.replaceAll("-", "") : createHash("sha256").update(objectId).digest("hex").slice(0, 32);
  return `${prefix}_${tail}`;
}

export function createFakeProcessor(db: Database, now: () => Date): PaymentProcessor {
  const find = db.prepare("SELECT outcome, result_id, detail FROM processor_requests WHERE tenant_id = ? AND request_key = ?");
  const insert = db.prepare(`INSERT INTO processor_requests (tenant_id, request_key, kind, object_id, amount_minor, currency, detail, outcome, result_id, created_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);

  /** Records the request once; a repeated key returns what was recorded first. */
  function record(tenantId: string, key: string, kind: string, objectId: string, amount: bigint, currency: string, detail: string, outcome: RequestRow["outcome"], resultId: string): RequestRow {
    const seen = find.get(tenantId, key) as RequestRow | undefined;
    if (seen) return seen;
    insert.run(tenantId, key, kind, objectId, amount, currency, detail, outcome, resultId, now().toISOString());
    return { outcome, result_id: resultId, detail };
  }

  return {
    async createIntent(r) {
      const declined = r.paymentMethod === DECLINED_METHOD;
      const row = record(r.tenantId, r.key, "payment_intent", r.paymentId, r.amountMinor, r.currency, r.paymentMethod,
        declined ? "declined" : "succeeded", derivedId("pi", r.paymentId));
      const card = CARDS[row.detail] ?? { brand: "", last4: "" };
      return {
        intentId: row.result_id,
        clientSecret: `${row.result_id}_secret_${createHash("sha256").update(`${r.tenantId}|${row.result_id}`).digest("hex").slice(0, 24)}`,
        outcome: row.outcome,
        declineReason: row.outcome === "declined" ? "card_declined" : "",
        card,
      };
    },
    async capture(r) {
      return { id: record(r.tenantId, r.key, "capture", r.intentId, r.amountMinor, r.currency, "", "succeeded", r.intentId).result_id };
    },
    async cancel(r) {
      return { id: record(r.tenantId, r.key, "cancel", r.intentId, 0n, "", "", "succeeded", r.intentId).result_id };
    },
    async refund(r) {
      return { id: record(r.tenantId, r.key, "refund", r.intentId, r.amountMinor, r.currency, r.refundId, "succeeded", derivedId("re", r.refundId)).result_id };
    },
    async createAccount(r) {
      const id = record(r.tenantId, r.key, "account", r.venueId, 0n, "", `${r.country}/${r.businessType}`, "succeeded",
        derivedId("acct", `${r.tenantId}|${r.venueId}`)).result_id;
      return { accountId: id, onboardingUrl: `https://connect.stripe.test/setup/${id}` };
    },
    async transfer(r) {
      return { id: record(r.tenantId, r.key, "transfer", r.objectId, r.amountMinor, r.currency, r.destination, "succeeded", derivedId("tr", r.objectId)).result_id };
    },
  };
}
