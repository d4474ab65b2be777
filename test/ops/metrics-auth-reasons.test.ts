/**
 * The bounded reason a refused call is counted under: every reason text the
 * security chain writes (as the throw sites word it) maps to its name, a
 * value the caller chose inside a reason can never change the name, and an
 * unknown text is "other", so a label can never take an unbounded value.
 */
import { describe, expect, it } from "vitest";
import { AUTH_FAILURE_REASONS, classifyAuthFailure } from "../../src/runtime/auth/auth-failure.ts";

const JTI = "AAAAAAAAAAAAAAAAAAAAAA";

describe("auth failure reasons", () => {
  it.each([
    ["no verified client certificate on the connection", "no_client_certificate"],
    ["client certificate rejected: not an X509-SVID", "peer_identity"],
    ["client spiffe://tickettoken.internal/ns/prod/sa/x is from env prod, this server runs in dev", "peer_identity"],
    ["no authorization value", "missing_token"],
    ["expected exactly one authorization value, got 2", "malformed_header"],
    ["authorization value is not a Bearer token", "malformed_header"],
    ["expected at most one tt-context value", "malformed_header"],
    ["call token is 5000 bytes, over the 4096 byte limit", "malformed_token"],
    ["call token protected header is not base64url JSON object", "malformed_token"],
    ['call token alg "HS256" not allowed (ES256 only)', "malformed_token"],
    ['call token kid "abc" is not published for spiffe://tickettoken.internal/ns/dev/sa/order-service', "unknown_key"],
    ["call token signature verification failed", "bad_signature"],
    ['call token iss "spiffe://x" is not the mTLS peer spiffe://y', "wrong_peer"],
    ['call token sub "spiffe://x" is not the mTLS peer spiffe://y', "wrong_peer"],
    ["call token aud is an array; a single string is required", "wrong_audience"],
    ['call token aud mismatch: got "spiffe://other"', "wrong_audience"],
    ['call token mth mismatch: got "/a.B/C" for /a.B/D', "wrong_method"],
    ["call token jti missing", "malformed_token"],
    ["call token token expired at 100 (now 200)", "token_lifetime"],
    ["call token lifetime 120 s exceeds 60 s", "token_lifetime"],
    ["call token iat 100 is older than the 15 s freshness window (now 200)", "token_lifetime"],
    [`call token jti ${JTI} replayed`, "replayed"],
    ["call token ctx does not match the forwarded context token", "context_binding"],
    ["call token carries ctx but no context token was forwarded", "context_binding"],
    ["context token signature verification failed", "context_token"],
    ["context token tid (tenant id) missing or not a string", "context_token"],
    ['replay cache answered "maybe"; failing closed', "internal"],
    ["something nobody wrote yet", "other"],
  ] as const)("unauthenticated: %s -> %s", (text, reason) => {
    expect(classifyAuthFailure("unauthenticated", text)).toEqual({ stage: "authentication", reason });
  });

  it.each([
    ["order-service is not an allowed caller of /tickettoken.ticket.v1.TicketService/GetTicketStatus", "caller_not_allowed"],
    ["/tickettoken.event.v1.EventService/CreateEvent requires scope events:write but the call carries no context token", "missing_scope"],
    ["context token lacks scope events:write required by /tickettoken.event.v1.EventService/CreateEvent", "missing_scope"],
    ["/tickettoken.ticket.v1.TicketService/GetTicketStatus is tenant-scoped but the call carries no context token", "missing_context"],
    ['request tenantId "other" does not match the context tenant', "tenant_mismatch"],
    ["anything else", "other"],
  ] as const)("permission denied: %s -> %s", (text, reason) => {
    expect(classifyAuthFailure("permission_denied", text)).toEqual({ stage: "authorization", reason });
  });

  it("a peer over its replay-cache quota is its own reason", () => {
    expect(classifyAuthFailure("resource_exhausted", "replay cache quota of peer x used up; refusing this peer only")).toEqual({ stage: "authentication", reason: "replay_quota" });
  });

  it("a value the caller chose inside the text never decides the reason", () => {
    expect(classifyAuthFailure("unauthenticated", `call token aud mismatch: got "call token jti ${JTI} replayed"`).reason).toBe("wrong_audience");
    expect(classifyAuthFailure("unauthenticated", 'call token mth mismatch: got "no authorization value" for /a.B/C').reason).toBe("wrong_method");
    expect(classifyAuthFailure("permission_denied", 'request tenantId "x is not an allowed caller of y" does not match the context tenant').reason).toBe("tenant_mismatch");
  });

  it("every name is from the fixed list", () => {
    for (const kind of ["unauthenticated", "permission_denied", "resource_exhausted"] as const) {
      expect(AUTH_FAILURE_REASONS).toContain(classifyAuthFailure(kind, `${Math.random()}`).reason);
    }
  });
});
