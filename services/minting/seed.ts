/** minting-service's part of the demo data set (services/shared/demo-data.ts): ticket t-1 is already an NFT. */
import type { Database } from "../shared/database.ts";
import { DEMO } from "../shared/demo-data.ts";
import { createSqliteMintStore } from "./store.ts";

export function seedMints(db: Database, now: Date): void {
  const store = createSqliteMintStore(db);
  const at = now.toISOString();
  for (const m of DEMO.mints) {
    const ticket = DEMO.tickets.find((t) => t.id === m.ticketId && t.tenantId === m.tenantId)!;
    store.insertConfirmed({
      tenantId: m.tenantId, ticketId: m.ticketId, kind: "nft", userId: ticket.userId, eventId: ticket.eventId, ticketTypeId: ticket.ticketTypeId,
      recipientWallet: "", merkleTree: "", ticketUpdate: "done", idempotencyKey: undefined, createdAt: at,
      address: m.mintAddress, signature: m.signature, metadataUri: "",
    });
  }
}
