/**
 * A ticket's QR credential: a random per-ticket secret (handed to
 * scanning-service for rotating codes, never logged) and a static payload
 * that names the ticket and carries a MAC under that secret, so a payload
 * cannot be forged from a ticket id alone.
 */
import { createHmac, randomBytes } from "node:crypto";

export interface QrCredential {
  readonly qrCode: string;
  readonly qrHmacSecret: string;
}

export function newQrCredential(ticketId: string): QrCredential {
  const qrHmacSecret = randomBytes(32).toString("base64url");
  const mac = createHmac("sha256", qrHmacSecret).update(ticketId).digest("base64url").slice(0, 22);
  return { qrCode: `TT1:${ticketId}:${mac}`, qrHmacSecret };
}

/** Human-readable ticket number; unique per tenant (the table refuses a clash). */
export function newTicketNumber(): string {
  return `TKT-${randomBytes(5).toString("hex").toUpperCase()}`;
}
