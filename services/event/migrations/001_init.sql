-- event-service schema v1: events with their on-chain configuration, and their ticket types, per tenant.
CREATE TABLE events (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  venue_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  short_description TEXT NOT NULL DEFAULT '',
  event_type TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('draft', 'published', 'on_sale', 'sold_out', 'in_progress', 'completed', 'cancelled', 'postponed')),
  visibility TEXT NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private', 'unlisted')),
  starts_at TEXT,
  ends_at TEXT,
  doors_open TEXT,
  timezone TEXT NOT NULL DEFAULT '',
  capacity INTEGER NOT NULL CHECK (capacity >= 0),
  is_virtual INTEGER NOT NULL DEFAULT 0,
  is_hybrid INTEGER NOT NULL DEFAULT 0,
  event_pda TEXT NOT NULL DEFAULT '',
  merkle_tree_address TEXT NOT NULL DEFAULT '',
  collection_mint TEXT NOT NULL DEFAULT '',
  artist_wallet TEXT NOT NULL DEFAULT '',
  artist_percentage REAL NOT NULL DEFAULT 0 CHECK (artist_percentage BETWEEN 0 AND 100),
  venue_percentage REAL NOT NULL DEFAULT 0 CHECK (venue_percentage BETWEEN 0 AND 100),
  platform_percentage REAL NOT NULL DEFAULT 0 CHECK (platform_percentage BETWEEN 0 AND 100),
  resaleable INTEGER NOT NULL DEFAULT 1,
  max_resale_price_percentage REAL NOT NULL DEFAULT 0,
  cancellation_policy TEXT NOT NULL DEFAULT '',
  refund_policy TEXT NOT NULL DEFAULT '',
  -- who created it (context user) and whether the venue was checked against a stale copy
  created_by TEXT NOT NULL DEFAULT '',
  venue_stale INTEGER NOT NULL DEFAULT 0,
  -- CreateEvent's idempotency key and a hash of its request: a retry finds this row, even after a restart
  idempotency_key TEXT,
  request_hash TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  published_at TEXT,
  PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX events_idempotency_key ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE ticket_types (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  name TEXT NOT NULL,
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  currency TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, event_id, name),
  FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id)
);
