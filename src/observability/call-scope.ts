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
  /** Verified tenant of the inbound call (from its context token), if any. */
  readonly tenantId?: string;
  /** W3C traceparent of the inbound call. */
  readonly traceparent: string | undefined;
  /** Aborted when the inbound call ends or is cancelled. */
  readonly signal: AbortSignal;
}

const storage = new AsyncLocalStorage<CallScope>();

export function runInCallScope<T>(scope: CallScope, fn: () => T): T {
  return storage.run(scope, fn);
}

/** The inbound call this code runs on behalf of, if any. */
export function currentCallScope(): CallScope | undefined {
  return storage.getStore();
}
