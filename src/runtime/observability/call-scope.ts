/**
 * The call being served, carried across awaits with AsyncLocalStorage, so a
 * handler's outgoing calls inherit its deadline, request id, trace context and
 * context token without the handler passing anything along.
 */
import { AsyncLocalStorage } from "node:async_hooks";

export interface CallScope {
  /** The verified context token of the inbound call, forwarded unchanged. */
  readonly contextToken: string | undefined;
  /** Absolute deadline (epoch ms) of the inbound call, if it has one. */
  readonly deadline: number | undefined;
  readonly requestId: string;
  /** W3C traceparent of the inbound call. */
  readonly traceparent: string | undefined;
  /**
   * Aborted exactly when the inbound call is cancelled by its caller (reason:
   * ConnectError Code.Canceled) or its deadline passes (Code.DeadlineExceeded);
   * never when it completes normally.
   */
  readonly signal: AbortSignal;
  /** Tenant of the inbound call's verified context token (for tenant-scoped client policies). */
  readonly tenantId?: string | undefined;
  /** User of the inbound call's verified context token. */
  readonly userId?: string | undefined;
}

const storage = new AsyncLocalStorage<CallScope>();

export function runInCallScope<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The inbound call this code runs on behalf of, if any. */
export function currentCallScope(): CallScope | undefined {
  return storage.getStore();
}
