/**
 * Solana, as minting-service sees it: an adapter with one method per kind of
 * mint. The default is a local fake that records every request as a row of
 * the service's own database and answers deterministically: the same ticket
 * always gets the same mint address and signature, so a repeated submission
 * (a retry after a crash) names the same on-chain asset, as a real mint whose
 * address derives from the ticket would.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { createHash, randomUUID } from "node:crypto";
import type { Database } from "../shared/database.ts";

export interface NftMintRequest {
  readonly tenantId: string;
  readonly ticketId: string;
  readonly owner: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface CompressedMintRequest extends NftMintRequest {
  readonly merkleTree: string;
}

export interface MintReceipt {
  /** Mint address (NFT) or asset id (compressed NFT), base58. */
  readonly address: string;
  readonly signature: string;
  readonly metadataUri: string;
}

export interface SolanaAdapter {
  mintNft(req: NftMintRequest): Promise<MintReceipt>;
  mintCompressed(req: CompressedMintRequest): Promise<MintReceipt>;
  /** The merkle tree used for an event whose blockchain config names none. */
  defaultMerkleTree(tenantId: string, eventId: string): string;
}

/** MINTING_FAKE_CONFIRMATION_MS: the fake chain's confirmation time (0..60000 ms). */
export function fakeConfirmationMs(env: NodeJS.ProcessEnv): number {
  const raw = env.MINTING_FAKE_CONFIRMATION_MS;
  if (raw === undefined || raw === "") return 0;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 0 || ms > 60_000) throw new Error(`MINTING_FAKE_CONFIRMATION_MS must be an integer from 0 to 60000 (ms), got ${JSON.stringify(raw)}`);
  return ms;
}

const BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/** Bitcoin/Solana base58 of a byte string. */
export function base58(bytes: Uint8Array): string {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  let out = "";
  while (n > 0n) {
    out = BASE58[Number(n % 58n)]! + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = "1" + out;
  }
  return out;
}

function derive(algorithm: "sha256" | "sha512", ...parts: string[]): string {
  return base58(createHash(algorithm).update(parts.join("\u0000")).digest());
}

/**
 * `confirmationMs`: how long the fake chain takes to confirm a mint (the
 * request is recorded first, as a submitted transaction would be): 0 by
 * default; the demo and the kill-and-restart test use it to have a purchase
 * in flight long enough to interrupt.
 */
export function createFakeSolana(db: Database, now: () => Date, confirmationMs = 0): SolanaAdapter {
  const record = db.prepare(`INSERT INTO fake_solana_requests (tenant_id, request_id, kind, ticket_id, owner, merkle_tree, address, signature,
    metadata_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);

  function mint(kind: "nft" | "compressed", req: NftMintRequest, merkleTree: string): MintReceipt {
    // 32-byte addresses and 64-byte signatures, like Solana's.
    const address = derive("sha256", "fake-solana", kind, req.tenantId, req.ticketId);
    const signature = derive("sha512", "fake-solana-signature", kind, req.tenantId, req.ticketId);
    const metadataUri = `https://metadata.tickettoken.test/${encodeURIComponent(req.tenantId)}/${encodeURIComponent(req.ticketId)}.json`;
    record.run(req.tenantId, randomUUID(), kind, req.ticketId, req.owner, merkleTree, address, signature, JSON.stringify(req.metadata), now().toISOString());
    return { address, signature, metadataUri };
  }

  return {
    async mintNft(req) {
      const receipt = mint("nft", req, "");
      if (confirmationMs > 0) await sleep(confirmationMs);
      return receipt;
    },
    async mintCompressed(req) {
      const receipt = mint("compressed", req, req.merkleTree);
      if (confirmationMs > 0) await sleep(confirmationMs);
      return receipt;
    },
    defaultMerkleTree(tenantId, eventId) {
      return derive("sha256", "fake-solana-tree", tenantId, eventId);
    },
  };
}
