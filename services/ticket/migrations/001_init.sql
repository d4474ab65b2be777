-- ticket-service schema v1: ticket types, tickets (with NFT and scan state),
-- transfers, scans, payment outcomes, and the event/venue facts tickets are
-- joined with. Every table is keyed by tenant first; UNIQUE keys make
-- retried writes find the first attempt's row.

-- What ticket-service knows of an event and its venue (legacy: a join on
-- event-service's tables); seeded with the demo events.
CREATE TABLE events (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  name TEXT NOT NULL,
  venue_id TEXT NOT NULL,
  venue_name TEXT NOT NULL DEFAULT '',
  refund_policy_hours INTEGER NOT NULL DEFAULT 24 CHECK (refund_policy_hours >= 0),
  starts_at TEXT NOT NULL,
  ends_at TEXT NOT NULL,
  status TEXT NOT NULL,
  timezone TEXT NOT NULL DEFAULT '',
  event_type TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE ticket_types (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  currency TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity >= 0),
  is_transferable INTEGER NOT NULL DEFAULT 1 CHECK (is_transferable IN (0, 1)),
  PRIMARY KEY (tenant_id, id)
);

CREATE TABLE tickets (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  ticket_type_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  -- Current owner.
  user_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('reserved', 'sold', 'transferred', 'used', 'cancelled')),
  ticket_number TEXT NOT NULL,
  seat_section TEXT NOT NULL DEFAULT '',
  seat_row TEXT NOT NULL DEFAULT '',
  seat_number TEXT NOT NULL DEFAULT '',
  price_minor INTEGER NOT NULL CHECK (price_minor >= 0),
  currency TEXT NOT NULL,
  is_transferable INTEGER NOT NULL DEFAULT 1 CHECK (is_transferable IN (0, 1)),
  transfer_count INTEGER NOT NULL DEFAULT 0 CHECK (transfer_count >= 0),
  qr_code TEXT NOT NULL,
  qr_hmac_secret TEXT NOT NULL,
  -- NFT: token_id is the mint address, NULL until minted (unique per tenant).
  token_id TEXT,
  is_minted INTEGER NOT NULL DEFAULT 0 CHECK (is_minted IN (0, 1)),
  mint_transaction_id TEXT NOT NULL DEFAULT '',
  minted_at TEXT,
  wallet_address TEXT NOT NULL DEFAULT '',
  metadata_uri TEXT NOT NULL DEFAULT '',
  last_transfer_signature TEXT NOT NULL DEFAULT '',
  -- Gate scans.
  scan_count INTEGER NOT NULL DEFAULT 0 CHECK (scan_count >= 0),
  last_scanned_at TEXT,
  validated_at TEXT,
  used_at TEXT,
  -- Cancellation (a refund records its id).
  cancel_reason TEXT NOT NULL DEFAULT '',
  refund_id TEXT NOT NULL DEFAULT '',
  cancelled_at TEXT,
  payment_id TEXT NOT NULL DEFAULT '',
  purchased_at TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, ticket_number),
  FOREIGN KEY (tenant_id, ticket_type_id) REFERENCES ticket_types (tenant_id, id)
);
CREATE UNIQUE INDEX tickets_token ON tickets (tenant_id, token_id) WHERE token_id IS NOT NULL;
CREATE INDEX tickets_event ON tickets (tenant_id, event_id, id);
CREATE INDEX tickets_order ON tickets (tenant_id, order_id);
CREATE INDEX tickets_type ON tickets (tenant_id, ticket_type_id);

-- One row per completed transfer; the caller's idempotency key makes a retry return it.
CREATE TABLE ticket_transfers (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  from_user_id TEXT NOT NULL,
  to_user_id TEXT NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  status TEXT NOT NULL CHECK (status IN ('completed')),
  transfer_count_after INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL,
  transferred_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, idempotency_key),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);

-- One row per physical scan (the scanner's idempotency key).
CREATE TABLE ticket_scans (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  venue_id TEXT NOT NULL,
  scan_type TEXT NOT NULL CHECK (scan_type IN ('entry', 'exit', 'reentry')),
  scan_count_after INTEGER NOT NULL,
  status_after TEXT NOT NULL,
  idempotency_key TEXT NOT NULL,
  scanned_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, idempotency_key),
  FOREIGN KEY (tenant_id, ticket_id) REFERENCES tickets (tenant_id, id)
);

-- payment-service's outcome per payment, applied once: issuing tickets (succeeded)
-- or releasing the reservation (failed). An order's tickets are issued by one payment only.
CREATE TABLE payment_outcomes (
  tenant_id TEXT NOT NULL,
  payment_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'failed')),
  idempotency_key TEXT NOT NULL,
  -- JSON array of the ticket ids issued (succeeded).
  ticket_ids TEXT NOT NULL DEFAULT '[]',
  reservation_released INTEGER NOT NULL DEFAULT 0 CHECK (reservation_released IN (0, 1)),
  reason TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, payment_id),
  UNIQUE (tenant_id, idempotency_key)
);
CREATE UNIQUE INDEX payment_outcomes_order_issued ON payment_outcomes (tenant_id, order_id) WHERE outcome = 'succeeded';
