/**
 * The server's security chain, always installed first and impossible to turn
 * off: peer certificate -> per-call JWT -> context token -> authorization from
 * the contract -> tenant check; then the verified context is bound for the
 * handler and for the calls it makes. Failures are UNAUTHENTICATED or
 * PERMISSION_DENIED with a generic message; the reason goes to the log.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { AuthError, unauthenticated } from "../auth/errors.ts";
import { authorize } from "../auth/authorize.ts";
import { createCallTokenVerifier } from "../auth/call-token.ts";
import { createContextTokenVerifier, type CallContext } from "../auth/context-token.ts";
import { createContextCache } from "../auth/context-cache.ts";
import { createReplayCache, type ReplayCache } from "../auth/replay-cache.ts";
import { AUTHORIZATION_HEADER, CONTEXT_TOKEN_HEADER, callContextKey, type VerifiedCallContext } from "../auth/call-context.ts";
import type { MaterialSource } from "../identity/material.ts";
import type { Logger } from "../observability/logger.ts";
import { runInCallScope, type CallScope } from "../observability/call-scope.ts";
import { REQUEST_ID_HEADER, TRACEPARENT_HEADER } from "../observability/headers.ts";
import { createPeerIdentityResolver } from "./peer-identity.ts";
import type { ServerInterceptor } from "./call.ts";

export interface SecurityOptions {
  readonly material: MaterialSource;
  readonly logger: Logger;
  readonly replayCache?: ReplayCache;
  readonly now?: () => number;
}

/** Splits a header that may carry several values ("a, b"); JWTs never contain ", ". */
function headerValues(headers: Headers, name: string): string[] | undefined {
  const raw = headers.get(name);
  return raw === null ? undefined : raw.split(", ");
}

export function securityInterceptor(options: SecurityOptions): ServerInterceptor {
  const { material, logger } = options;
  const now = options.now ?? Date.now;
  const self = material.current().workload;
  const peers = createPeerIdentityResolver({ trustDomain: material.current().bundle.trustDomain, env: self.env });
  const callTokens = createCallTokenVerifier({
    self: self.spiffeId,
    keysFor: (peer) => material.current().bundle.jwtKeys.get(peer),
    replayCache: options.replayCache ?? createReplayCache({ now }),
    now,
  });
  const contextTokens = createContextTokenVerifier({ keys: () => material.current().bundle.contextKeys, now });
  const contextCache = createContextCache();

  async function verifyContext(token: string | undefined): Promise<CallContext | undefined> {
    if (token === undefined) return undefined;
    // Served from cache only while its key is still in the current bundle (revocation on reload).
    const cached = contextCache.get(token, Math.floor(now() / 1000), material.current().bundle.contextKeys);
    if (cached) return cached;
    const { context, kid } = await contextTokens.verifyWithKid(token);
    contextCache.set(token, context, kid);
    return context;
  }

  return (next) => async (call) => {
    const headers = call.context.requestHeader;
    let verified: VerifiedCallContext;
    let contextToken: string | undefined;
    try {
      const caller = peers.identify(call.peer);
      const contextValues = headerValues(headers, CONTEXT_TOKEN_HEADER);
      if (contextValues && contextValues.length !== 1) throw unauthenticated(`expected at most one ${CONTEXT_TOKEN_HEADER} value`);
      contextToken = contextValues?.[0];
      await callTokens.verify(headerValues(headers, AUTHORIZATION_HEADER), {
        peer: caller.spiffeId,
        method: call.contract.path,
        contextToken,
      });
      const ctx = await verifyContext(contextToken);
      verified = {
        caller,
        tenantId: ctx?.tenantId,
        userId: ctx?.userId,
        scopes: ctx?.scopes ?? [],
        txn: ctx?.txn,
      };
      authorize(call.contract, verified, call.request);
    } catch (err) {
      throw rejection(err, call.contract.path, call.peer?.address, logger);
    }
    call.context.values.set(callContextKey, verified);
    const timeoutMs = call.context.timeoutMs();
    const scope: CallScope = {
      contextToken,
      deadline: timeoutMs === undefined ? undefined : now() + timeoutMs,
      requestId: headers.get(REQUEST_ID_HEADER) ?? randomUUID(),
      traceparent: headers.get(TRACEPARENT_HEADER) ?? undefined,
      signal: call.context.signal,
    };
    const result = await runInCallScope(scope, () => next(call));
    // A streaming handler's body runs when the adapter pulls messages, outside
    // this scope: pull them inside it, so calls it makes inherit the context too.
    return result.kind === "stream" ? { kind: "stream", messages: inScope(scope, result.messages) } : result;
  };
}

function inScope<T>(scope: CallScope, messages: AsyncIterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const it = messages[Symbol.asyncIterator]();
      return {
        next: () => runInCallScope(scope, () => it.next()),
        return: (value?: unknown) => runInCallScope(scope, () => it.return?.(value) ?? Promise.resolve({ done: true, value: undefined })),
      } as AsyncIterator<T>;
    },
  };
}

function rejection(err: unknown, method: string, peer: string | undefined, logger: Logger): ConnectError {
  if (err instanceof AuthError) {
    logger.warn({ method, peer, reason: err.reason, kind: err.kind }, "call rejected");
    if (err.kind === "permission_denied") return new ConnectError("permission denied", Code.PermissionDenied);
    // Only this peer is over its quota (replay cache): not an authentication failure.
    if (err.kind === "resource_exhausted") return new ConnectError("resource exhausted", Code.ResourceExhausted);
    return new ConnectError("unauthenticated", Code.Unauthenticated);
  }
  // Anything else failing here is a bug in verification itself: fail closed.
  logger.error({ method, peer, err }, "authentication failed unexpectedly");
  return new ConnectError("unauthenticated", Code.Unauthenticated);
}
