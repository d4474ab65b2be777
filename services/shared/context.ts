/**
 * Who a handler acts for, from the verified call context only: the tenant and
 * user of the signed context token, the caller of the mTLS certificate. A
 * tenant or user id in the request body is never trusted over these (for
 * tenant-keyed methods the framework has already checked they match).
 */
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { callContext, type VerifiedCallContext } from "@tickettoken/rpc";
import { IDEMPOTENCY_KEY_HEADER } from "@tickettoken/rpc";

/** The verified tenant; PERMISSION_DENIED when the call carries no context token. */
export function tenantOf(ctx: HandlerContext): string {
  const tenantId = callContext(ctx).tenantId;
  if (tenantId === undefined) throw new ConnectError("this method acts for a tenant: send a context token", Code.PermissionDenied);
  return tenantId;
}

/** The verified user, if the context token names one. */
export function userOf(ctx: HandlerContext): string | undefined {
  return callContext(ctx).userId;
}

export function callerOf(ctx: HandlerContext): VerifiedCallContext["caller"] {
  return callContext(ctx).caller;
}

/**
 * The call's idempotency key (every attempt of one logical call carries the
 * same one). Mutating handlers store it with the row they write, under a
 * unique index, so a retry after a crash finds the first attempt's row
 * instead of writing a second one: the framework's dedupe store answers
 * repeats while the process lives, the row makes it hold across restarts.
 */
export function idempotencyKeyOf(ctx: HandlerContext): string | undefined {
  return ctx.requestHeader.get(IDEMPOTENCY_KEY_HEADER) ?? undefined;
}
