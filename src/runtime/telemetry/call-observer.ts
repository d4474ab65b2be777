/**
 * Who hears about every call a server handles: the finished-call record the
 * logging interceptor produces, and the hooks metrics (and callers of
 * createServer) attach to it.
 */
import type { Code } from "@connectrpc/connect";
import type { ServerCall } from "../contract/call.ts";
import type { AuthFailure } from "../auth/auth-failure.ts";

export interface CallFinished {
  readonly call: ServerCall;
  readonly code: Code | 0;
  readonly durationMs: number;
  /** Set when the security chain refused the call: which stage and a bounded reason (metrics label). */
  readonly authFailure?: AuthFailure | undefined;
}

/** A finished-call callback, or hooks that also hear when a call starts (in-flight gauges). */
export type CallObserver = ((info: CallFinished) => void) | CallObserverHooks;

export interface CallObserverHooks {
  /** The call entered the chain (before authentication); `finished` follows exactly once. */
  started?(call: ServerCall): void;
  finished(info: CallFinished): void;
}

/** Several observers as one (server.ts adds metrics to the caller's own). */
export function combineCallObservers(...observers: (CallObserver | undefined)[]): CallObserverHooks | undefined {
  const hooks = observers.filter((o) => o !== undefined).map(asHooks);
  if (hooks.length <= 1) return hooks[0];
  const starters = hooks.filter((h) => h.started !== undefined);
  return {
    started: (call) => starters.forEach((h) => h.started!(call)),
    finished: (info) => hooks.forEach((h) => h.finished(info)),
  };
}

export function asHooks(observe: CallObserver): CallObserverHooks {
  return typeof observe === "function" ? { finished: observe } : observe;
}
