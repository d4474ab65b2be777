-- minting-service schema v1: one mint per ticket, per tenant, and what the fake Solana adapter was asked.
-- A ticket is minted once (primary key), whichever RPC asked; idempotency_key is the key of the single-ticket
-- request that created the row (batch rows have none: the ticket id is their natural key).
CREATE TABLE mints (
  tenant_id TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('nft', 'compressed')),
  status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'failed')),
  user_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  ticket_type_id TEXT NOT NULL DEFAULT '',
  recipient_wallet TEXT NOT NULL DEFAULT '',
  -- NFT mint address, or the compressed NFT's asset id (base58); empty until submitted.
  address TEXT NOT NULL DEFAULT '',
  merkle_tree TEXT NOT NULL DEFAULT '',
  signature TEXT NOT NULL DEFAULT '',
  metadata_uri TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  -- Whether ticket-service has the NFT fields: 'pending' until UpdateNft succeeds; compressed mints leave it to their caller.
  ticket_update TEXT NOT NULL CHECK (ticket_update IN ('pending', 'done', 'not_requested')),
  idempotency_key TEXT,
  created_at TEXT NOT NULL,
  confirmed_at TEXT,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, ticket_id),
  UNIQUE (tenant_id, idempotency_key),
  CHECK (status != 'confirmed' OR (address != '' AND signature != '' AND confirmed_at IS NOT NULL))
);

-- The local fake of Solana: every mint it was asked for, as a row (deployments plug in a real adapter).
CREATE TABLE fake_solana_requests (
  tenant_id TEXT NOT NULL,
  request_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('nft', 'compressed')),
  ticket_id TEXT NOT NULL,
  owner TEXT NOT NULL,
  merkle_tree TEXT NOT NULL DEFAULT '',
  address TEXT NOT NULL,
  signature TEXT NOT NULL,
  metadata_json TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, request_id)
);
