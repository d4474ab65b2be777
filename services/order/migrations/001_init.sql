-- order-service schema v1: orders and their lines, per tenant.
-- idempotency_key: the CreateOrder key, so a retried create (even after a restart) finds its first order.
-- request_hash: what that key was first used for, so the same key with another request is refused.
CREATE TABLE orders (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  order_number TEXT NOT NULL,
  user_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'paid', 'confirmed', 'cancelled', 'expired', 'refunded', 'partially_refunded')),
  currency TEXT NOT NULL,
  subtotal_minor INTEGER NOT NULL CHECK (subtotal_minor >= 0),
  platform_fee_minor INTEGER NOT NULL DEFAULT 0 CHECK (platform_fee_minor >= 0),
  processing_fee_minor INTEGER NOT NULL DEFAULT 0 CHECK (processing_fee_minor >= 0),
  tax_minor INTEGER NOT NULL DEFAULT 0 CHECK (tax_minor >= 0),
  discount_minor INTEGER NOT NULL DEFAULT 0 CHECK (discount_minor >= 0),
  total_minor INTEGER NOT NULL CHECK (total_minor >= 0),
  payment_method TEXT NOT NULL,
  payment_id TEXT,
  payment_intent_id TEXT NOT NULL DEFAULT '',
  -- What payment-service said when the payment was completed: 'completed' (captured) or 'authorized'.
  payment_status TEXT CHECK (payment_status IN ('completed', 'authorized')),
  cancel_reason TEXT NOT NULL DEFAULT '',
  metadata_json TEXT NOT NULL DEFAULT '{}',
  idempotency_key TEXT,
  request_hash TEXT NOT NULL DEFAULT '',
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, order_number),
  UNIQUE (tenant_id, idempotency_key),
  -- A paid order has a payment; a cancelled order never became paid.
  CHECK (status NOT IN ('paid', 'confirmed') OR payment_id IS NOT NULL)
);

CREATE TABLE order_items (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  ticket_type_id TEXT NOT NULL,
  quantity INTEGER NOT NULL CHECK (quantity > 0),
  unit_price_minor INTEGER NOT NULL CHECK (unit_price_minor >= 0),
  PRIMARY KEY (tenant_id, id),
  UNIQUE (tenant_id, order_id, position),
  FOREIGN KEY (tenant_id, order_id) REFERENCES orders (tenant_id, id)
);
