/**
 * notification-service over mTLS through its generated client: every RPC,
 * success and error paths. A "sent" notification is a row read back through
 * the store, with what the provider fake was asked; keyed retries send once
 * (also after a restart on a file database); duplicates within the channel's
 * window are suppressed (injected clock); everything is tenant-scoped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, type CallOptions } from "@connectrpc/connect";
import {
  createNotificationServiceClient,
  type NotificationServiceClient,
} from "../../src/contracts/gen/tickettoken/notification/v1/notification_service_rpc.ts";
import { NotificationPriority, NotificationStatus } from "../../src/contracts/gen/tickettoken/notification/v1/notification_service_pb.ts";
import { notificationModule } from "../../services/notification/index.ts";
import { createSqliteNotificationStore, type NotificationStore } from "../../services/notification/store.ts";
import { registerDevice } from "../../services/notification/devices.ts";
import { createFakeProviders } from "../../services/notification/providers.ts";
import { deliverDueEmails } from "../../services/notification/scheduled.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

let pki: TestPki;
let svc: ServiceHarness;
let ticket: NotificationServiceClient;
let store: NotificationStore;
let tmp: string;
let clock = new Date("2026-12-01T12:00:00Z");

beforeAll(async () => {
  pki = await createTestPki();
  tmp = mkdtempSync(join(tmpdir(), "tt-notification-"));
  svc = await startService(pki, notificationModule, { now: () => clock });
  ticket = await svc.client("ticket-service", createNotificationServiceClient);
  store = createSqliteNotificationStore(svc.service.runtime.db);
});

afterAll(async () => {
  await svc?.stop();
  pki?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function keyed(tenantId: string, key: string, harness = svc): Promise<CallOptions> {
  const opts = await harness.as(tenantId, "u-1");
  return { ...opts, headers: { ...(opts.headers as Record<string, string>), "idempotency-key": key } };
}

function count(table: string, harness = svc): number {
  return (harness.service.runtime.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
}

const confirmation = (orderId: string) => ({ name: "payment-confirmation", data: { orderId, amount: "$135.00" } });

describe("notification-service SendEmail", () => {
  it("sends through the provider fake and records a row that reads back", async () => {
    const res = await ticket.sendEmail(
      { tenantId: ACME, to: "Alice@Acme.test", userId: "u-1", template: confirmation("o-1"), priority: NotificationPriority.HIGH },
      await keyed(ACME, "email-1"),
    );
    expect(res.status).toBe(NotificationStatus.SENT);
    const row = store.getNotification(ACME, res.notificationId);
    expect(row).toMatchObject({
      channel: "email", recipient: "alice@acme.test", userId: "u-1", templateName: "payment-confirmation", priority: "high",
      status: "sent", subject: "Your order o-1 is confirmed", provider: "sendgrid", providerMessageId: `sg_${res.notificationId}`,
    });
    expect(row?.body).toBe("Thank you! We received your payment of $135.00 for order o-1.");
    expect(store.providerRequests(ACME, res.notificationId)).toMatchObject([{ provider: "sendgrid", recipient: "Alice@Acme.test", subject: "Your order o-1 is confirmed" }]);
    // Tenant-scoped: another tenant does not see it.
    expect(store.getNotification(GLOBEX, res.notificationId)).toBeUndefined();
  });

  it("a keyed retry answers the first notification and sends nothing; the key with another request is refused", async () => {
    const req = { tenantId: ACME, to: "bob@acme.test", template: confirmation("o-2") };
    const [rows, sent] = [count("notifications"), count("provider_requests")];
    const first = await ticket.sendEmail(req, await keyed(ACME, "email-retry"));
    const again = await ticket.sendEmail(req, await keyed(ACME, "email-retry"));
    expect(again).toEqual(first);
    expect([count("notifications"), count("provider_requests")]).toEqual([rows + 1, sent + 1]);
    const err = await callError(ticket.sendEmail({ ...req, to: "carol@acme.test" }, await keyed(ACME, "email-retry")));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(count("notifications")).toBe(rows + 1);
  });

  it("suppresses the same email within 24 h and sends it again after (injected clock)", async () => {
    const req = { tenantId: ACME, to: "dup@acme.test", template: confirmation("o-dup") };
    expect((await ticket.sendEmail(req, await keyed(ACME, "dup-1"))).status).toBe(NotificationStatus.SENT);
    const sent = count("provider_requests");
    const dup = await ticket.sendEmail(req, await keyed(ACME, "dup-2"));
    expect(dup.status).toBe(NotificationStatus.SUPPRESSED);
    expect(store.getNotification(ACME, dup.notificationId)?.status).toBe("suppressed");
    // Different values are a different email, not a duplicate.
    expect((await ticket.sendEmail({ ...req, template: confirmation("o-dup-2") }, await keyed(ACME, "dup-3"))).status).toBe(NotificationStatus.SENT);
    const before = clock;
    try {
      clock = new Date(before.getTime() + 25 * 3_600_000);
      expect((await ticket.sendEmail(req, await keyed(ACME, "dup-4"))).status).toBe(NotificationStatus.SENT);
    } finally {
      clock = before;
    }
    expect(count("provider_requests")).toBe(sent + 2);
  });

  it("queues an email scheduled for later without sending it", async () => {
    const sent = count("provider_requests");
    const res = await ticket.sendEmail(
      { tenantId: ACME, to: "later@acme.test", template: confirmation("o-later"), sendAt: timestampFromDate(new Date(clock.getTime() + 3_600_000)) },
      await keyed(ACME, "email-later"),
    );
    expect(res.status).toBe(NotificationStatus.QUEUED);
    expect(store.getNotification(ACME, res.notificationId)).toMatchObject({ status: "queued", sentAt: undefined });
    expect(count("provider_requests")).toBe(sent);

    // Delivered once due, exactly once.
    const deps = { store, providers: createFakeProviders(store, () => clock), now: () => clock };
    expect(await deliverDueEmails(deps, ACME)).toBe(0);
    const before = clock;
    try {
      clock = new Date(before.getTime() + 2 * 3_600_000);
      expect(await deliverDueEmails(deps, ACME)).toBe(1);
      expect(await deliverDueEmails(deps, ACME)).toBe(0);
    } finally {
      clock = before;
    }
    expect(store.getNotification(ACME, res.notificationId)).toMatchObject({ status: "sent", provider: "sendgrid" });
    expect(store.providerRequests(ACME, res.notificationId)).toMatchObject([{ recipient: "later@acme.test", subject: "Your order o-later is confirmed" }]);
  });

  it("refuses a bad address, an unknown template and a missing template value, by field", async () => {
    const bad = await callError(ticket.sendEmail({ tenantId: ACME, to: "nope", template: confirmation("o-1") }, await keyed(ACME, "bad-1")));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["to"]);
    const unknown = await callError(ticket.sendEmail({ tenantId: ACME, to: "a@acme.test", template: { name: "spam" } }, await keyed(ACME, "bad-2")));
    expect(violatedFields(unknown)).toEqual(["template.name"]);
    const missing = await callError(
      ticket.sendEmail({ tenantId: ACME, to: "a@acme.test", template: { name: "payment-confirmation", data: { amount: "$1" } } }, await keyed(ACME, "bad-3")),
    );
    expect(violatedFields(missing)).toEqual(["template.data[orderId]"]);
  });

  it("a keyed retry after a restart (file database) answers the first notification and sends nothing", async () => {
    const database = join(tmp, "notification.db");
    const req = { tenantId: ACME, to: "restart@acme.test", template: confirmation("o-restart") };
    let durable = await startService(pki, notificationModule, { now: () => clock, database });
    let first;
    try {
      const client = await durable.client("queue-service", createNotificationServiceClient);
      first = await client.sendEmail(req, await keyed(ACME, "restart-1", durable));
    } finally {
      await durable.stop();
    }
    durable = await startService(pki, notificationModule, { now: () => clock, database });
    try {
      const client = await durable.client("queue-service", createNotificationServiceClient);
      // First after the restart, so the stored row (not the framework's in-memory dedupe) refuses the key for another request.
      const err = await callError(client.sendEmail({ ...req, to: "other@acme.test" }, await keyed(ACME, "restart-1", durable)));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(await client.sendEmail(req, await keyed(ACME, "restart-1", durable))).toEqual(first);
      expect([count("notifications", durable), count("provider_requests", durable)]).toEqual([1, 1]);
    } finally {
      await durable.stop();
    }
  });
});

describe("notification-service SendSms", () => {
  it("sends an SMS to an E.164 number, suppressing a repeat within the hour", async () => {
    const req = { tenantId: ACME, to: "+15550100001", userId: "u-1", template: { name: "nft-minted", data: { ticketId: "t-1" } } };
    const res = await ticket.sendSms(req, await keyed(ACME, "sms-1"));
    expect(res.status).toBe(NotificationStatus.SENT);
    expect(store.getNotification(ACME, res.notificationId)).toMatchObject({ channel: "sms", provider: "twilio", body: "Ticket t-1 was minted to your wallet." });
    expect(store.providerRequests(ACME, res.notificationId)).toMatchObject([{ provider: "twilio", recipient: "+15550100001" }]);
    expect((await ticket.sendSms(req, await keyed(ACME, "sms-2"))).status).toBe(NotificationStatus.SUPPRESSED);
  });

  it("refuses a number that is not E.164 and an unknown priority", async () => {
    const err = await callError(
      ticket.sendSms({ tenantId: ACME, to: "555-0100", template: { name: "nft-minted", data: { ticketId: "t-1" } }, priority: 42 as NotificationPriority }, await keyed(ACME, "sms-bad")),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["to", "priority"]);
  });
});

describe("notification-service SendPush", () => {
  it("pushes to every registered device of the user", async () => {
    const res = await ticket.sendPush(
      { tenantId: ACME, userId: "u-1", template: { name: "event-reminder", data: { eventName: "Acme Summer Concert", startsAt: "19:00" } }, title: "Tonight!" },
      await keyed(ACME, "push-1"),
    );
    expect(res).toMatchObject({ status: NotificationStatus.SENT, deviceCount: 2 });
    expect(store.getNotification(ACME, res.notificationId)).toMatchObject({ channel: "push", subject: "Tonight!", body: "Reminder: Acme Summer Concert starts at 19:00.", deviceCount: 2 });
    expect(store.providerRequests(ACME, res.notificationId).map((r) => r.provider)).toEqual(["push", "push"]);
  });

  it("a user without devices, or another tenant's user, is FAILED_PRECONDITION and nothing is sent", async () => {
    const sent = count("provider_requests");
    const template = { name: "nft-minted", data: { ticketId: "t-1" } };
    expect((await callError(ticket.sendPush({ tenantId: ACME, userId: "u-2", template }, await keyed(ACME, "push-none")))).code).toBe(Code.FailedPrecondition);
    expect((await callError(ticket.sendPush({ tenantId: GLOBEX, userId: "u-1", template }, await keyed(GLOBEX, "push-foreign")))).code).toBe(Code.FailedPrecondition);
    expect(count("provider_requests")).toBe(sent);
  });

  it("only well-formed device tokens can be registered", () => {
    expect(() => registerDevice(store, ACME, "u-2", "short", "ios", clock.toISOString())).toThrow(RangeError);
    expect(store.devicesOf(ACME, "u-2")).toEqual([]);
  });

  it("callers outside the contract and a tenant other than the context's are refused", async () => {
    const template = { name: "nft-minted", data: { ticketId: "t-1" } };
    const other = await svc.client("event-service", createNotificationServiceClient);
    expect((await callError(other.sendPush({ tenantId: ACME, userId: "u-1", template }, await keyed(ACME, "push-x")))).code).toBe(Code.PermissionDenied);
    expect((await callError(ticket.sendPush({ tenantId: GLOBEX, userId: "u-g1", template }, await keyed(ACME, "push-y")))).code).toBe(Code.PermissionDenied);
  });
});
