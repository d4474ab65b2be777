/**
 * The per-call JWT (spec section 4): minted fresh for every call and retry,
 * verified on every call with keys chosen by the mTLS peer's identity.
 */
import type { JWK } from "jose";
import { contextTokenHash } from "./context-token.ts";
import { quote, resourceExhausted, unauthenticated } from "./errors.ts";
import {
  assertP256,
  CLOCK_SKEW_SECONDS,
  createVerifyKeyCache,
  createJwsSigner,
  timeWindowProblem,
  verifyStrictJws,
} from "./keys.ts";
import type { ReplayCache } from "./replay-cache.ts";
import { randomId128 } from "./random.ts";

export const CALL_TOKEN_TYPE = "svc-call+jwt";
export const CALL_TOKEN_LIFETIME_SECONDS = 60;
/**
 * A call token is accepted only this long after its iat (plus clock skew).
 * Tokens are minted per attempt, just before sending, so an honest call never
 * needs more; it is what lets the replay cache forget a jti after seconds.
 */
export const CALL_TOKEN_FRESHNESS_SECONDS = 15;

/**
 * The epoch second from which the verifier rejects a token with these claims
 * (stale or expired), so its jti need not be remembered any longer.
 */
export function replayKeepUntil(iat: number, exp: number): number {
  return Math.min(exp, iat + CALL_TOKEN_FRESHNESS_SECONDS) + CLOCK_SKEW_SECONDS;
}

export interface CallClaims {
  iss: string;
  sub: string;
  aud: string;
  mth: string;
  iat: number;
  exp: number;
  jti: string;
  /** base64url(SHA-256(context token)) when one travels with the call. */
  ctx?: string;
}

export interface MintCallTokenInput {
  /** Callee SPIFFE ID. */
  audience: string;
  /** "/pkg.Service/Method" */
  method: string;
  /** The context token forwarded with this call, if any. */
  contextToken?: string | undefined;
}

export interface CallTokenMinter {
  mint(input: MintCallTokenInput): Promise<string>;
}

const LABEL = "call token";
// 128 random bits -> 22 base64url chars; the last char holds only 2 bits, so it is one of A/Q/g/w.
const JTI = /^[A-Za-z0-9_-]{21}[AQgw]$/;

export function createCallTokenMinter(options: {
  /** Caller SPIFFE ID: iss and sub. */
  identity: string;
  /** Caller's private ES256 JWK; kid is computed when absent. */
  key: JWK;
  /** Clock in epoch milliseconds. */
  now?: () => number;
}): CallTokenMinter {
  const { identity, key, now = Date.now } = options;
  if (typeof identity !== "string" || identity.length === 0) throw new TypeError("identity must be a SPIFFE ID");
  assertP256(key, true);
  const signer = createJwsSigner(key, CALL_TOKEN_TYPE);

  return {
    async mint({ audience, method, contextToken }) {
      const iat = Math.floor(now() / 1000);
      const claims: CallClaims = {
        iss: identity,
        sub: identity,
        aud: audience,
        mth: method,
        iat,
        exp: iat + CALL_TOKEN_LIFETIME_SECONDS,
        jti: randomId128(),
      };
      if (contextToken !== undefined) claims.ctx = contextTokenHash(contextToken);
      return signer.sign(claims);
    },
  };
}

export interface VerifyCallInput {
  /** SPIFFE ID of the mTLS peer, parsed from its certificate. */
  peer: string;
  /** The routed method, "/pkg.Service/Method". */
  method: string;
  /** The context token that accompanies the call, if any. */
  contextToken?: string | undefined;
}

export interface CallTokenVerifier {
  verify(authorizationValues: readonly string[] | undefined, input: VerifyCallInput): Promise<CallClaims>;
}

export function createCallTokenVerifier(options: {
  /** This server's SPIFFE ID: the only accepted aud. */
  self: string;
  /** Public keys published for exactly that identity, so one service's key never verifies another's token. */
  keysFor: (peer: string) => readonly JWK[] | undefined;
  replayCache: ReplayCache;
  /** Clock in epoch milliseconds. */
  now?: () => number;
}): CallTokenVerifier {
  const { self, keysFor, replayCache, now = Date.now } = options;
  const cache = createVerifyKeyCache();

  return {
    async verify(values, { peer, method, contextToken }) {
      if (values === undefined || values.length === 0) throw unauthenticated("no authorization value");
      if (values.length !== 1) throw unauthenticated(`expected exactly one authorization value, got ${values.length}`);
      const value = values[0]!;
      if (typeof value !== "string" || !value.startsWith("Bearer ")) {
        throw unauthenticated("authorization value is not a Bearer token");
      }
      const { claims: c } = await verifyStrictJws(value.slice(7), {
        label: LABEL,
        typ: CALL_TOKEN_TYPE,
        keys: keysFor(peer),
        keyOwner: `peer ${peer}`,
        cache,
      });

      // Signature is good from here on: the claims are the peer's own words.
      if (c.iss !== peer) throw unauthenticated(`${LABEL} iss ${quote(c.iss)} is not the mTLS peer ${peer}`);
      if (c.sub !== peer) throw unauthenticated(`${LABEL} sub ${quote(c.sub)} is not the mTLS peer ${peer}`);
      const aud = c.aud;
      if (typeof aud !== "string") {
        throw unauthenticated(
          Array.isArray(aud) ? `${LABEL} aud is an array; a single string is required` : `${LABEL} aud missing or not a string`,
        );
      }
      if (aud !== self) throw unauthenticated(`${LABEL} aud mismatch: got ${quote(aud)}`);
      if (c.mth !== method) throw unauthenticated(`${LABEL} mth mismatch: got ${quote(c.mth)} for ${method}`);
      const jti = c.jti;
      if (jti === undefined) throw unauthenticated(`${LABEL} jti missing`);
      if (typeof jti !== "string" || !JTI.test(jti)) throw unauthenticated(`${LABEL} jti ${quote(jti)} is not 128 bits base64url`);
      const nowSeconds = now() / 1000;
      const problem = timeWindowProblem(c, CALL_TOKEN_LIFETIME_SECONDS, nowSeconds);
      if (problem !== undefined) throw unauthenticated(`${LABEL} ${problem}`);
      const iat = c.iat as number;
      const exp = c.exp as number;
      // Same boundary as the expiry check: accepted while now < keepUntil, so the cache always still holds the jti.
      const keepUntil = replayKeepUntil(iat, exp);
      if (nowSeconds >= keepUntil) {
        throw unauthenticated(`${LABEL} iat ${iat} is older than the ${CALL_TOKEN_FRESHNESS_SECONDS} s freshness window (now ${Math.floor(nowSeconds)})`);
      }

      const ctx = c.ctx;
      if (contextToken !== undefined) {
        if (ctx === undefined) throw unauthenticated(`${LABEL} has no ctx but a context token was forwarded`);
        if (ctx !== contextTokenHash(contextToken)) throw unauthenticated(`${LABEL} ctx does not match the forwarded context token`);
      } else if (ctx !== undefined) {
        throw unauthenticated(`${LABEL} carries ctx but no context token was forwarded`);
      }

      // Last, so tokens rejected above never take a replay-cache slot.
      const verdict = await replayCache.check(peer, jti, keepUntil);
      if (verdict === "replayed") throw unauthenticated(`${LABEL} jti ${jti} replayed`);
      if (verdict === "over_quota") throw resourceExhausted(`replay cache quota of peer ${peer} used up; refusing this peer only`);
      if (verdict !== "fresh") throw unauthenticated(`replay cache answered ${quote(verdict)}; failing closed`);

      const claims: CallClaims = { iss: peer, sub: peer, aud, mth: method, iat, exp, jti };
      if (ctx !== undefined) claims.ctx = ctx as string;
      return claims;
    },
  };
}
