/**
 * Minting one ticket, once: record the mint as pending, submit it to Solana,
 * confirm it, then hand the NFT fields to ticket-service (UpdateNft). Each
 * step is skipped when a previous attempt already did it, so a retry (or a
 * second request for the same ticket) completes what is missing and never
 * mints again.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { TicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import type { TicketMetadata } from "@tickettoken/contracts/tickettoken/minting/v1/minting_service_pb";
import type { Logger } from "@tickettoken/rpc";
import { failedPrecondition } from "../shared/errors.ts";
import type { SolanaAdapter } from "./solana.ts";
import type { MintRow, MintStore, NewMint } from "./store.ts";

export interface MinterDeps {
  readonly store: MintStore;
  readonly solana: SolanaAdapter;
  readonly tickets: TicketServiceClient;
  readonly logger: Logger;
  now(): Date;
}

/** What a request asks to mint, after validation. */
export type MintAsk = Omit<NewMint, "createdAt" | "ticketUpdate"> & { readonly metadata: Readonly<Record<string, string>> };

/** Codes after which the same UpdateNft may succeed later: the caller should retry. */
const TRANSIENT = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.ResourceExhausted, Code.Aborted, Code.Canceled]);

/** A failure that may pass on its own (the other side unreachable or busy), as opposed to a refusal. */
export function isTransient(err: unknown): boolean {
  return TRANSIENT.has(ConnectError.from(err).code);
}

export function keyReused(): ConnectError {
  // As the framework's dedupe step answers it while the first response is still in memory (src/runtime/server/dedupe.ts).
  return failedPrecondition("idempotency key was used with a different request");
}

export function ticketMetadata(m: TicketMetadata | undefined): Record<string, string> {
  if (!m) return {};
  const out: Record<string, string> = { event_name: m.eventName, venue: m.venue, seat_info: m.seatInfo, ticket_type: m.ticketType };
  if (m.price) out["price"] = `${m.price.amountMinor} ${m.price.currency}`;
  return out;
}

export function createMinter(deps: MinterDeps) {
  const { store, solana, tickets, logger } = deps;

  /**
   * The ticket's mint, minted now if it has none yet. A key that created
   * another ticket's mint is refused; a ticket minted as the other kind is
   * FAILED_PRECONDITION.
   */
  async function mint(ask: MintAsk): Promise<MintRow> {
    const { tenantId, ticketId } = ask;
    const byKey = ask.idempotencyKey === undefined ? undefined : store.findByIdempotencyKey(tenantId, ask.idempotencyKey);
    if (byKey && byKey.ticketId !== ticketId) throw keyReused();
    let row = byKey ?? store.getMint(tenantId, ticketId) ?? store.insertPending({
      ...ask,
      // Compressed mints are recorded on the ticket by their caller (queue-service's nft-mint job).
      ticketUpdate: ask.kind === "nft" ? "pending" : "not_requested",
      createdAt: deps.now().toISOString(),
    });
    if (row.kind !== ask.kind) throw failedPrecondition(row.kind === "nft" ? "ticket already minted as an NFT" : "ticket already minted as a compressed NFT");
    if (row.status === "pending") {
      const req = { tenantId, ticketId, owner: row.recipientWallet || row.userId, metadata: ask.metadata };
      const receipt = ask.kind === "nft" ? await solana.mintNft(req) : await solana.mintCompressed({ ...req, merkleTree: row.merkleTree });
      store.confirm(tenantId, ticketId, receipt.address, receipt.signature, receipt.metadataUri, deps.now().toISOString());
      row = store.getMint(tenantId, ticketId)!;
      logger.info({ ticketId, kind: row.kind, address: row.address }, "ticket minted");
    }
    return row;
  }

  /**
   * Sends a confirmed NFT mint's fields to ticket-service unless it already
   * has them. On failure the mint stays recorded with the update pending (GetMintStatus
   * shows it) and the error goes to the caller, whose retry sends the update again.
   */
  async function updateTicket(row: MintRow): Promise<void> {
    if (row.status !== "confirmed" || row.ticketUpdate !== "pending") return;
    try {
      await tickets.updateNft({
        tenantId: row.tenantId,
        ticketId: row.ticketId,
        nftMintAddress: row.address,
        metadataUri: row.metadataUri,
        isMinted: true,
        mintedAt: timestampFromDate(new Date(row.confirmedAt ?? row.updatedAt)),
      });
    } catch (err) {
      const code = ConnectError.from(err).code;
      logger.warn({ ticketId: row.ticketId, code: Code[code] }, "ticket NFT update failed; mint kept, update pending");
      if (TRANSIENT.has(code)) throw err;
      throw failedPrecondition("ticket-service did not accept the NFT update");
    }
    store.markTicketUpdated(row.tenantId, row.ticketId, deps.now().toISOString());
  }

  return { mint, updateTicket };
}

export type Minter = ReturnType<typeof createMinter>;
