/** payment-service's internal RPC surface: every method of its contract, from the handler groups. */
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { PaymentServiceContract } from "@tickettoken/contracts/tickettoken/payment/v1/payment_service_rpc";
import type { PaymentDeps } from "./common.ts";
import { escrowHandlers } from "./escrow.ts";
import { paymentHandlers } from "./payments.ts";
import { refundFlow } from "./refunds.ts";
import { taxHandlers } from "./tax.ts";
import { venueHandlers } from "./venues.ts";

export function paymentService(deps: PaymentDeps): ServiceRegistration {
  const payments = paymentHandlers(deps);
  const refunds = refundFlow(deps);
  const escrow = escrowHandlers(deps, refunds);
  const venues = venueHandlers(deps);
  return implement(PaymentServiceContract, {
    createPaymentIntent: payments.createPaymentIntent,
    completePayment: payments.completePayment,
    capturePayment: payments.capturePayment,
    cancelPayment: payments.cancelPayment,
    getPayment: payments.getPayment,
    getPaymentStatus: payments.getPaymentStatus,
    listOrderPayments: payments.listOrderPayments,
    getPaymentDetails: payments.getPaymentDetails,
    createRefund: refunds.createRefund,
    getRefundDetails: refunds.getRefundDetails,
    holdEscrow: escrow.holdEscrow,
    releaseEscrow: escrow.releaseEscrow,
    refundEscrow: escrow.refundEscrow,
    createConnectedAccount: venues.createConnectedAccount,
    createVenueTransfer: venues.createVenueTransfer,
    getVenueEarnings: venues.getVenueEarnings,
    calculateTax: taxHandlers(deps).calculateTax,
  });
}
