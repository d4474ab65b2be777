/**
 * minting-service's storage port and its SQLite implementation: one mint row
 * per (tenant, ticket). A mint is recorded as pending before it is submitted
 * and confirmed after, so a crash in between leaves a row a retry completes.
 */
import type { Database } from "../shared/database.ts";

export type MintKind = "nft" | "compressed";
export type MintState = "pending" | "confirmed" | "failed";
export type TicketUpdate = "pending" | "done" | "not_requested";

export interface MintRow {
  readonly tenantId: string;
  readonly ticketId: string;
  readonly kind: MintKind;
  readonly status: MintState;
  readonly userId: string;
  readonly eventId: string;
  readonly ticketTypeId: string;
  readonly recipientWallet: string;
  readonly address: string;
  readonly merkleTree: string;
  readonly signature: string;
  readonly metadataUri: string;
  readonly error: string;
  readonly ticketUpdate: TicketUpdate;
  readonly idempotencyKey: string | undefined;
  readonly createdAt: string;
  readonly confirmedAt: string | undefined;
  readonly updatedAt: string;
}

export type NewMint = Pick<MintRow, "tenantId" | "ticketId" | "kind" | "userId" | "eventId" | "ticketTypeId" | "recipientWallet" | "merkleTree" | "ticketUpdate" | "idempotencyKey" | "createdAt">;

export interface MintStore {
  getMint(tenantId: string, ticketId: string): MintRow | undefined;
  findByIdempotencyKey(tenantId: string, key: string): MintRow | undefined;
  /** Records a pending mint unless the ticket already has one; returns the ticket's row either way. */
  insertPending(mint: NewMint): MintRow;
  confirm(tenantId: string, ticketId: string, address: string, signature: string, metadataUri: string, at: string): void;
  markTicketUpdated(tenantId: string, ticketId: string, at: string): void;
  /** Seeding only: a mint that is already complete. */
  insertConfirmed(mint: NewMint & Pick<MintRow, "address" | "signature" | "metadataUri">): void;
}

interface MintRecord {
  tenant_id: string;
  ticket_id: string;
  kind: MintKind;
  status: MintState;
  user_id: string;
  event_id: string;
  ticket_type_id: string;
  recipient_wallet: string;
  address: string;
  merkle_tree: string;
  signature: string;
  metadata_uri: string;
  error: string;
  ticket_update: TicketUpdate;
  idempotency_key: string | null;
  created_at: string;
  confirmed_at: string | null;
  updated_at: string;
}

function toRow(r: MintRecord): MintRow {
  return {
    tenantId: r.tenant_id,
    ticketId: r.ticket_id,
    kind: r.kind,
    status: r.status,
    userId: r.user_id,
    eventId: r.event_id,
    ticketTypeId: r.ticket_type_id,
    recipientWallet: r.recipient_wallet,
    address: r.address,
    merkleTree: r.merkle_tree,
    signature: r.signature,
    metadataUri: r.metadata_uri,
    error: r.error,
    ticketUpdate: r.ticket_update,
    idempotencyKey: r.idempotency_key ?? undefined,
    createdAt: r.created_at,
    confirmedAt: r.confirmed_at ?? undefined,
    updatedAt: r.updated_at,
  };
}

export function createSqliteMintStore(db: Database): MintStore {
  const getMint = db.prepare("SELECT * FROM mints WHERE tenant_id = ? AND ticket_id = ?");
  const byKey = db.prepare("SELECT * FROM mints WHERE tenant_id = ? AND idempotency_key = ?");
  // DO NOTHING on the ticket's primary key: a second request for a ticket finds the first one's row.
  const insert = db.prepare(`INSERT INTO mints (tenant_id, ticket_id, kind, status, user_id, event_id, ticket_type_id, recipient_wallet,
    address, merkle_tree, signature, metadata_uri, ticket_update, idempotency_key, created_at, confirmed_at, updated_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant_id, ticket_id) DO NOTHING`);
  const confirm = db.prepare(`UPDATE mints SET status = 'confirmed', address = ?, signature = ?, metadata_uri = ?, error = '',
    confirmed_at = ?, updated_at = ? WHERE tenant_id = ? AND ticket_id = ? AND status = 'pending'`);
  const ticketUpdated = db.prepare(`UPDATE mints SET ticket_update = 'done', updated_at = ?
    WHERE tenant_id = ? AND ticket_id = ? AND ticket_update = 'pending'`);

  function run(m: NewMint, status: MintState, address: string, signature: string, metadataUri: string, confirmedAt: string | null): void {
    insert.run(m.tenantId, m.ticketId, m.kind, status, m.userId, m.eventId, m.ticketTypeId, m.recipientWallet, address, m.merkleTree,
      signature, metadataUri, m.ticketUpdate, m.idempotencyKey ?? null, m.createdAt, confirmedAt, m.createdAt);
  }

  return {
    getMint(tenantId, ticketId) {
      const r = getMint.get(tenantId, ticketId) as MintRecord | undefined;
      return r && toRow(r);
    },
    findByIdempotencyKey(tenantId, key) {
      const r = byKey.get(tenantId, key) as MintRecord | undefined;
      return r && toRow(r);
    },
    insertPending(m) {
      run(m, "pending", "", "", "", null);
      return toRow(getMint.get(m.tenantId, m.ticketId) as unknown as MintRecord);
    },
    confirm(tenantId, ticketId, address, signature, metadataUri, at) {
      confirm.run(address, signature, metadataUri, at, at, tenantId, ticketId);
    },
    markTicketUpdated(tenantId, ticketId, at) {
      ticketUpdated.run(at, tenantId, ticketId);
    },
    insertConfirmed(m) {
      run(m, "confirmed", m.address, m.signature, m.metadataUri, m.createdAt);
    },
  };
}
