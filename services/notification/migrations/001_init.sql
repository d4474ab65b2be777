-- notification-service schema v1: every notification asked for (sent, queued or suppressed), the devices
-- push goes to, and what the local provider fakes were asked to deliver.
CREATE TABLE notifications (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  channel TEXT NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
  -- email address, E.164 number, or (push) the user id
  recipient TEXT NOT NULL,
  user_id TEXT NOT NULL DEFAULT '',
  template_name TEXT NOT NULL,
  template_data TEXT NOT NULL DEFAULT '{}',
  subject TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL DEFAULT '',
  priority TEXT NOT NULL CHECK (priority IN ('low', 'normal', 'high', 'critical')),
  status TEXT NOT NULL CHECK (status IN ('queued', 'sent', 'suppressed')),
  send_at TEXT,
  device_count INTEGER NOT NULL DEFAULT 0 CHECK (device_count >= 0),
  provider TEXT NOT NULL DEFAULT '',
  provider_message_id TEXT NOT NULL DEFAULT '',
  -- channel + template + recipient + data: what the dedupe window compares
  dedupe_key TEXT NOT NULL,
  idempotency_key TEXT,
  request_hash TEXT NOT NULL,
  created_at TEXT NOT NULL,
  sent_at TEXT,
  PRIMARY KEY (tenant_id, id),
  CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
CREATE UNIQUE INDEX notifications_idempotency_key ON notifications (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX notifications_dedupe ON notifications (tenant_id, dedupe_key, sent_at);

CREATE TABLE push_devices (
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_token TEXT NOT NULL,
  platform TEXT NOT NULL CHECK (platform IN ('ios', 'android', 'web')),
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, user_id, device_token)
);

-- What the local fakes of SendGrid, Twilio and the push gateway were asked (one row per delivery).
CREATE TABLE provider_requests (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  notification_id TEXT NOT NULL,
  provider TEXT NOT NULL CHECK (provider IN ('sendgrid', 'twilio', 'push')),
  recipient TEXT NOT NULL,
  subject TEXT NOT NULL DEFAULT '',
  body TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant_id, id)
);
CREATE INDEX provider_requests_notification ON provider_requests (tenant_id, notification_id);
