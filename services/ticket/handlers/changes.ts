/**
 * ticket-service's state changes driven by other services: transfers
 * (transfer-service), gate scans (scanning-service), NFT fields (minting),
 * cancellations for refunds (payment-service). Each refuses a ticket in the
 * wrong state with FAILED_PRECONDITION, and each is safe to retry: keyed
 * methods store the caller's idempotency key with the row they write
 * (UNIQUE per tenant), IDEMPOTENT ones leave a repeated request's state as is.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { CancelTicketOutcome, TransferStatus, type UpdateNftRequest } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";
import { idempotencyKeyOf, tenantOf, userOf } from "../../shared/context.ts";
import { transaction } from "../../shared/database.ts";
import { failedPrecondition, notFound } from "../../shared/errors.ts";
import { newId } from "../../shared/ids.ts";
import { validate } from "../../shared/validate.ts";
import type { NftUpdate, ScanRow, ScanType, TicketRow, TransferRow } from "../store.ts";
import type { TicketDeps, TicketHandlers } from "./deps.ts";
import { stateRefusal, toStatus, ts } from "./mapping.ts";
import { MAX_BATCH } from "./reads.ts";

const SCAN_TYPES = new Set<string>(["entry", "exit", "reentry"]);

/** The call's idempotency key (keyed methods store it with the row they write). */
export function requireKey(ctx: HandlerContext): string {
  // The framework's dedupe step already refuses keyed calls without one; this keeps the handler honest on its own.
  const key = idempotencyKeyOf(ctx);
  if (key === undefined) throw new ConnectError("idempotency-key header required", Code.InvalidArgument);
  return key;
}

function transferResponse(t: TransferRow) {
  return {
    ticket: { id: t.ticketId, userId: t.toUserId, status: toStatus("transferred"), transferCount: t.transferCountAfter },
    transfer: {
      id: t.id,
      ticketId: t.ticketId,
      fromUserId: t.fromUserId,
      toUserId: t.toUserId,
      status: TransferStatus.COMPLETED,
      transferredAt: ts(t.transferredAt),
      reason: t.reason,
    },
  };
}

function scanResponse(s: ScanRow) {
  return { ticketId: s.ticketId, scanCount: s.scanCountAfter, lastScannedAt: ts(s.scannedAt), status: toStatus(s.statusAfter) };
}

/** The NFT fields a request sets, resolved against the ticket (undefined: unchanged). */
function nftChanges(t: TicketRow, req: Pick<UpdateNftRequest, "nftMintAddress" | "nftTransferSignature" | "walletAddress" | "metadataUri" | "isMinted" | "mintedAt">, now: Date): NftUpdate {
  // A mint address is proof of a mint: it marks the ticket minted unless the request says otherwise.
  const isMinted = req.isMinted ?? (req.nftMintAddress !== undefined ? true : undefined);
  const mintedAt = isMinted === undefined ? undefined
    : !isMinted ? null
    : req.mintedAt ? timestampDate(req.mintedAt).toISOString() : (t.mintedAt ?? now.toISOString());
  const changes: Record<string, unknown> = {};
  const put = (key: keyof NftUpdate, value: unknown, current: unknown) => {
    if (value !== undefined && value !== current) changes[key] = value;
  };
  put("tokenId", req.nftMintAddress, t.tokenId);
  put("isMinted", isMinted, t.isMinted);
  put("mintedAt", mintedAt, t.mintedAt);
  put("walletAddress", req.walletAddress, t.walletAddress);
  put("metadataUri", req.metadataUri, t.metadataUri);
  put("lastTransferSignature", req.nftTransferSignature, t.lastTransferSignature);
  return changes as NftUpdate;
}

/**
 * Sets a ticket's NFT fields. Idempotent: the same mint again changes
 * nothing; a different mint for a minted ticket, or a mint address another
 * ticket holds, is FAILED_PRECONDITION. Returns the ticket after the update.
 */
export function applyNftUpdate(
  { db, store, now }: Pick<TicketDeps, "db" | "store" | "now">,
  tenantId: string,
  ticketId: string,
  req: Parameters<typeof nftChanges>[1] & { mintTransactionId?: string },
): TicketRow {
  return transaction(db, () => {
    const t = store.getTicket(tenantId, ticketId);
    if (!t) throw notFound("ticket");
    const mint = req.nftMintAddress;
    if (mint !== undefined && t.tokenId !== null && t.tokenId !== mint) throw failedPrecondition("ticket already minted with another mint address");
    if (mint !== undefined && t.tokenId === null && store.getTicketByToken(tenantId, mint)) throw failedPrecondition("mint address belongs to another ticket");
    const changes: NftUpdate = {
      ...nftChanges(t, req, now()),
      ...(req.mintTransactionId && req.mintTransactionId !== t.mintTransactionId ? { mintTransactionId: req.mintTransactionId } : {}),
    };
    if (Object.keys(changes).length === 0) return t;
    store.updateNft(tenantId, ticketId, changes, now().toISOString());
    return store.getTicket(tenantId, ticketId)!;
  });
}

export function changeHandlers(deps: TicketDeps): TicketHandlers {
  const { db, store, now, logger } = deps;
  return {
    transferTicket(req, ctx) {
      validate().id("ticket_id", req.ticketId).id("to_user_id", req.toUserId).optionalText("reason", req.reason, 500).done();
      const tenantId = tenantOf(ctx);
      const key = requireKey(ctx);
      return transaction(db, () => {
        const prior = store.findTransferByKey(tenantId, key);
        if (prior) {
          if (prior.ticketId !== req.ticketId || prior.toUserId !== req.toUserId) throw failedPrecondition("idempotency key was used for a different transfer");
          return transferResponse(prior);
        }
        const t = store.getTicket(tenantId, req.ticketId);
        if (!t) throw notFound("ticket");
        // transfer-service acts for the ticket's owner: nobody else gives a ticket away.
        if (userOf(ctx) !== t.userId) throw new ConnectError("only the ticket's owner may transfer it", Code.PermissionDenied);
        const refusal = stateRefusal(t);
        if (refusal) throw failedPrecondition(refusal);
        if (!t.isTransferable) throw failedPrecondition("ticket is not transferable");
        if (req.toUserId === t.userId) throw failedPrecondition("ticket already belongs to this user");
        const event = store.getEvent(tenantId, t.eventId);
        if (event && now().getTime() > Date.parse(event.endsAt)) throw failedPrecondition("event has ended");
        const at = now().toISOString();
        const transfer: TransferRow = {
          tenantId, id: newId("tr"), ticketId: t.id, fromUserId: t.userId, toUserId: req.toUserId, reason: req.reason,
          transferCountAfter: t.transferCount + 1, idempotencyKey: key, transferredAt: at,
        };
        store.transferOwnership(tenantId, t.id, req.toUserId, at);
        store.insertTransfer(transfer);
        logger.info({ ticketId: t.id, transferId: transfer.id }, "ticket transferred");
        return transferResponse(transfer);
      });
    },

    recordScan(req, ctx) {
      const scanType = req.scanType === "" ? "entry" : req.scanType;
      validate()
        .id("ticket_id", req.ticketId)
        .id("device_id", req.deviceId)
        .id("venue_id", req.venueId)
        .check(SCAN_TYPES.has(scanType), "scan_type", "must be entry, exit or reentry")
        .done();
      const tenantId = tenantOf(ctx);
      const key = requireKey(ctx);
      return transaction(db, () => {
        const prior = store.findScanByKey(tenantId, key);
        if (prior) {
          if (prior.ticketId !== req.ticketId) throw failedPrecondition("idempotency key was used for a different scan");
          return scanResponse(prior);
        }
        const t = store.getTicket(tenantId, req.ticketId);
        if (!t) throw notFound("ticket");
        const event = store.getEvent(tenantId, t.eventId);
        if (event && event.venueId !== req.venueId) throw failedPrecondition("ticket is not valid at this venue");
        const entry = scanType === "entry";
        // A second entry on one ticket is the duplicate scan the gate must refuse; exits and re-entries follow an entry.
        if (t.status === "used" && entry) throw failedPrecondition("ticket already used");
        if (t.status !== "used") {
          const refusal = stateRefusal(t);
          if (refusal) throw failedPrecondition(refusal);
          if (!entry) throw failedPrecondition("ticket has not been scanned in");
        }
        const at = now().toISOString();
        const scan: ScanRow = {
          tenantId, id: newId("scan"), ticketId: t.id, deviceId: req.deviceId, venueId: req.venueId, scanType: scanType as ScanType,
          scanCountAfter: t.scanCount + 1, statusAfter: "used", idempotencyKey: key, scannedAt: at,
        };
        store.applyScan(tenantId, t.id, "used", entry, at);
        store.insertScan(scan);
        return scanResponse(scan);
      });
    },

    updateNft(req, ctx) {
      const fieldsSet = [req.nftMintAddress, req.nftTransferSignature, req.walletAddress, req.metadataUri, req.isMinted].some((f) => f !== undefined);
      const v = validate().id("ticket_id", req.ticketId).check(fieldsSet, "nft_mint_address", "at least one NFT field must be set");
      if (req.nftMintAddress !== undefined) v.id("nft_mint_address", req.nftMintAddress);
      if (req.nftTransferSignature !== undefined) v.id("nft_transfer_signature", req.nftTransferSignature);
      if (req.walletAddress !== undefined) v.id("wallet_address", req.walletAddress);
      if (req.metadataUri !== undefined) v.optionalText("metadata_uri", req.metadataUri, 512);
      v.check(!(req.mintedAt && req.isMinted === false), "minted_at", "only with is_minted true").done();
      const t = applyNftUpdate(deps, tenantOf(ctx), req.ticketId, req);
      return {
        ticketId: t.id,
        nftMintAddress: t.tokenId ?? "",
        ...(t.mintedAt ? { mintedAt: ts(t.mintedAt) } : {}),
        walletAddress: t.walletAddress,
        metadataUri: t.metadataUri,
        lastTransferSignature: t.lastTransferSignature,
      };
    },

    cancelTicketsBatch(req, ctx) {
      const v = validate().optionalText("reason", req.reason, 500).optionalId("refund_id", req.refundId);
      v.check(req.ticketIds.length > 0, "ticket_ids", "at least one").check(req.ticketIds.length <= MAX_BATCH, "ticket_ids", `at most ${MAX_BATCH}`);
      req.ticketIds.slice(0, MAX_BATCH).forEach((id, i) => v.id(`ticket_ids[${i}]`, id));
      v.done();
      const tenantId = tenantOf(ctx);
      const reason = req.reason !== "" ? req.reason : req.refundId !== "" ? "refund" : "cancelled";
      const results = transaction(db, () =>
        req.ticketIds.map((ticketId) => {
          const t = store.getTicket(tenantId, ticketId);
          if (!t) return { ticketId, outcome: CancelTicketOutcome.FAILED, error: "ticket not found" };
          if (t.status === "cancelled") {
            // Already cancelled by this refund (or without one): done. By another refund: never refund a ticket twice.
            if (t.refundId !== "" && req.refundId !== "" && t.refundId !== req.refundId) return { ticketId, outcome: CancelTicketOutcome.FAILED, error: "ticket already refunded" };
            return { ticketId, outcome: CancelTicketOutcome.CANCELLED, error: "" };
          }
          if (t.status === "transferred" || t.status === "used") return { ticketId, outcome: CancelTicketOutcome.SKIPPED, error: "" };
          store.cancel(tenantId, ticketId, reason, req.refundId, now().toISOString());
          return { ticketId, outcome: CancelTicketOutcome.CANCELLED, error: "" };
        }),
      );
      logger.info({ refundId: req.refundId || undefined, tickets: results.length }, "tickets cancelled");
      return { results };
    },
  };
}
