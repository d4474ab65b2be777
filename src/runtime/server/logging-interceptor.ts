/**
 * One structured log line per call: method, caller, tenant, code, duration,
 * request id, attempt. Outermost in the chain, so rejected calls are logged
 * too. Never logs headers, tokens or messages.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { callContextKey } from "../auth/call-context.ts";
import { flatLineLogger, type Logger } from "../observability/logger.ts";
import { ATTEMPT_HEADER, REQUEST_ID_HEADER } from "../observability/headers.ts";
import type { CallResult, ServerCall, ServerInterceptor } from "../contract/call.ts";
import { asHooks, type CallObserver, type CallObserverHooks } from "../telemetry/call-observer.ts";
import { authenticatedKey } from "./security-interceptor.ts";
import { authFailureOf } from "../auth/auth-failure.ts";
import { callerCode } from "../wire/downstream.ts";


/** The canonical gRPC name ("PERMISSION_DENIED"), as grpcurl and every gRPC tool prints it. */
export function codeName(code: Code | 0): string {
  return code === 0 ? "OK" : Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** The caller's attempt number, for the log only: anything but a small positive integer reads as 1. */
function attemptNumber(raw: string | null): number {
  if (raw === null) return 1;
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 && n <= 100 ? n : 1;
}

/** Writes the call's one "rpc" line and tells `observe`; `start` is performance.now() when the call began. */
function finishCall(logger: Logger, observe: CallObserverHooks | undefined, call: ServerCall, start: number, code: Code | 0, err?: unknown): void {
  const durationMs = performance.now() - start;
  observe?.finished({ call, code, durationMs, authFailure: err === undefined ? undefined : authFailureOf(err) });
  const ctx = call.context.values.get(callContextKey);
  const line = {
    method: call.contract.path,
    protocol: call.protocol,
    // The verified identity once authentication passed (even if authorization then failed), else ip:port.
    peer: (ctx ?? call.context.values.get(authenticatedKey))?.caller.workload ?? call.peer?.address,
    // Also when authorization refused the call: the verified context token's tenant, never the request's.
    tenant: ctx?.tenantId ?? call.context.values.get(authenticatedKey)?.context?.tenantId,
    code: codeName(code),
    durationMs: Math.round(durationMs * 1000) / 1000,
    requestId: call.context.requestHeader.get(REQUEST_ID_HEADER) ?? undefined,
    attempt: attemptNumber(call.context.requestHeader.get(ATTEMPT_HEADER)),
    ...(err && code !== 0 ? { error: (err as ConnectError).rawMessage ?? String(err) } : {}),
  };
  if (code === 0) logger.info(line, "rpc");
  else logger.warn(line, "rpc");
}

export type RejectedCallLogger = (call: ServerCall, start: number, err: unknown) => void;

/**
 * The same line and observe event for a call refused before the chain runs
 * (the Connect port authenticates ahead of connect-node reading the body), so
 * both ports report every rejected call alike.
 */
export function rejectedCallLogger(logger: Logger, observer?: CallObserver): RejectedCallLogger {
  const observe = observer && asHooks(observer);
  const lines = flatLineLogger(logger);
  return (call, start, err) => {
    observe?.started?.(call);
    finishCall(lines, observe, call, start, callerCode(err), err);
  };
}

export function loggingInterceptor(logger: Logger, observer?: CallObserver): ServerInterceptor {
  const observe = observer && asHooks(observer);
  // The rpc line is flat (fixed keys, primitive values): its logger skips the wildcard redaction paths.
  const lines = flatLineLogger(logger);
  return (next) => async (call) => {
    const start = performance.now();
    observe?.started?.(call);
    const finish = (code: Code | 0, err?: unknown) => finishCall(lines, observe, call, start, code, err);
    let result: CallResult;
    try {
      result = await next(call);
    } catch (err) {
      finish(callerCode(err), err);
      throw err;
    }
    if (result.kind === "unary") {
      finish(0);
      return result;
    }
    // Streams are logged when they end.
    const messages = result.messages;
    return {
      kind: "stream",
      messages: (async function* () {
        let finished = false;
        try {
          yield* messages;
          finished = true;
          finish(0);
        } catch (err) {
          finished = true;
          finish(callerCode(err), err);
          throw err;
        } finally {
          // The adapter stopped reading (the caller went away): still one line, one observe event.
          if (!finished) finish(Code.Canceled);
        }
      })(),
    };
  };
}
