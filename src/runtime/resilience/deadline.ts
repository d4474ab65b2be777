/**
 * Every outgoing call gets a deadline: the caller's timeout, else the
 * contract's, else the target default; never past what the call being served
 * has left (minus a margin, so our answer still reaches our caller in time).
 * The served call's cancellation or deadline cancels it too.
 */
import type { MethodContract } from "../contract/types.ts";
import { currentCallScope } from "../observability/call-scope.ts";
import type { ResilienceLimits } from "./options.ts";

export interface CallPlan {
  /** Absolute deadline, epoch ms. */
  readonly deadline: number;
  /** What connect-es arms its deadline timer with (0 = already expired: DEADLINE_EXCEEDED at once). */
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

export function planCall(method: MethodContract, limits: ResilienceLimits, signal: AbortSignal | undefined, timeoutMs: number | undefined): CallPlan {
  const now = Date.now();
  let deadline = now + (timeoutMs !== undefined && timeoutMs > 0 ? timeoutMs : (method.timeoutMs ?? limits.timeoutMs));
  const scope = currentCallScope();
  if (scope === undefined) return { deadline, timeoutMs: deadline - now, signal };
  if (scope.deadline !== undefined) deadline = Math.min(deadline, scope.deadline - limits.servedCallMarginMs);
  return {
    deadline,
    timeoutMs: Math.max(0, deadline - now),
    // Aborts with the served call's reason (CANCELED or DEADLINE_EXCEEDED).
    signal: signal === undefined ? scope.signal : AbortSignal.any([signal, scope.signal]),
  };
}
