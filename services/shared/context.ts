/**
 * Who a handler acts for, from the verified call context only: the tenant and
 * user of the signed context token, the caller of the mTLS certificate. A
 * tenant or user id in the request body is never trusted over these (for
 * tenant-keyed methods the framework has already checked they match).
 */
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { callContext, type VerifiedCallContext } from "../../src/auth/call-context.ts";

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
