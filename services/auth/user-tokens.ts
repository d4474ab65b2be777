/**
 * End-user access tokens: compact ES256 JWS (`typ` at+jwt, RFC 9068) signed by
 * a key of the user's tenant that auth-service generates at run time and keeps
 * in its own database (no secret ships in code). Each token belongs to a
 * session row, so revoking the session invalidates the token before it
 * expires.
 *
 * `issue` is what a login would call; tests and the demo mint tokens with
 * `mintUserToken(db, { tenantId, userId })` below.
 */
import { randomUUID } from "node:crypto";
import type { JWK } from "jose";
import { AuthError } from "@tickettoken/rpc/jws";
import {
  createJwsSigner,
  createVerifyKeyCache,
  generateSigningKey,
  publicJwk,
  timeWindowProblem,
  verifyStrictJws,
} from "@tickettoken/rpc/jws";
import { transaction, type Database } from "../shared/database.ts";
import { createSqliteAuthStore, type AuthStore, type UserRow } from "./store.ts";

export const USER_TOKEN_TYPE = "at+jwt";
export const USER_TOKEN_ISSUER = "tickettoken-auth";
export const USER_TOKEN_AUDIENCE = "tickettoken-api";
/** Default and longest lifetime of an access token. */
export const USER_TOKEN_TTL_SECONDS = 900;
export const USER_TOKEN_MAX_TTL_SECONDS = 86_400;

export interface IssuedUserToken {
  readonly token: string;
  readonly sessionId: string;
  readonly expiresAt: Date;
}

/** Why a token is not valid; the only detail a caller gets (never the token, never key material). */
export type InvalidTokenReason =
  | "malformed"
  | "unknown signing key"
  | "bad signature"
  | "expired"
  | "not yet valid"
  | "revoked"
  | "unknown session"
  | "user not found";

export type TokenCheck =
  | { readonly valid: true; readonly user: UserRow; readonly expiresAt: Date; readonly sessionId: string }
  | { readonly valid: false; readonly reason: InvalidTokenReason };

export interface UserTokens {
  issue(input: { tenantId: string; userId: string; ttlSeconds?: number }): Promise<IssuedUserToken>;
  /** Verifies signature, claims, expiry, session and user; never throws for a bad token. */
  verify(token: string): Promise<TokenCheck>;
  revoke(tenantId: string, sessionId: string): boolean;
}

interface Claims {
  iss: string;
  aud: string;
  sub: string;
  tid: string;
  sid: string;
  iat: number;
  exp: number;
}

export function createUserTokens(store: AuthStore, db: Database, now: () => Date): UserTokens {
  const signers = new Map<string, { sign(claims: object): Promise<string> }>();
  const keyCache = createVerifyKeyCache();

  /** The tenant's current key; the first token of a tenant generates one. */
  async function currentKey(tenantId: string): Promise<{ kid: string; jwk: JWK }> {
    let row = store.currentSigningKey(tenantId);
    if (!row) {
      const jwk = await generateSigningKey();
      // Two first tokens at once may both generate: both keys are stored and valid, the newest signs.
      store.insertSigningKey({ tenantId, kid: jwk.kid, privateJwk: JSON.stringify(jwk), createdAt: now().toISOString(), retiredAt: undefined });
      row = store.currentSigningKey(tenantId)!;
    }
    return { kid: row.kid, jwk: JSON.parse(row.privateJwk) as JWK };
  }

  return {
    async issue({ tenantId, userId, ttlSeconds = USER_TOKEN_TTL_SECONDS }) {
      if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > USER_TOKEN_MAX_TTL_SECONDS) {
        throw new RangeError(`ttlSeconds must be an integer from 1 to ${USER_TOKEN_MAX_TTL_SECONDS}`);
      }
      if (!store.getUser(tenantId, userId)) throw new Error("no such user in the tenant");
      const { kid, jwk } = await currentKey(tenantId);
      let signer = signers.get(kid);
      if (!signer) signers.set(kid, (signer = createJwsSigner(jwk, USER_TOKEN_TYPE)));
      const iat = Math.floor(now().getTime() / 1000);
      const exp = iat + ttlSeconds;
      const sessionId = randomUUID();
      const claims: Claims = { iss: USER_TOKEN_ISSUER, aud: USER_TOKEN_AUDIENCE, sub: userId, tid: tenantId, sid: sessionId, iat, exp };
      const token = await signer.sign(claims);
      transaction(db, () =>
        store.insertSession({
          tenantId, id: sessionId, userId, kid, issuedAt: new Date(iat * 1000).toISOString(), expiresAt: new Date(exp * 1000).toISOString(),
          revokedAt: undefined,
        }),
      );
      return { token, sessionId, expiresAt: new Date(exp * 1000) };
    },

    async verify(token) {
      const kid = headerKid(token);
      if (kid === undefined) return { valid: false, reason: "malformed" };
      const key = store.signingKey(kid);
      let claims: Record<string, unknown>;
      try {
        const keys = key ? [publicJwk(JSON.parse(key.privateJwk) as JWK)] : [];
        ({ claims } = await verifyStrictJws(token, { label: "user token", typ: USER_TOKEN_TYPE, keys, keyOwner: "auth-service", cache: keyCache }));
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        if (!key) return { valid: false, reason: "unknown signing key" };
        return { valid: false, reason: err.reason.endsWith("signature verification failed") ? "bad signature" : "malformed" };
      }
      const c = claims as Partial<Record<keyof Claims, unknown>>;
      if (c.iss !== USER_TOKEN_ISSUER || c.aud !== USER_TOKEN_AUDIENCE || typeof c.sub !== "string" || typeof c.sid !== "string") {
        return { valid: false, reason: "malformed" };
      }
      // A key signs for its own tenant only.
      if (c.tid !== key!.tenantId) return { valid: false, reason: "bad signature" };
      const problem = timeWindowProblem(claims, USER_TOKEN_MAX_TTL_SECONDS, now().getTime() / 1000);
      if (problem !== undefined) {
        if (problem.startsWith("token expired")) return { valid: false, reason: "expired" };
        return { valid: false, reason: problem.startsWith("nbf") || problem.includes("in the future") ? "not yet valid" : "malformed" };
      }
      const session = store.getSession(key!.tenantId, c.sid);
      if (!session || session.userId !== c.sub) return { valid: false, reason: "unknown session" };
      if (session.revokedAt !== undefined) return { valid: false, reason: "revoked" };
      const user = store.getUser(key!.tenantId, c.sub);
      if (!user) return { valid: false, reason: "user not found" };
      return { valid: true, user, expiresAt: new Date((c.exp as number) * 1000), sessionId: session.id };
    },

    revoke(tenantId, sessionId) {
      return transaction(db, () => store.revokeSession(tenantId, sessionId, now().toISOString()));
    },
  };
}

/** The kid of a compact JWS's header, read before verification only to pick the key. */
function headerKid(token: string): string | undefined {
  const dot = token.indexOf(".");
  if (dot <= 0 || dot > 512) return undefined;
  try {
    const header: unknown = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8"));
    const kid = (header as { kid?: unknown } | null)?.kid;
    return typeof kid === "string" && kid.length > 0 && kid.length <= 128 ? kid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Mints an access token for a user of an auth-service database, as a login
 * would: what tests and demo flows call (e.g. with `harness.service.runtime.db`).
 */
export function mintUserToken(
  db: Database,
  input: { tenantId: string; userId: string; ttlSeconds?: number },
  now: () => Date = () => new Date(),
): Promise<IssuedUserToken> {
  return createUserTokens(createSqliteAuthStore(db), db, now).issue(input);
}
