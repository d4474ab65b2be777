/**
 * notification-service's internal RPC surface: one templated email, SMS or
 * push per call, for the context tenant. Every call leaves one notification
 * row (sent, queued for later, or suppressed as a duplicate within the
 * channel's window); a retry with the same idempotency key answers that row
 * and sends nothing, even after a restart.
 *
 * Delivery is at least once: the provider is called before the row is
 * written (no transaction is held across the call), so a crash in between
 * makes a retry send again.
 */
import { createHash } from "node:crypto";
import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { NotificationServiceContract } from "@tickettoken/contracts/tickettoken/notification/v1/notification_service_rpc";
import {
  NotificationPriority,
  NotificationStatus,
  SendEmailRequestSchema,
  SendPushRequestSchema,
  SendSmsRequestSchema,
  type NotificationTemplate,
} from "@tickettoken/contracts/tickettoken/notification/v1/notification_service_pb";
import type { Logger } from "@tickettoken/rpc";
import { idempotencyKeyOf, tenantOf } from "../shared/context.ts";
import { failedPrecondition } from "../shared/errors.ts";
import { newId } from "../shared/ids.ts";
import { validate, type Validator } from "../shared/validate.ts";
import { isDeviceToken } from "./devices.ts";
import type { NotificationProviders } from "./providers.ts";
import type { Channel, DeliveryStatus, NotificationRow, NotificationStore, Priority } from "./store.ts";
import { render, TEMPLATES } from "./templates.ts";

const HOUR_MS = 3_600_000;
/** A duplicate (same channel, template, recipient and values) within this window is suppressed. */
export const DEDUPE_WINDOW_MS: Readonly<Record<Channel, number>> = { email: 24 * HOUR_MS, sms: HOUR_MS, push: 0 };
const MAX_TEMPLATE_VALUES = 50;
const MAX_SMS_CHARS = 1600;

const PRIORITY: Record<number, Priority> = {
  [NotificationPriority.UNSPECIFIED]: "normal",
  [NotificationPriority.LOW]: "low",
  [NotificationPriority.NORMAL]: "normal",
  [NotificationPriority.HIGH]: "high",
  [NotificationPriority.CRITICAL]: "critical",
};
const STATUS: Record<DeliveryStatus, NotificationStatus> = {
  queued: NotificationStatus.QUEUED,
  sent: NotificationStatus.SENT,
  suppressed: NotificationStatus.SUPPRESSED,
};

function checkTemplate(v: Validator, template: NotificationTemplate | undefined): void {
  if (!template || template.name === "") {
    v.fail("template.name", "required");
    return;
  }
  const known = TEMPLATES[template.name];
  if (!known) {
    v.fail("template.name", "unknown template");
    return;
  }
  const entries = Object.entries(template.data);
  v.check(entries.length <= MAX_TEMPLATE_VALUES, "template.data", `at most ${MAX_TEMPLATE_VALUES} values`);
  for (const [k, value] of entries) v.check(value.length <= 1000, `template.data[${k}]`, "at most 1000 characters");
  for (const name of known.requires) v.check((template.data[name] ?? "").trim() !== "", `template.data[${name}]`, "required by the template");
}

function checkPriority(v: Validator, priority: NotificationPriority): void {
  v.check(PRIORITY[priority] !== undefined, "priority", "unknown value");
}

function hashOf<D extends DescMessage>(schema: D, message: MessageShape<D>): string {
  return createHash("sha256").update(toBinary(schema, message)).digest("base64url");
}

function dedupeKey(channel: Channel, template: NotificationTemplate, recipient: string): string {
  const data = Object.entries(template.data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return createHash("sha256").update(JSON.stringify([channel, template.name, recipient, data])).digest("base64url");
}

export interface NotificationDeps {
  readonly store: NotificationStore;
  readonly providers: NotificationProviders;
  readonly logger: Logger;
  now(): Date;
}

interface Outgoing {
  readonly channel: Channel;
  readonly recipient: string;
  readonly userId: string;
  readonly template: NotificationTemplate;
  readonly subject: string;
  readonly body: string;
  readonly priority: Priority;
  readonly sendAt: Date | undefined;
  readonly requestHash: string;
  /** Delivers through the channel's provider; returns its message id and the devices reached. */
  deliver(notificationId: string, tenantId: string): Promise<{ provider: string; messageId: string; deviceCount: number }>;
}

export function notificationService(deps: NotificationDeps): ServiceRegistration {
  const { store, providers, logger } = deps;

  /** One notification: replayed by idempotency key, suppressed within the window, queued for later, or sent now. */
  async function send(ctx: HandlerContext, out: Outgoing): Promise<NotificationRow> {
    const tenantId = tenantOf(ctx);
    const key = idempotencyKeyOf(ctx);
    const replay = (row: NotificationRow): NotificationRow => {
      if (row.requestHash !== out.requestHash) throw failedPrecondition("idempotency key was used for a different request");
      return row;
    };
    const earlier = key === undefined ? undefined : store.byIdempotencyKey(tenantId, key);
    if (earlier) return replay(earlier);

    const now = deps.now();
    const id = newId("ntf");
    const dedupe = dedupeKey(out.channel, out.template, out.recipient);
    const window = DEDUPE_WINDOW_MS[out.channel];
    let status: DeliveryStatus;
    let delivery = { provider: "", messageId: "", deviceCount: 0 };
    if (window > 0 && store.sentSince(tenantId, dedupe, new Date(now.getTime() - window).toISOString())) status = "suppressed";
    else if (out.sendAt !== undefined && out.sendAt.getTime() > now.getTime()) status = "queued";
    else {
      delivery = await out.deliver(id, tenantId);
      status = "sent";
    }
    const row: NotificationRow = {
      tenantId, id, channel: out.channel, recipient: out.recipient, userId: out.userId, templateName: out.template.name,
      templateData: JSON.stringify(out.template.data), subject: out.subject, body: out.body, priority: out.priority, status,
      sendAt: out.sendAt?.toISOString(), deviceCount: delivery.deviceCount, provider: delivery.provider, providerMessageId: delivery.messageId,
      dedupeKey: dedupe, idempotencyKey: key, requestHash: out.requestHash, createdAt: now.toISOString(),
      sentAt: status === "sent" ? now.toISOString() : undefined,
    };
    try {
      store.insertNotification(row);
    } catch (err) {
      // The same key written meanwhile by another instance: answer its row.
      const raced = key === undefined ? undefined : store.byIdempotencyKey(tenantId, key);
      if (raced) return replay(raced);
      throw err;
    }
    logger.info({ notificationId: id, channel: out.channel, status }, "notification recorded");
    return row;
  }

  return implement(NotificationServiceContract, {
    async sendEmail(req, ctx) {
      const v = validate().email("to", req.to).optionalId("user_id", req.userId).optionalText("subject", req.subject, 200);
      checkTemplate(v, req.template);
      checkPriority(v, req.priority);
      v.done();
      const template = req.template!;
      const known = TEMPLATES[template.name]!;
      const subject = req.subject !== "" ? req.subject : render(known.subject, template.data);
      const body = render(known.body, template.data);
      const row = await send(ctx, {
        channel: "email", recipient: req.to.toLowerCase(), userId: req.userId, template, subject, body, priority: PRIORITY[req.priority]!,
        sendAt: req.sendAt && timestampDate(req.sendAt), requestHash: hashOf(SendEmailRequestSchema, req),
        deliver: async (notificationId, tenantId) => {
          const { messageId } = await providers.email.send({ tenantId, notificationId, to: req.to, subject, body });
          return { provider: providers.email.name, messageId, deviceCount: 0 };
        },
      });
      return { notificationId: row.id, status: STATUS[row.status] };
    },

    async sendSms(req, ctx) {
      const v = validate().phone("to", req.to).optionalId("user_id", req.userId);
      checkTemplate(v, req.template);
      checkPriority(v, req.priority);
      v.done();
      const template = req.template!;
      const body = render(TEMPLATES[template.name]!.body, template.data);
      validate().check(body.length <= MAX_SMS_CHARS, "template.data", `the message would exceed ${MAX_SMS_CHARS} characters`).done();
      const row = await send(ctx, {
        channel: "sms", recipient: req.to, userId: req.userId, template, subject: "", body, priority: PRIORITY[req.priority]!,
        sendAt: undefined, requestHash: hashOf(SendSmsRequestSchema, req),
        deliver: async (notificationId, tenantId) => {
          const { messageId } = await providers.sms.send({ tenantId, notificationId, to: req.to, body });
          return { provider: providers.sms.name, messageId, deviceCount: 0 };
        },
      });
      return { notificationId: row.id, status: STATUS[row.status] };
    },

    async sendPush(req, ctx) {
      const v = validate().id("user_id", req.userId).optionalText("title", req.title, 200).optionalText("body", req.body, 2000);
      checkTemplate(v, req.template);
      checkPriority(v, req.priority);
      v.done();
      const tenantId = tenantOf(ctx);
      // Only well-formed tokens are ever stored; checked again so nothing else is handed to the gateway.
      const tokens = store.devicesOf(tenantId, req.userId).map((d) => d.deviceToken).filter(isDeviceToken);
      if (tokens.length === 0) throw failedPrecondition("user has no registered push devices");
      const template = req.template!;
      const known = TEMPLATES[template.name]!;
      const title = req.title !== "" ? req.title : render(known.subject, template.data);
      const body = req.body !== "" ? req.body : render(known.body, template.data);
      const row = await send(ctx, {
        channel: "push", recipient: req.userId, userId: req.userId, template, subject: title, body, priority: PRIORITY[req.priority]!,
        sendAt: undefined, requestHash: hashOf(SendPushRequestSchema, req),
        deliver: async (notificationId) => {
          const { messageId } = await providers.push.send({ tenantId, notificationId, deviceTokens: tokens, title, body });
          return { provider: providers.push.name, messageId, deviceCount: tokens.length };
        },
      });
      return { notificationId: row.id, status: STATUS[row.status], deviceCount: row.deviceCount };
    },
  });
}
