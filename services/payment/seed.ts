/**
 * payment-service's part of the demo data set (services/shared/demo-data.ts):
 * the completed payments of the demo orders, a connected account for each
 * active venue, and a small tax-rate table per tenant.
 */
import type { Database } from "../shared/database.ts";
import { DEMO } from "../shared/demo-data.ts";
import { createSqlitePaymentStore, type PaymentState } from "./store.ts";

/** Deterministic rates (hundredths of a percent): region '' = whole country, city '' = whole region. */
export const TAX_RATES = [
  { country: "US", region: "CA", city: "", jurisdiction: "CA state", rateBp: 725 },
  { country: "US", region: "CA", city: "San Francisco", jurisdiction: "San Francisco county", rateBp: 138 },
  { country: "US", region: "NY", city: "", jurisdiction: "NY state", rateBp: 400 },
  { country: "US", region: "NY", city: "New York", jurisdiction: "New York City", rateBp: 450 },
  { country: "US", region: "IL", city: "", jurisdiction: "IL state", rateBp: 625 },
  { country: "US", region: "IL", city: "Chicago", jurisdiction: "Chicago city", rateBp: 400 },
  { country: "GB", region: "", city: "", jurisdiction: "UK VAT", rateBp: 2000 },
] as const;

const DEMO_STATUS: Record<string, PaymentState> = { succeeded: "completed" };

export function seedPayments(db: Database, now: Date): void {
  const store = createSqlitePaymentStore(db);
  const at = now.toISOString();
  for (const p of DEMO.payments) {
    const order = DEMO.orders.find((o) => o.id === p.orderId)!;
    const event = DEMO.events.find((e) => e.id === order.eventId)!;
    store.insertPayment({
      tenantId: p.tenantId, id: p.id, orderId: p.orderId, listingId: "", userId: p.userId, venueId: event.venueId, eventId: event.id,
      amountMinor: BigInt(p.amountMinor), currency: p.currency, status: DEMO_STATUS[p.status] ?? "completed", capturedMinor: BigInt(p.amountMinor),
      refundedMinor: 0n, intentId: p.providerIntentId, clientSecret: "", paymentMethod: "pm_card_visa", cardBrand: "visa", cardLast4: "4242",
      failureReason: "", ticketQuantity: order.quantity, ticketNotice: "sent", createKey: null, captureKey: null, createdAt: at, updatedAt: at,
    });
  }
  for (const v of DEMO.venues.filter((x) => x.isActive)) {
    store.insertAccount({
      tenantId: v.tenantId, id: `acct_demo_${v.id.replaceAll("-", "")}`, venueId: v.id, email: `payouts+${v.slug}@demo.test`, country: v.country,
      businessType: "company", chargesEnabled: true, payoutsEnabled: true, detailsSubmitted: true,
      onboardingUrl: "", createKey: null, createdAt: at,
    });
  }
  for (const t of DEMO.tenants) {
    for (const r of TAX_RATES) store.insertTaxRate({ tenantId: t.id, ...r });
  }
}
