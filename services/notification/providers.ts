/**
 * The delivery providers (SendGrid for email, Twilio for SMS, a push gateway)
 * as ports, and their local fakes, the default: a fake records what it was
 * asked in the service's own database (provider_requests) and answers with a
 * message id derived from the notification id, so runs are reproducible.
 */
import type { NotificationStore } from "./store.ts";

export interface EmailProvider {
  readonly name: "sendgrid";
  send(m: { tenantId: string; notificationId: string; to: string; subject: string; body: string }): Promise<{ messageId: string }>;
}

export interface SmsProvider {
  readonly name: "twilio";
  send(m: { tenantId: string; notificationId: string; to: string; body: string }): Promise<{ messageId: string }>;
}

export interface PushProvider {
  readonly name: "push";
  send(m: { tenantId: string; notificationId: string; deviceTokens: readonly string[]; title: string; body: string }): Promise<{ messageId: string }>;
}

export interface NotificationProviders {
  readonly email: EmailProvider;
  readonly sms: SmsProvider;
  readonly push: PushProvider;
}

export function createFakeProviders(store: NotificationStore, now: () => Date): NotificationProviders {
  const record = (tenantId: string, notificationId: string, provider: "sendgrid" | "twilio" | "push", recipient: string, subject: string, body: string, n = 0) =>
    store.insertProviderRequest({ tenantId, id: `${notificationId}:${n}`, notificationId, provider, recipient, subject, body, createdAt: now().toISOString() });
  return {
    email: {
      name: "sendgrid",
      async send({ tenantId, notificationId, to, subject, body }) {
        record(tenantId, notificationId, "sendgrid", to, subject, body);
        return { messageId: `sg_${notificationId}` };
      },
    },
    sms: {
      name: "twilio",
      async send({ tenantId, notificationId, to, body }) {
        record(tenantId, notificationId, "twilio", to, "", body);
        return { messageId: `SM_${notificationId}` };
      },
    },
    push: {
      name: "push",
      async send({ tenantId, notificationId, deviceTokens, title, body }) {
        deviceTokens.forEach((token, i) => record(tenantId, notificationId, "push", token, title, body, i));
        return { messageId: `push_${notificationId}` };
      },
    },
  };
}
