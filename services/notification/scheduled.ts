/**
 * Delivery of emails queued for later (SendEmail with a future send_at): sends
 * those now due through the provider and marks them sent. The host process
 * runs it periodically per tenant; it is safe to run concurrently with itself
 * (a row moves queued -> sent once).
 */
import type { NotificationProviders } from "./providers.ts";
import type { NotificationStore } from "./store.ts";

export async function deliverDueEmails(
  deps: { store: NotificationStore; providers: NotificationProviders; now(): Date },
  tenantId: string,
  limit = 100,
): Promise<number> {
  const { store, providers } = deps;
  let delivered = 0;
  for (const n of store.dueQueued(tenantId, deps.now().toISOString(), limit)) {
    if (n.channel !== "email") continue;
    const { messageId } = await providers.email.send({ tenantId, notificationId: n.id, to: n.recipient, subject: n.subject, body: n.body });
    if (store.markSent(tenantId, n.id, providers.email.name, messageId, deps.now().toISOString())) delivered++;
  }
  return delivered;
}
