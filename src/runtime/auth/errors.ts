/**
 * Authentication/authorization failures raised by the token layer.
 *
 * `reason` is precise and meant for logs only; `message` is deliberately
 * generic because the server decides what callers see (spec section 4:
 * "messages stay generic, details go to the log"). Never put a token in a reason.
 */
export type AuthErrorKind = "unauthenticated" | "permission_denied" | "resource_exhausted";

const GENERIC_MESSAGE: Record<AuthErrorKind, string> = {
  unauthenticated: "unauthenticated",
  permission_denied: "permission denied",
  resource_exhausted: "resource exhausted",
};

export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly kind: AuthErrorKind;
  readonly reason: string;

  constructor(kind: AuthErrorKind, reason: string) {
    super(GENERIC_MESSAGE[kind]);
    this.kind = kind;
    this.reason = reason;
  }
}

export function unauthenticated(reason: string): AuthError {
  return new AuthError("unauthenticated", reason);
}

export function permissionDenied(reason: string): AuthError {
  return new AuthError("permission_denied", reason);
}

/** The caller itself is over a per-peer quota (e.g. the replay cache's): refused alone, never UNAUTHENTICATED. */
export function resourceExhausted(reason: string): AuthError {
  return new AuthError("resource_exhausted", reason);
}

/**
 * Renders an attacker-controlled value for a reason: quoted (so control
 * characters cannot forge log lines) and truncated (so a 4 KiB claim cannot
 * bloat every log entry).
 */
export function quote(value: unknown, max = 96): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}...(${text.length} chars)` : text;
}
