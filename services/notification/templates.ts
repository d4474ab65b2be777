/**
 * The transactional templates notification-service knows, with the values each
 * needs. Rendering substitutes `{{name}}`; a template asked for without one of
 * its values is an INVALID_ARGUMENT, never a half-filled message.
 */
export interface Template {
  readonly subject: string;
  readonly body: string;
  readonly requires: readonly string[];
}

export const TEMPLATES: Readonly<Record<string, Template>> = {
  "payment-confirmation": {
    subject: "Your order {{orderId}} is confirmed",
    body: "Thank you! We received your payment of {{amount}} for order {{orderId}}.",
    requires: ["orderId", "amount"],
  },
  "refund-confirmation": {
    subject: "Your refund for order {{orderId}}",
    body: "We refunded {{amount}} for order {{orderId}}.",
    requires: ["orderId", "amount"],
  },
  "nft-minted": {
    subject: "Your ticket {{ticketId}} is now an NFT",
    body: "Ticket {{ticketId}} was minted to your wallet.",
    requires: ["ticketId"],
  },
  "password-reset": {
    subject: "Reset your password",
    body: "Use this link to reset your password: {{resetLink}}",
    requires: ["resetLink"],
  },
  "ticket-transfer": {
    subject: "{{fromName}} sent you a ticket",
    body: "{{fromName}} transferred ticket {{ticketId}} to you.",
    requires: ["ticketId", "fromName"],
  },
  "event-reminder": {
    subject: "{{eventName}} starts soon",
    body: "Reminder: {{eventName}} starts at {{startsAt}}.",
    requires: ["eventName", "startsAt"],
  },
};

export function render(text: string, data: Readonly<Record<string, string>>): string {
  return text.replace(/\{\{([A-Za-z0-9_]+)\}\}/g, (_, name: string) => data[name] ?? "");
}
