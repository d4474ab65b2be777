/**
 * minting-service's internal RPC surface: mint a ticket as an NFT (alone or
 * in a batch) or as a compressed NFT into its event's merkle tree, and report
 * a ticket's mint status.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { callContext } from "@tickettoken/rpc";
import { MintingServiceContract } from "@tickettoken/contracts/tickettoken/minting/v1/minting_service_rpc";
import { MintResultSchema, MintStatus, type MintResult, type TicketMint } from "@tickettoken/contracts/tickettoken/minting/v1/minting_service_pb";
import type { EventServiceClient } from "@tickettoken/contracts/tickettoken/event/v1/event_service_rpc";
import type { Logger } from "@tickettoken/rpc";
import { idempotencyKeyOf, tenantOf } from "../shared/context.ts";
import { notFound } from "../shared/errors.ts";
import { validate, type Validator } from "../shared/validate.ts";
import { isTransient, ticketMetadata, type Minter } from "./minter.ts";
import type { SolanaAdapter } from "./solana.ts";
import type { MintRow, MintState, MintStore } from "./store.ts";

const MAX_BATCH = 100;
const WALLET = /^[1-9A-HJ-NP-Za-km-z]{32,44}$/;
const EVENTS_READ = "events:read";

const STATUS: Record<MintState, MintStatus> = {
  pending: MintStatus.PENDING,
  confirmed: MintStatus.CONFIRMED,
  failed: MintStatus.FAILED,
};

export interface MintingServiceDeps {
  readonly store: MintStore;
  readonly minter: Minter;
  readonly solana: SolanaAdapter;
  readonly events: EventServiceClient;
  readonly logger: Logger;
}

function toResult(r: MintRow): MintResult {
  return create(MintResultSchema, {
    ticketId: r.ticketId,
    status: STATUS[r.status],
    mintAddress: r.address,
    transactionSignature: r.signature,
    error: r.error,
  });
}

function validateTicket(v: Validator, path: string, t: TicketMint | undefined): void {
  if (!t) {
    v.fail(path, "required");
    return;
  }
  v.id(`${path}.ticket_id`, t.ticketId).id(`${path}.user_id`, t.userId).id(`${path}.event_id`, t.eventId).optionalId(`${path}.ticket_type_id`, t.ticketTypeId);
  if (t.metadata) v.optionalText(`${path}.metadata.event_name`, t.metadata.eventName, 200).optionalText(`${path}.metadata.seat_info`, t.metadata.seatInfo, 200);
}

function nftAsk(tenantId: string, t: TicketMint, idempotencyKey: string | undefined) {
  return {
    tenantId, ticketId: t.ticketId, kind: "nft" as const, userId: t.userId, eventId: t.eventId, ticketTypeId: t.ticketTypeId,
    recipientWallet: "", merkleTree: "", idempotencyKey, metadata: ticketMetadata(t.metadata),
  };
}

export function mintingService(deps: MintingServiceDeps): ServiceRegistration {
  const { store, minter, solana, events, logger } = deps;

  /**
   * The merkle tree of the event's compressed NFTs: from event-service's
   * blockchain config when this call may read events, else (or when the event
   * names none) the adapter's tree for the event. A missing event is NOT_FOUND.
   */
  async function merkleTreeFor(ctx: HandlerContext, tenantId: string, eventId: string): Promise<string> {
    if (!callContext(ctx).scopes.includes(EVENTS_READ)) {
      logger.info({ eventId }, "context may not read events: using the event's default merkle tree");
      return solana.defaultMerkleTree(tenantId, eventId);
    }
    try {
      const res = await events.getEventPda({ tenantId, eventId });
      return res.blockchain?.merkleTreeAddress || solana.defaultMerkleTree(tenantId, eventId);
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) throw notFound("event");
      throw err;
    }
  }

  return implement(MintingServiceContract, {
    async mintTicket(req, ctx) {
      const v = validate();
      validateTicket(v, "ticket", req.ticket);
      v.done();
      const row = await minter.mint(nftAsk(tenantOf(ctx), req.ticket!, idempotencyKeyOf(ctx)));
      // A retry of MintTicket re-sends an update that failed before. If ticket-service is unreachable just now,
      // the mint still happened: answer it (the caller, ticket-service itself, records the address from this
      // answer) and keep the update pending for the next MintTicket or GetMintStatus reader.
      await minter.updateTicket(row).catch((err: unknown) => {
        if (!isTransient(err)) throw err;
      });
      return { result: toResult(row), estimatedConfirmationSeconds: row.status === "pending" ? 30 : 0 };
    },

    getMintStatus(req, ctx) {
      validate().id("ticket_id", req.ticketId).done();
      const row = store.getMint(tenantOf(ctx), req.ticketId);
      if (!row) throw notFound("mint");
      return {
        ticketId: row.ticketId,
        status: STATUS[row.status],
        mintAddress: row.address,
        transactionSignature: row.signature,
        error: row.error,
        ...(row.confirmedAt ? { confirmedAt: timestampFromDate(new Date(row.confirmedAt)) } : {}),
        ticketUpdatePending: row.ticketUpdate === "pending",
      };
    },

    async batchMintTickets(req, ctx) {
      const v = validate().check(req.tickets.length >= 1 && req.tickets.length <= MAX_BATCH, "tickets", `between 1 and ${MAX_BATCH} tickets`);
      const seen = new Set<string>();
      req.tickets.forEach((t, i) => {
        validateTicket(v, `tickets[${i}]`, t);
        v.check(!seen.has(t.ticketId), `tickets[${i}].ticket_id`, "each ticket once");
        seen.add(t.ticketId);
      });
      v.done();
      const tenantId = tenantOf(ctx);
      // Each ticket mints once by its id, so the batch's retry is naturally idempotent: rows carry no batch key.
      const rows: MintRow[] = [];
      const results: MintResult[] = [];
      for (const t of req.tickets) {
        try {
          const row = await minter.mint(nftAsk(tenantId, t, undefined));
          rows.push(row);
          results.push(toResult(row));
        } catch (err) {
          const e = ConnectError.from(err);
          // A ticket this batch cannot mint (already a compressed NFT) fails alone; anything else fails the call.
          if (e.code !== Code.FailedPrecondition) throw err;
          results.push(create(MintResultSchema, { ticketId: t.ticketId, status: MintStatus.FAILED, error: e.rawMessage }));
        }
      }
      // Try every ticket's update, then fail the call if one failed: its retry re-sends only the pending ones.
      let failure: unknown;
      for (const row of rows) {
        try {
          await minter.updateTicket(row);
        } catch (err) {
          failure ??= err;
        }
      }
      if (failure !== undefined) throw failure;
      return { results };
    },

    async mintCompressed(req, ctx) {
      const v = validate().id("ticket_id", req.ticketId).id("event_id", req.eventId).id("user_id", req.userId).optionalId("seat_id", req.seatId);
      v.check(WALLET.test(req.recipientWallet), "recipient_wallet", "must be a base58 Solana address");
      if (!req.metadata) v.fail("metadata", "required");
      else v.text("metadata.name", req.metadata.name, 32).optionalText("metadata.symbol", req.metadata.symbol, 10).optionalText("metadata.uri", req.metadata.uri, 200);
      v.done();
      const tenantId = tenantOf(ctx);
      const key = idempotencyKeyOf(ctx);
      // A ticket minted before answers from its row; only a new mint needs the event's tree.
      const known = store.getMint(tenantId, req.ticketId);
      const merkleTree = known ? known.merkleTree : await merkleTreeFor(ctx, tenantId, req.eventId);
      const row = await minter.mint({
        tenantId, ticketId: req.ticketId, kind: "compressed", userId: req.userId, eventId: req.eventId, ticketTypeId: "",
        recipientWallet: req.recipientWallet, merkleTree, idempotencyKey: key,
        metadata: { name: req.metadata!.name, symbol: req.metadata!.symbol, uri: req.metadata!.uri, seat_id: req.seatId },
      });
      return {
        ticketId: row.ticketId,
        status: STATUS[row.status],
        assetId: row.address,
        transactionSignature: row.signature,
        merkleTreeAddress: row.merkleTree,
      };
    },
  });
}
