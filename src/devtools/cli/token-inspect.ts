/**
 * `tt-rpc token inspect <token>`: what a server would say about a call token
 * (or a context token), and why. The caller of a refused call only sees a
 * generic UNAUTHENTICATED; this runs the server's own verifier against the
 * trust bundle and prints the check that fails. It cannot know whether the
 * token was already used (the replay cache lives in the server): a call token
 * is single-use.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { AuthError } from "@tickettoken/rpc/internal/auth/errors";
import { CALL_TOKEN_FRESHNESS_SECONDS, CALL_TOKEN_TYPE, createCallTokenVerifier } from "@tickettoken/rpc/internal/auth/call-token";
import { CONTEXT_TOKEN_TYPE, createContextTokenVerifier } from "@tickettoken/rpc/internal/auth/context-token";
import { createReplayCache } from "@tickettoken/rpc/internal/auth/replay-cache";
import { CLOCK_SKEW_SECONDS } from "@tickettoken/rpc/internal/auth/keys";
import { DEFAULT_CERTS_DIR, loadTrustBundle, pkiPaths, PkiError } from "@tickettoken/rpc/internal/identity/pki-files";
import { stdio, usageError, type CliIo } from "@tickettoken/services/host/cli-io";

const USAGE = `usage: tt-rpc token inspect <token> [--certs <dir>] [--peer <spiffe-id>] [--aud <spiffe-id>] [--method </pkg.Service/Method>] [--context <context-token>]
Decodes a call token (or a context token), verifies it against the trust bundle and says what a server
would reject, and why. By default the peer is the token's iss (a server takes it from the mTLS certificate),
the server its aud and the method its mth: pass them to check the token against the call you made.
--context: the tt-context value sent with the call (a call token bound to one must travel with it).
Exit code 0: a server would accept it (unless already used); 1: it would be rejected.`;

function when(epochSeconds: unknown): string {
  return typeof epochSeconds === "number" ? `${new Date(epochSeconds * 1000).toISOString()} (${Math.round(epochSeconds - Date.now() / 1000)} s from now)` : "missing";
}

export async function runTokenInspect(args: string[], io: CliIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        certs: { type: "string" },
        peer: { type: "string" },
        aud: { type: "string" },
        method: { type: "string" },
        context: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return usageError(io, (err as Error).message, USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return usageError(io, "pass exactly one token", USAGE);
  const token = positionals[0]!.replace(/^Bearer\s+/i, "").trim();

  let header: ReturnType<typeof decodeProtectedHeader>;
  let claims: ReturnType<typeof decodeJwt>;
  try {
    header = decodeProtectedHeader(token);
    claims = decodeJwt(token);
  } catch (err) {
    io.out(`not a JWT: ${(err as Error).message}`);
    io.out("verdict: REJECT (a server answers UNAUTHENTICATED)");
    return 1;
  }
  io.out(`header: ${JSON.stringify(header)}`);
  io.out(`claims: ${JSON.stringify(claims)}`);
  io.out(`issued:  ${when(claims.iat)}`);
  io.out(`expires: ${when(claims.exp)}`);

  let bundle;
  try {
    bundle = await loadTrustBundle(pkiPaths(resolve(values.certs ?? process.env.TT_RPC_CERTS_DIR ?? DEFAULT_CERTS_DIR)).bundleJson);
  } catch (err) {
    if (err instanceof PkiError) {
      io.err(`token inspect: ${err.message}`);
      return 2;
    }
    throw err;
  }

  try {
    if (header.typ === CONTEXT_TOKEN_TYPE) {
      const ctx = await createContextTokenVerifier({ keys: bundle.contextKeys }).verify(token);
      io.out(`context token for tenant ${ctx.tenantId}, user ${ctx.userId}, scopes [${ctx.scopes.join(" ")}], issued by ${ctx.issuer}`);
      io.out("verdict: ACCEPT (send it as tt-context, and bind each call token to it with --context)");
      return 0;
    }
    if (header.typ !== CALL_TOKEN_TYPE) io.out(`note: typ ${JSON.stringify(header.typ)} is neither a call token (${CALL_TOKEN_TYPE}) nor a context token (${CONTEXT_TOKEN_TYPE})`);
    const peer = values.peer ?? String(claims.iss ?? "");
    const aud = values.aud ?? (typeof claims.aud === "string" ? claims.aud : "");
    const method = values.method ?? String(claims.mth ?? "");
    io.out(`checking as server ${aud || "(no aud)"} receiving ${method || "(no method)"} from mTLS peer ${peer || "(no iss)"}`);
    const verifier = createCallTokenVerifier({ self: aud, keysFor: (p) => bundle.jwtKeys.get(p), replayCache: createReplayCache() });
    await verifier.verify([`Bearer ${token}`], { peer, method, contextToken: values.context });
    const freshUntil = Math.min(Number(claims.exp), Number(claims.iat) + CALL_TOKEN_FRESHNESS_SECONDS) + CLOCK_SKEW_SECONDS;
    io.out(`verdict: ACCEPT until ${when(freshUntil)}, once: a call token is single-use (a second use is a replay)`);
    return 0;
  } catch (err) {
    if (!(err instanceof AuthError)) throw err;
    io.out(`verdict: REJECT: ${err.reason}`);
    io.out(`(the caller sees ${err.kind === "resource_exhausted" ? "RESOURCE_EXHAUSTED" : err.kind === "permission_denied" ? "PERMISSION_DENIED" : "UNAUTHENTICATED"}; the server logs this reason with the request id)`);
    return 1;
  }
}
