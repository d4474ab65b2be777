-- payment-service schema v1: payments, refunds, escrows, venue payouts, tax rates,
-- and the fake processor's request log. Amounts are integer minor units.
CREATE TABLE payments (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  order_id TEXT NOT NULL DEFAULT '',
  listing_id TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL,
  venue_id TEXT NOT NULL DEFAULT '',
  event_id TEXT NOT NULL DEFAULT '',
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('authorized', 'failed', 'completed', 'cancelled', 'refunded', 'partially_refunded')),
  captured_minor INTEGER NOT NULL DEFAULT 0 CHECK (captured_minor >= 0 AND captured_minor <= amount_minor),
  refunded_minor INTEGER NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0 AND refunded_minor <= captured_minor),
  intent_id TEXT NOT NULL,
  client_secret TEXT NOT NULL DEFAULT '',
  payment_method TEXT NOT NULL,
  card_brand TEXT NOT NULL DEFAULT '',
  card_last4 TEXT NOT NULL DEFAULT '',
  failure_reason TEXT NOT NULL DEFAULT '',
  ticket_quantity INTEGER NOT NULL DEFAULT 0,
  -- What ticket-service must still hear about this payment (CompletePayment retries it until sent).
  ticket_notice TEXT NOT NULL DEFAULT 'none' CHECK (ticket_notice IN ('none', 'pending', 'sent')),
  create_key TEXT,
  capture_key TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, intent_id),
  UNIQUE (tenant_id, create_key)
);
CREATE INDEX payments_by_order ON payments (tenant_id, order_id, created_at);
CREATE INDEX payments_by_venue ON payments (tenant_id, venue_id, created_at);

CREATE TABLE refunds (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  payment_id TEXT NOT NULL,
  order_id TEXT NOT NULL DEFAULT '',
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency TEXT NOT NULL,
  -- pending: the amount is reserved against the payment; succeeded: the processor paid it back.
  status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
  reason TEXT NOT NULL DEFAULT '',
  processor_refund_id TEXT NOT NULL DEFAULT '',
  request_key TEXT,
  created_at TEXT NOT NULL,
  completed_at TEXT,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, request_key),
  FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id)
);
CREATE INDEX refunds_by_payment ON refunds (tenant_id, payment_id);

-- A ticket is refunded at most once (the primary key makes a second refund of it impossible).
CREATE TABLE refund_tickets (
  tenant_id TEXT NOT NULL,
  ticket_id TEXT NOT NULL,
  refund_id TEXT NOT NULL,
  PRIMARY KEY (tenant_id, ticket_id),
  FOREIGN KEY (tenant_id, refund_id) REFERENCES refunds (tenant_id, id)
);

CREATE TABLE escrows (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  listing_id TEXT NOT NULL,
  buyer_user_id TEXT NOT NULL,
  seller_user_id TEXT NOT NULL,
  payment_id TEXT NOT NULL,
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('held', 'released', 'refunded')),
  seller_payout_minor INTEGER NOT NULL DEFAULT 0,
  processor_transfer_id TEXT NOT NULL DEFAULT '',
  refund_id TEXT NOT NULL DEFAULT '',
  hold_key TEXT,
  release_key TEXT,
  refund_key TEXT,
  held_at TEXT NOT NULL,
  released_at TEXT,
  refunded_at TEXT,
  PRIMARY KEY (tenant_id, id),
  -- One escrow per payment: a payment is held once.
  UNIQUE (tenant_id, payment_id),
  UNIQUE (tenant_id, hold_key),
  FOREIGN KEY (tenant_id, payment_id) REFERENCES payments (tenant_id, id)
);

CREATE TABLE connected_accounts (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  venue_id TEXT NOT NULL,
  email TEXT NOT NULL,
  country TEXT NOT NULL,
  business_type TEXT NOT NULL,
  charges_enabled INTEGER NOT NULL DEFAULT 0,
  payouts_enabled INTEGER NOT NULL DEFAULT 0,
  details_submitted INTEGER NOT NULL DEFAULT 0,
  onboarding_url TEXT NOT NULL,
  create_key TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, venue_id),
  UNIQUE (tenant_id, create_key)
);

CREATE TABLE venue_transfers (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  venue_id TEXT NOT NULL,
  connected_account_id TEXT NOT NULL,
  event_id TEXT NOT NULL DEFAULT '',
  amount_minor INTEGER NOT NULL CHECK (amount_minor > 0),
  currency TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'failed', 'reversed')),
  description TEXT NOT NULL DEFAULT '',
  processor_transfer_id TEXT NOT NULL DEFAULT '',
  create_key TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, create_key),
  FOREIGN KEY (tenant_id, connected_account_id) REFERENCES connected_accounts (tenant_id, id)
);
CREATE INDEX venue_transfers_by_venue ON venue_transfers (tenant_id, venue_id, created_at);

-- Tax rates by jurisdiction: region '' applies to the whole country, city '' to the whole region.
CREATE TABLE tax_rates (
  tenant_id TEXT NOT NULL,
  country TEXT NOT NULL,
  region TEXT NOT NULL DEFAULT '',
  city TEXT NOT NULL DEFAULT '',
  jurisdiction TEXT NOT NULL,
  -- Hundredths of a percent: 725 = 7.25%.
  rate_bp INTEGER NOT NULL CHECK (rate_bp >= 0 AND rate_bp <= 10000),
  PRIMARY KEY (tenant_id, country, region, city, jurisdiction)
);

-- Every request the (fake) payment processor was asked, readable back; the
-- key makes a repeated request answer like the first (as Stripe's idempotency keys do).
CREATE TABLE processor_requests (
  tenant_id TEXT NOT NULL,
  request_key TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('payment_intent', 'capture', 'cancel', 'refund', 'account', 'transfer')),
  object_id TEXT NOT NULL,
  amount_minor INTEGER NOT NULL DEFAULT 0,
  currency TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
  result_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, request_key)
);

-- The answer a keyed state change gave (CompletePayment, CapturePayment,
-- CancelPayment: they update a payment rather than insert a row), so its key
-- retried after a restart gets that first answer, not the payment as it is now.
CREATE TABLE keyed_answers (
  tenant_id TEXT NOT NULL,
  method TEXT NOT NULL,
  request_key TEXT NOT NULL,
  -- SHA-256 of the request's protobuf encoding: the same key with another request is refused.
  request_hash TEXT NOT NULL,
  response BLOB NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, method, request_key)
);
