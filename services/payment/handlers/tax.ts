/**
 * Tax from the deterministic rates table: every rate whose jurisdiction
 * covers the customer's address (country-wide, region, city), each line
 * rounded half up to the minor unit. An address with no rates is untaxed.
 */
import type { HandlerContext } from "@connectrpc/connect";
import type { CalculateTaxRequest } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_pb";
import { tenantOf } from "../../shared/context.ts";
import { validate } from "../../shared/validate.ts";
import { money, percentOf, requiredMoney, type PaymentDeps } from "./common.ts";

const COUNTRY = /^[A-Z]{2}$/;

export function taxHandlers(deps: PaymentDeps) {
  return {
    calculateTax(req: CalculateTaxRequest, ctx: HandlerContext) {
      const a = req.customerAddress;
      const v = validate().id("venue_id", req.venueId);
      if (a === undefined) v.fail("customer_address", "required");
      else {
        v.check(COUNTRY.test(a.country), "customer_address.country", "must be an ISO 3166-1 alpha-2 code, e.g. US")
          .optionalText("customer_address.region", a.region, 10)
          .optionalText("customer_address.city", a.city, 100);
      }
      requiredMoney(v, "subtotal", req.subtotal, 0n).done();
      const subtotal = req.subtotal!;
      const rates = deps.store.taxRates(tenantOf(ctx), a!.country, a!.region.toUpperCase(), a!.city);
      const lines = rates.map((r) => ({
        jurisdiction: r.jurisdiction,
        ratePercent: r.rateBp / 100,
        amount: money(percentOf(subtotal.amountMinor, BigInt(r.rateBp)), subtotal.currency),
      }));
      const tax = lines.reduce((sum, l) => sum + l.amount.amountMinor, 0n);
      return { tax: money(tax, subtotal.currency), total: money(subtotal.amountMinor + tax, subtotal.currency), lines };
    },
  };
}
