/**
 * What the policy stack reports: one pino line per event, and the same event
 * as data through the `observe` hook (metrics attach there later).
 */
import type { Logger } from "../observability/logger.ts";
import { currentCallScope } from "../observability/call-scope.ts";
import type { BreakerState } from "./breaker-admin.ts";

export type ResilienceEvent =
  | { readonly type: "breaker"; readonly target: string; readonly method: string | undefined; readonly from: BreakerState; readonly to: BreakerState }
  | { readonly type: "retry"; readonly target: string; readonly method: string; readonly attempt: number; readonly delayMs: number; readonly code: string }
  | { readonly type: "budget_exhausted"; readonly target: string; readonly method: string; readonly code: string }
  | { readonly type: "bulkhead_rejected"; readonly target: string; readonly method: string; readonly inFlight: number }
  | { readonly type: "breaker_rejected"; readonly target: string; readonly method: string }
  | { readonly type: "fallback"; readonly target: string; readonly method: string; readonly ageMs: number; readonly code: string };

export type ResilienceObserver = (event: ResilienceEvent) => void;

const MESSAGES: Record<ResilienceEvent["type"], string> = {
  breaker: "circuit breaker changed state",
  retry: "retrying call",
  budget_exhausted: "retry budget exhausted, not retrying",
  bulkhead_rejected: "bulkhead full, call rejected",
  breaker_rejected: "circuit open, call failed fast",
  fallback: "served stale fallback answer",
};

export function createReporter(logger: Logger, observers: readonly ResilienceObserver[]): ResilienceObserver {
  return (event) => {
    // Fast-fail rejections can come by the thousand per second: keep them at debug.
    const level = event.type === "breaker_rejected" ? "debug" : event.type === "retry" ? "info" : "warn";
    // The request id ties the event to the call it happened in (`tt-rpc demo` shows it as a hop).
    logger[level]({ resilience: event, requestId: currentCallScope()?.requestId }, MESSAGES[event.type]);
    for (const observe of observers) {
      try {
        observe(event);
      } catch (err) {
        logger.error({ err }, "resilience observer threw");
      }
    }
  };
}
