/**
 * The dedupe step: for methods whose contract declares an idempotency key,
 * a repeated `idempotency-key` returns the stored response instead of running
 * the handler again. Runs after the security chain, so the key is scoped to
 * the verified caller (and its context tenant) and the method; a key is never
 * shared across callers.
 *
 * - No key, or a malformed one (1-128 of A-Z a-z 0-9 . _ : -, one value):
 *   INVALID_ARGUMENT, whatever the stored state.
 * - Same key, different request: FAILED_PRECONDITION. The request is valid on
 *   its own; it conflicts with the state the key already names, and retrying
 *   it cannot succeed (so clients never retry it).
 * - A duplicate of a call still running waits for it and answers its result.
 * - Only successes are stored: an error releases the key, so a retry runs the
 *   handler again (transient failures must stay retryable; handlers fail
 *   without side effects or make their own writes idempotent).
 *
 * "Same request" is SHA-256 of the protobuf binary encoding. protobuf-es
 * writes fields in field-number order, so equal messages encode equally;
 * map entries follow insertion order, so a map built in another order reads
 * as a different request: a false FAILED_PRECONDITION, never a false replay.
 */
import { createHash } from "node:crypto";
import { fromBinary, toBinary, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { callContextKey } from "../auth/call-context.ts";
import { IDEMPOTENCY_KEY_HEADER } from "../observability/headers.ts";
import type { Logger } from "../observability/logger.ts";
import type { DedupeBegin, DedupeStore } from "../resilience/dedupe-store.ts";
import type { CallResult, ServerCall, ServerInterceptor, ServerNext } from "../contract/call.ts";
import { throttledWarn, type ThrottledWarn } from "../observability/log-throttle.ts";

const KEY_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** A waiter re-checks after the call it waited on settles; more rounds than this means churn, not progress. */
const MAX_WAIT_ROUNDS = 4;

export function dedupeInterceptor(store: DedupeStore, logger?: Logger): ServerInterceptor {
  // A shared store that is down fails every keyed call: one line per burst, not one per call.
  const storeDown = logger
    ? throttledWarn(logger, "idempotency store unavailable: keyed calls answer UNAVAILABLE", { perWindow: 1, windowMs: 10_000 })
    : undefined;
  return (next) => (call) =>
    call.contract.idempotencyKey && call.method.methodKind === "unary" ? dedupe(store, logger, storeDown, call, next) : next(call);
}

async function dedupe(
  store: DedupeStore,
  logger: Logger | undefined,
  storeDown: ThrottledWarn | undefined,
  call: ServerCall,
  next: ServerNext,
): Promise<CallResult> {
  const key = call.context.requestHeader.get(IDEMPOTENCY_KEY_HEADER);
  if (key === null) throw new ConnectError(`${IDEMPOTENCY_KEY_HEADER} header required`, Code.InvalidArgument);
  // Several header values arrive joined by ", " and fail the pattern too.
  if (!KEY_PATTERN.test(key)) throw new ConnectError(`malformed ${IDEMPOTENCY_KEY_HEADER}`, Code.InvalidArgument);
  const verified = call.context.values.get(callContextKey);
  if (!verified) throw new Error("dedupe ran before authentication: it must follow the security interceptor");
  const scope = `${verified.caller.spiffeId}|${verified.tenantId ?? ""}|${call.contract.path}|${key}`;
  const fingerprint = createHash("sha256")
    .update(toBinary(call.method.input, call.request as Message))
    .digest("base64");

  for (let round = 0; round < MAX_WAIT_ROUNDS; round++) {
    const found = await beginOrUnavailable(store, storeDown, call, scope, fingerprint);
    switch (found.state) {
      case "claimed":
        return runOnce(store, logger, call, next, scope, found.token);
      case "completed":
        if (found.fingerprint !== fingerprint) throw conflict(logger, call, verified.caller.workload);
        return { kind: "unary", message: fromBinary(call.method.output, found.response) };
      case "in_flight":
        if (found.fingerprint !== fingerprint) throw conflict(logger, call, verified.caller.workload);
        await untilSettledOrAborted(found.settled, call.context.signal);
        continue;
      case "full":
        throw new ConnectError("too many keyed calls in flight", Code.ResourceExhausted);
    }
  }
  // Retryable: the caller's next attempt finds the stored result.
  throw new ConnectError("a call with this idempotency key is still in progress", Code.Aborted);
}

/**
 * Fail closed: without the store the call can be neither deduplicated nor
 * safely run, so it is refused with UNAVAILABLE (retryable: the key makes the
 * retry safe), never INTERNAL and never run without dedupe.
 */
async function beginOrUnavailable(
  store: DedupeStore,
  storeDown: ThrottledWarn | undefined,
  call: ServerCall,
  scope: string,
  fingerprint: string,
): Promise<DedupeBegin> {
  try {
    return await store.begin(scope, fingerprint);
  } catch (err) {
    storeDown?.({ method: call.contract.path, err: err instanceof Error ? `${err.name}: ${err.message}` : String(err) });
    throw new ConnectError("service temporarily unavailable", Code.Unavailable);
  }
}

function conflict(logger: Logger | undefined, call: ServerCall, peer: string): ConnectError {
  // The key itself stays out of the log: it may be built from business ids.
  logger?.warn({ method: call.contract.path, peer }, "idempotency key reused with a different request");
  return new ConnectError("idempotency key was used with a different request", Code.FailedPrecondition);
}

async function runOnce(
  store: DedupeStore,
  logger: Logger | undefined,
  call: ServerCall,
  next: ServerNext,
  scope: string,
  token: string,
): Promise<CallResult> {
  let result: CallResult;
  try {
    result = await next(call);
  } catch (err) {
    await releaseQuietly(store, logger, scope, token);
    throw err;
  }
  if (result.kind !== "unary") {
    await releaseQuietly(store, logger, scope, token);
    return result;
  }
  try {
    await store.complete(scope, token, toBinary(call.method.output, result.message));
  } catch (err) {
    // The handler ran and its answer stands; only a later repeat loses its replay.
    logger?.error({ err, method: call.contract.path }, "could not store the response of a keyed call");
  }
  return result;
}

/** A store failure must not replace the handler's own error. */
async function releaseQuietly(store: DedupeStore, logger: Logger | undefined, scope: string, token: string): Promise<void> {
  try {
    await store.release(scope, token);
  } catch (err) {
    logger?.error({ err }, "could not release an idempotency key");
  }
}

function untilSettledOrAborted(settled: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason, Code.Canceled));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => reject(ConnectError.from(signal.reason, Code.Canceled));
    signal.addEventListener("abort", onAbort, { once: true });
    settled.then(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    });
  });
}
