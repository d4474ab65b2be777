/**
 * Carries the served call's request id and W3C trace context into the calls
 * it makes (a new span id per outgoing call, same trace id).
 */
import { randomUUID } from "node:crypto";
import { randomHex } from "../auth/random.ts";
import type { Interceptor } from "@connectrpc/connect";
import { currentCallScope } from "../observability/call-scope.ts";
import { REQUEST_ID_HEADER, TRACEPARENT_HEADER } from "../observability/headers.ts";

const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-([0-9a-f]{2})$/;

export function contextPropagationInterceptor(): Interceptor {
  return (next) => async (req) => {
    const scope = currentCallScope();
    if (!req.header.has(REQUEST_ID_HEADER)) req.header.set(REQUEST_ID_HEADER, scope?.requestId ?? randomUUID());
    if (!req.header.has(TRACEPARENT_HEADER)) {
      const parent = scope?.traceparent ? TRACEPARENT.exec(scope.traceparent) : null;
      // Ids from the pooled random buffer: no OpenSSL draw per call (two per call before).
      const traceId = parent?.[1] ?? randomHex(16);
      req.header.set(TRACEPARENT_HEADER, `00-${traceId}-${randomHex(8)}-${parent?.[2] ?? "01"}`);
    }
    return next(req);
  };
}
