/**
 * The server's security chain, always installed first and impossible to turn
 * off: authentication (peer certificate -> per-call JWT -> context token,
 * from headers alone, before any body is decoded) -> decoding -> authorization
 * from the contract -> tenant check; then the verified context is bound for
 * the handler and for the calls it makes. Failures are UNAUTHENTICATED,
 * PERMISSION_DENIED, or RESOURCE_EXHAUSTED for a peer over its replay-cache
 * quota, with a generic message; the reason goes to the log.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createContextKey } from "@connectrpc/connect";
import { AuthError, unauthenticated } from "../auth/errors.ts";
import { authorize } from "../auth/authorize.ts";
import { createCallTokenVerifier } from "../auth/call-token.ts";
import { createContextTokenVerifier, type CallContext } from "../auth/context-token.ts";
import { createContextCache } from "../auth/context-cache.ts";
import { createReplayCache, type ReplayCache } from "../auth/replay-cache.ts";
import {
  AUTHORIZATION_HEADER,
  CONTEXT_TOKEN_HEADER,
  callContextKey,
  type CallerIdentity,
  type VerifiedCallContext,
} from "../auth/call-context.ts";
import type { MaterialSource } from "../identity/material.ts";
import type { Logger } from "../observability/logger.ts";
import { runInCallScope, type CallScope } from "../observability/call-scope.ts";
import { classifyAuthFailure, tagAuthFailure } from "../auth/auth-failure.ts";
import { REQUEST_ID_HEADER, TRACEPARENT_HEADER } from "../observability/headers.ts";
import { decodeRequest } from "../wire/codec.ts";
import { createPeerIdentityResolver } from "./peer-identity.ts";
import { MTLS_ONLY_METHODS } from "./framework-contracts.ts";
import type { PeerInfo, ServerCall, ServerInterceptor } from "../contract/call.ts";

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

/** What authentication established from headers, path and peer alone (no request body needed). */
export interface Authenticated {
  readonly caller: CallerIdentity;
  readonly contextToken: string | undefined;
  readonly context: CallContext | undefined;
}

export interface AuthenticationInput {
  /** The routed method, "/pkg.Service/Method". */
  readonly path: string;
  readonly headers: Headers;
  readonly peer: PeerInfo | undefined;
  /**
   * Every `authorization` value as it arrived, when the transport keeps them
   * apart (Node's HTTP/1.1 parser keeps only the first in `headers`).
   */
  readonly authorization?: readonly string[] | undefined;
}

/**
 * Authentication: peer certificate -> call token (single-use jti) -> context
 * token. Needs no request body, so both adapters run it before a single byte
 * of the body is decoded. Throws the caller-facing ConnectError; every
 * rejection is logged with its reason.
 */
export interface CallAuthenticator {
  authenticate(input: AuthenticationInput): Promise<Authenticated>;
}

/** Set by an adapter that authenticated before reading the body, so the interceptor does not verify twice (a jti is single-use). */
export const authenticatedKey = createContextKey<Authenticated | undefined>(undefined, { description: "tt-rpc authenticated call" });

export function createCallAuthenticator(options: SecurityOptions): CallAuthenticator {
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

  return {
    async authenticate({ path, headers, peer, authorization }) {
      let caller: CallerIdentity | undefined;
      try {
        caller = peers.identify(peer);
        const contextValues = headerValues(headers, CONTEXT_TOKEN_HEADER);
        if (contextValues && contextValues.length !== 1) throw unauthenticated(`expected at most one ${CONTEXT_TOKEN_HEADER} value`);
        const contextToken = contextValues?.[0];
        const tokens = authorizationValues(headers, authorization);
        if (tokens === undefined && MTLS_ONLY_METHODS.has(path)) {
          // A context token is bound to a call token: alone it proves nothing.
          if (contextToken !== undefined) throw unauthenticated(`${CONTEXT_TOKEN_HEADER} sent without a call token`);
          return { caller, contextToken: undefined, context: undefined };
        }
        await callTokens.verify(tokens, { peer: caller.spiffeId, method: path, contextToken });
        return { caller, contextToken, context: await verifyContext(contextToken) };
      } catch (err) {
        throw rejection(err, path, peerLabel(peer, caller), logger, headers.get(REQUEST_ID_HEADER));
      }
    },
  };
}

/** Raw values when the transport kept them apart, else the (comma-joined) header. */
function authorizationValues(headers: Headers, raw: readonly string[] | undefined): string[] | undefined {
  if (raw === undefined || raw.length <= 1) return headerValues(headers, AUTHORIZATION_HEADER);
  return raw.flatMap((v) => v.split(", "));
}

/** "spiffe-id (ip:port)" once the certificate is verified, else "ip:port". */
function peerLabel(peer: PeerInfo | undefined, caller: CallerIdentity | undefined): string | undefined {
  return caller ? `${caller.spiffeId} (${peer?.address ?? "?"})` : peer?.address;
}

/**
 * The server's security interceptor: authenticate (unless the adapter already
 * did, before reading the body), then decode the request, then authorize it
 * against the contract (callers, scopes, tenant key), then bind the verified
 * context for the handler and for the calls it makes.
 */
export function securityInterceptor(authenticator: CallAuthenticator, logger: Logger): ServerInterceptor {
  return (next) => async (call) => {
    const headers = call.context.requestHeader;
    let auth = call.context.values.get(authenticatedKey);
    if (auth === undefined) {
      auth = await authenticator.authenticate({ path: call.contract.path, headers, peer: call.peer });
      // Known from here on, even if authorization fails (the log line names the verified caller).
      call.context.values.set(authenticatedKey, auth);
    }
    // Only now is the body decoded: nothing an unauthenticated caller sends is parsed.
    const request = call.encodedRequest !== undefined ? decodeRequest(call.method.input, call.encodedRequest) : call.request;
    const ctx = auth.context;
    const verified: VerifiedCallContext = {
      caller: auth.caller,
      tenantId: ctx?.tenantId,
      userId: ctx?.userId,
      scopes: ctx?.scopes ?? [],
      txn: ctx?.txn,
    };
    try {
      authorize(call.contract, verified, request);
    } catch (err) {
      throw rejection(err, call.contract.path, peerLabel(call.peer, auth.caller), logger, headers.get(REQUEST_ID_HEADER));
    }
    call.context.values.set(callContextKey, verified);
    const decoded: ServerCall = request === call.request ? call : { ...call, request, encodedRequest: undefined };
    const scope: CallScope = {
      contextToken: auth.contextToken,
      deadline: call.deadline ?? absoluteDeadline(call.context.timeoutMs()),
      requestId: headers.get(REQUEST_ID_HEADER) ?? randomUUID(),
      traceparent: headers.get(TRACEPARENT_HEADER) ?? undefined,
      // Read only when the handler makes a call: the adapters make the signal lazily.
      get signal() {
        return call.context.signal;
      },
      tenantId: verified.tenantId,
      userId: verified.userId,
    };
    const result = await runInCallScope(scope, () => next(decoded));
    // A streaming handler's body runs when the adapter pulls messages, outside
    // this scope: pull them inside it, so calls it makes inherit the context too.
    return result.kind === "stream" ? { kind: "stream", messages: inScope(scope, result.messages) } : result;
  };
}

function absoluteDeadline(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
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

function rejection(err: unknown, method: string, peer: string | undefined, logger: Logger, requestId: string | null): ConnectError {
  if (err instanceof AuthError) {
    // The request id lets a developer find this line from the caller's side (the caller only sees a generic status).
    logger.warn({ method, peer, reason: err.reason, kind: err.kind, requestId: requestId ?? undefined }, "call rejected");
    // The observe event (metrics) gets a bounded name for the reason, never its text.
    const failure = classifyAuthFailure(err.kind, err.reason);
    if (err.kind === "permission_denied") return tagAuthFailure(new ConnectError("permission denied", Code.PermissionDenied), failure);
    // Only this peer is over its quota (replay cache): not an authentication failure.
    if (err.kind === "resource_exhausted") return tagAuthFailure(new ConnectError("resource exhausted", Code.ResourceExhausted), failure);
    return tagAuthFailure(new ConnectError("unauthenticated", Code.Unauthenticated), failure);
  }
  // Anything else failing here is a bug in verification itself: fail closed.
  logger.error({ method, peer, err }, "authentication failed unexpectedly");
  return tagAuthFailure(new ConnectError("unauthenticated", Code.Unauthenticated), { stage: "authentication", reason: "internal" });
}
