/**
 * notification-service's storage port and its SQLite implementation: the
 * notifications asked for (the read path a caller or test uses to see what was
 * sent), registered push devices, and the provider fakes' records. Every query
 * is keyed by tenant.
 */
import { transaction, type Database } from "../shared/database.ts";

export type Channel = "email" | "sms" | "push";
export type Priority = "low" | "normal" | "high" | "critical";
export type DeliveryStatus = "queued" | "sent" | "suppressed";
export type Platform = "ios" | "android" | "web";

export interface NotificationRow {
  readonly tenantId: string;
  readonly id: string;
  readonly channel: Channel;
  readonly recipient: string;
  readonly userId: string;
  readonly templateName: string;
  /** Template values, JSON object. */
  readonly templateData: string;
  readonly subject: string;
  readonly body: string;
  readonly priority: Priority;
  readonly status: DeliveryStatus;
  readonly sendAt: string | undefined;
  readonly deviceCount: number;
  readonly provider: string;
  readonly providerMessageId: string;
  readonly dedupeKey: string;
  readonly idempotencyKey: string | undefined;
  readonly requestHash: string;
  readonly createdAt: string;
  readonly sentAt: string | undefined;
}

export interface ProviderRequestRow {
  readonly tenantId: string;
  readonly id: string;
  readonly notificationId: string;
  readonly provider: "sendgrid" | "twilio" | "push";
  readonly recipient: string;
  readonly subject: string;
  readonly body: string;
  readonly createdAt: string;
}

export interface NotificationStore {
  getNotification(tenantId: string, id: string): NotificationRow | undefined;
  /** The notifications sent or asked for to one recipient, oldest first. */
  notificationsTo(tenantId: string, recipient: string): NotificationRow[];
  byIdempotencyKey(tenantId: string, key: string): NotificationRow | undefined;
  /** True when one with this dedupe key was sent at or after `since`. */
  sentSince(tenantId: string, dedupeKey: string, since: string): boolean;
  insertNotification(row: NotificationRow): void;
  /** Queued notifications of the tenant whose send_at is at or before `now`, oldest first. */
  dueQueued(tenantId: string, now: string, limit: number): NotificationRow[];
  /** queued -> sent; false when it was not queued any more (another deliverer won). */
  markSent(tenantId: string, id: string, provider: string, messageId: string, sentAt: string): boolean;
  devicesOf(tenantId: string, userId: string): { deviceToken: string; platform: Platform }[];
  addDevice(tenantId: string, userId: string, deviceToken: string, platform: Platform, at: string): void;
  insertProviderRequest(row: ProviderRequestRow): void;
  providerRequests(tenantId: string, notificationId: string): ProviderRequestRow[];
}

type Rec = Record<string, string | number | null>;

function toNotification(r: Rec): NotificationRow {
  return {
    tenantId: r.tenant_id as string,
    id: r.id as string,
    channel: r.channel as Channel,
    recipient: r.recipient as string,
    userId: r.user_id as string,
    templateName: r.template_name as string,
    templateData: r.template_data as string,
    subject: r.subject as string,
    body: r.body as string,
    priority: r.priority as Priority,
    status: r.status as DeliveryStatus,
    sendAt: (r.send_at as string | null) ?? undefined,
    deviceCount: r.device_count as number,
    provider: r.provider as string,
    providerMessageId: r.provider_message_id as string,
    dedupeKey: r.dedupe_key as string,
    idempotencyKey: (r.idempotency_key as string | null) ?? undefined,
    requestHash: r.request_hash as string,
    createdAt: r.created_at as string,
    sentAt: (r.sent_at as string | null) ?? undefined,
  };
}

export function createSqliteNotificationStore(db: Database): NotificationStore {
  const get = db.prepare("SELECT * FROM notifications WHERE tenant_id = ? AND id = ?");
  const to = db.prepare("SELECT * FROM notifications WHERE tenant_id = ? AND recipient = ? ORDER BY created_at, id");
  const byKey = db.prepare("SELECT * FROM notifications WHERE tenant_id = ? AND idempotency_key = ?");
  const sentSince = db.prepare("SELECT 1 FROM notifications WHERE tenant_id = ? AND dedupe_key = ? AND status = 'sent' AND sent_at >= ? LIMIT 1");
  const insert = db.prepare(`INSERT INTO notifications (tenant_id, id, channel, recipient, user_id, template_name, template_data, subject, body,
    priority, status, send_at, device_count, provider, provider_message_id, dedupe_key, idempotency_key, request_hash, created_at, sent_at)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const due = db.prepare("SELECT * FROM notifications WHERE tenant_id = ? AND status = 'queued' AND send_at <= ? ORDER BY send_at, id LIMIT ?");
  const markSent = db.prepare(`UPDATE notifications SET status = 'sent', provider = ?, provider_message_id = ?, sent_at = ?
    WHERE tenant_id = ? AND id = ? AND status = 'queued'`);
  const devices = db.prepare("SELECT device_token, platform FROM push_devices WHERE tenant_id = ? AND user_id = ? ORDER BY created_at, device_token");
  const addDevice = db.prepare("INSERT OR IGNORE INTO push_devices (tenant_id, user_id, device_token, platform, created_at) VALUES (?, ?, ?, ?, ?)");
  const insertRequest = db.prepare(
    "INSERT INTO provider_requests (tenant_id, id, notification_id, provider, recipient, subject, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const requests = db.prepare("SELECT * FROM provider_requests WHERE tenant_id = ? AND notification_id = ? ORDER BY created_at, id");
  return {
    getNotification(tenantId, id) {
      const r = get.get(tenantId, id) as Rec | undefined;
      return r && toNotification(r);
    },
    notificationsTo(tenantId, recipient) {
      return (to.all(tenantId, recipient) as Rec[]).map(toNotification);
    },
    byIdempotencyKey(tenantId, key) {
      const r = byKey.get(tenantId, key) as Rec | undefined;
      return r && toNotification(r);
    },
    sentSince(tenantId, dedupeKey, since) {
      return sentSince.get(tenantId, dedupeKey, since) !== undefined;
    },
    insertNotification(n) {
      transaction(db, () =>
        insert.run(n.tenantId, n.id, n.channel, n.recipient, n.userId, n.templateName, n.templateData, n.subject, n.body, n.priority, n.status,
          n.sendAt ?? null, n.deviceCount, n.provider, n.providerMessageId, n.dedupeKey, n.idempotencyKey ?? null, n.requestHash, n.createdAt,
          n.sentAt ?? null),
      );
    },
    dueQueued(tenantId, now, limit) {
      return (due.all(tenantId, now, limit) as Rec[]).map(toNotification);
    },
    markSent(tenantId, id, provider, messageId, sentAt) {
      return transaction(db, () => markSent.run(provider, messageId, sentAt, tenantId, id).changes > 0);
    },
    devicesOf(tenantId, userId) {
      return (devices.all(tenantId, userId) as { device_token: string; platform: Platform }[]).map((d) => ({ deviceToken: d.device_token, platform: d.platform }));
    },
    addDevice(tenantId, userId, deviceToken, platform, at) {
      addDevice.run(tenantId, userId, deviceToken, platform, at);
    },
    insertProviderRequest(r) {
      insertRequest.run(r.tenantId, r.id, r.notificationId, r.provider, r.recipient, r.subject, r.body, r.createdAt);
    },
    providerRequests(tenantId, notificationId) {
      return (requests.all(tenantId, notificationId) as Rec[]).map((r) => ({
        tenantId: r.tenant_id as string, id: r.id as string, notificationId: r.notification_id as string,
        provider: r.provider as ProviderRequestRow["provider"], recipient: r.recipient as string, subject: r.subject as string,
        body: r.body as string, createdAt: r.created_at as string,
      }));
    },
  };
}
