/** order-service's part of the demo data set (services/shared/demo-data.ts): one completed purchase per tenant. */
import type { Database } from "../shared/database.ts";
import { DEMO } from "../shared/demo-data.ts";
import { createSqliteOrderStore } from "./store.ts";

export function seedOrders(db: Database, now: Date): void {
  const store = createSqliteOrderStore(db);
  const at = now.toISOString();
  DEMO.orders.forEach((o, n) => {
    const payment = DEMO.payments.find((p) => p.orderId === o.id);
    const subtotal = BigInt(o.unitPriceMinor) * BigInt(o.quantity);
    store.insertOrder({
      tenantId: o.tenantId, id: o.id, orderNumber: `ORD-DEMO-${String(n + 1).padStart(4, "0")}`, userId: o.userId, eventId: o.eventId,
      status: o.status, currency: o.currency, subtotalMinor: subtotal, platformFeeMinor: 0n, processingFeeMinor: 0n, taxMinor: 0n,
      discountMinor: 0n, totalMinor: subtotal, paymentMethod: "pm_card_visa", paymentId: o.paymentId,
      paymentIntentId: payment?.providerIntentId ?? "", paymentStatus: "completed", cancelReason: "", metadata: {},
      idempotencyKey: undefined, requestHash: "", createdAt: at, updatedAt: at,
      items: [{ id: `${o.id}-item-1`, ticketTypeId: o.ticketTypeId, quantity: o.quantity, unitPriceMinor: BigInt(o.unitPriceMinor) }],
    });
  });
}
