/**
 * Why the security chain refused a call, as a small fixed set of names a
 * metric label may carry. The precise reason text (logged) can hold values
 * the caller sent, so it never becomes a label; it is classified by its
 * fixed, code-written prefix, and anything unrecognised is "other".
 */
import type { AuthErrorKind } from "./errors.ts";

export type AuthFailureStage = "authentication" | "authorization";

export const AUTH_FAILURE_REASONS = [
  // authentication
  "no_client_certificate",
  "peer_identity",
  "missing_token",
  "malformed_header",
  "malformed_token",
  "unknown_key",
  "bad_signature",
  "wrong_peer",
  "wrong_audience",
  "wrong_method",
  "token_lifetime",
  "replayed",
  "replay_quota",
  "context_token",
  "context_binding",
  "internal",
  // authorization
  "caller_not_allowed",
  "missing_scope",
  "missing_context",
  "tenant_mismatch",
  "other",
] as const;

export type AuthFailureReason = (typeof AUTH_FAILURE_REASONS)[number];

export interface AuthFailure {
  readonly stage: AuthFailureStage;
  readonly reason: AuthFailureReason;
}

/** Ordered: the first match wins. Every pattern is anchored on text our code wrote, never on a quoted value. */
const AUTHENTICATION_RULES: readonly (readonly [RegExp, AuthFailureReason])[] = [
  [/^no verified client certificate/, "no_client_certificate"],
  [/^client (certificate rejected|spiffe:)/, "peer_identity"],
  [/^no authorization value$/, "missing_token"],
  [/^(expected exactly one authorization value|authorization value is not a Bearer token|expected at most one \S+ value$)/, "malformed_header"],
  [/^call token jti [A-Za-z0-9_-]+ replayed$/, "replayed"],
  [/^replay cache answered/, "internal"],
  [/^call token (kid .* is not published for|published key )/, "unknown_key"],
  [/^call token signature verification failed$/, "bad_signature"],
  [/^call token (iss|sub) /, "wrong_peer"],
  [/^call token aud /, "wrong_audience"],
  [/^call token mth /, "wrong_method"],
  [/^call token (has no ctx|ctx does not match|carries ctx)/, "context_binding"],
  [/^call token (iat |exp |lifetime |token expired |nbf )/, "token_lifetime"],
  [/^context token /, "context_token"],
  [/^call token /, "malformed_token"],
];

const AUTHORIZATION_RULES: readonly (readonly [RegExp, AuthFailureReason])[] = [
  [/^\S+ is not an allowed caller of /, "caller_not_allowed"],
  [/^(\S+ requires scope \S+ but the call carries no context token$|context token lacks scope )/, "missing_scope"],
  [/^\S+ is tenant-scoped but the call carries no context token$/, "missing_context"],
  [/^request \S+ .* does not match the context tenant$/, "tenant_mismatch"],
];

/** The bounded name for an AuthError's kind and reason text. */
export function classifyAuthFailure(kind: AuthErrorKind, reason: string): AuthFailure {
  if (kind === "resource_exhausted") return { stage: "authentication", reason: "replay_quota" };
  const stage: AuthFailureStage = kind === "permission_denied" ? "authorization" : "authentication";
  for (const [pattern, name] of stage === "authorization" ? AUTHORIZATION_RULES : AUTHENTICATION_RULES) {
    if (pattern.test(reason)) return { stage, reason: name };
  }
  return { stage, reason: "other" };
}

const failures = new WeakMap<object, AuthFailure>();

/** Marks the caller-facing error with why it was raised, for the call's observe event. */
export function tagAuthFailure<E extends object>(err: E, failure: AuthFailure): E {
  failures.set(err, failure);
  return err;
}

/** The failure a refused call's error was tagged with, if the security chain refused it. */
export function authFailureOf(err: unknown): AuthFailure | undefined {
  return typeof err === "object" && err !== null ? failures.get(err) : undefined;
}
