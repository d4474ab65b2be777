/**
 * The signed tenant/user context (OAuth Transaction Token style). Minted once
 * at the edge (api-gateway, or the CLI in development), forwarded unchanged on
 * every hop, and bound to each call token by its hash (`ctx`), so no hop can
 * swap the tenant while X-Tenant-ID-style headers are never trusted.
 */
import { createHash, randomUUID } from "node:crypto";
import type { JWK } from "jose";
import { quote, unauthenticated } from "./errors.ts";
import {
  assertP256,
  createVerifyKeyCache,
  createJwsSigner,
  timeWindowProblem,
  verifyStrictJws,
} from "./keys.ts";

export const CONTEXT_TOKEN_TYPE = "txn+jwt";
export const CONTEXT_TOKEN_AUDIENCE = "tickettoken.internal";
/** Spec section 4: a context token lives at most 5 minutes. */
export const MAX_CONTEXT_TTL_SECONDS = 300;

export interface CallContext {
  tenantId: string;
  userId: string;
  scopes: string[];
  txn: string;
  issuer: string;
  /** Epoch seconds. */
  expiresAt: number;
}

export interface ContextTokenMintInput {
  tenantId: string;
  userId: string;
  scopes: readonly string[];
  /** Transaction id; a random UUID when absent. */
  txn?: string;
  /** 1..300, default 300. */
  ttlSeconds?: number;
}

export interface ContextTokenMinter {
  mint(input: ContextTokenMintInput): Promise<string>;
}

const LABEL = "context token";

/** Hashes of recently seen context tokens: one token is forwarded on many calls, hashed once. */
const hashes = new Map<string, string>();
const MAX_HASHED_TOKENS = 256;
// Longer ones are refused by the verifier anyway; they are hashed but never remembered (bounded memory).
const MAX_HASHED_TOKEN_CHARS = 4096;

/** base64url(SHA-256(token)): the value call tokens carry in `ctx`. */
export function contextTokenHash(token: string): string {
  let hash = hashes.get(token);
  if (hash === undefined) {
    hash = createHash("sha256").update(token).digest("base64url");
    // Bounded: a full map is simply cleared (tokens live minutes; the working set is small).
    if (token.length > MAX_HASHED_TOKEN_CHARS) return hash;
    if (hashes.size >= MAX_HASHED_TOKENS) hashes.clear();
    hashes.set(token, hash);
  }
  return hash;
}

export function createContextTokenMinter(options: {
  issuer: string;
  key: JWK;
  /** Clock in epoch milliseconds. */
  now?: () => number;
}): ContextTokenMinter {
  const { issuer, key, now = Date.now } = options;
  requireText(issuer, "issuer");
  assertP256(key, true);
  const signer = createJwsSigner(key, CONTEXT_TOKEN_TYPE);
  return {
    async mint({ tenantId, userId, scopes, txn = randomUUID(), ttlSeconds = MAX_CONTEXT_TTL_SECONDS }) {
      requireText(tenantId, "tenantId");
      requireText(userId, "userId");
      requireText(txn, "txn");
      if (!Number.isSafeInteger(ttlSeconds) || ttlSeconds < 1 || ttlSeconds > MAX_CONTEXT_TTL_SECONDS) {
        throw new RangeError(`ttlSeconds must be an integer in 1..${MAX_CONTEXT_TTL_SECONDS}`);
      }
      for (const scope of scopes) {
        if (typeof scope !== "string" || !/^[\x21-\x7e]+$/.test(scope)) {
          throw new TypeError(`scope ${quote(scope)} must be non-empty printable ASCII without spaces`);
        }
      }
      const iat = Math.floor(now() / 1000);
      const claims = {
        iss: issuer,
        sub: userId,
        aud: CONTEXT_TOKEN_AUDIENCE,
        tid: tenantId,
        scope: scopes.join(" "),
        txn,
        iat,
        exp: iat + ttlSeconds,
      };
      return signer.sign(claims);
    },
  };
}

export interface ContextTokenVerifier {
  verify(token: string): Promise<CallContext>;
  /** Also names the key that verified it (for caches that must forget tokens of an unpublished key). */
  verifyWithKid(token: string): Promise<{ context: CallContext; kid: string }>;
}

/**
 * `keys` must be the context-token keys of the trust bundle ONLY (never the
 * services' call-token keys), or any service could mint tenant context. A
 * function lets the bundle reload without rebuilding the verifier.
 */
export function createContextTokenVerifier(options: {
  keys: readonly JWK[] | (() => readonly JWK[]);
  now?: () => number;
}): ContextTokenVerifier {
  const { keys, now = Date.now } = options;
  const keysNow = typeof keys === "function" ? keys : () => keys;
  const cache = createVerifyKeyCache();
  async function verifyWithKid(token: string): Promise<{ context: CallContext; kid: string }> {
    if (typeof token !== "string") throw unauthenticated(`${LABEL} is not a string`);
    const { claims: c, kid } = await verifyStrictJws(token, {
      label: LABEL,
      typ: CONTEXT_TOKEN_TYPE,
      keys: keysNow(),
      keyOwner: "the context-token issuers",
      cache,
    });
    if (c.aud !== CONTEXT_TOKEN_AUDIENCE) {
      throw unauthenticated(`${LABEL} aud ${quote(c.aud)} is not ${CONTEXT_TOKEN_AUDIENCE}`);
    }
    const iss = c.iss, sub = c.sub, tid = c.tid, txn = c.txn, scope = c.scope;
    if (!isText(iss)) throw unauthenticated(`${LABEL} iss missing or not a string`);
    if (!isText(sub)) throw unauthenticated(`${LABEL} sub (user id) missing or not a string`);
    if (!isText(tid)) throw unauthenticated(`${LABEL} tid (tenant id) missing or not a string`);
    if (!isText(txn)) throw unauthenticated(`${LABEL} txn missing or not a string`);
    if (typeof scope !== "string") throw unauthenticated(`${LABEL} scope missing or not a string`);
    const scopes = scope === "" ? [] : scope.split(" ");
    if (scopes.includes("")) throw unauthenticated(`${LABEL} scope has empty entries`);
    const problem = timeWindowProblem(c, MAX_CONTEXT_TTL_SECONDS, now() / 1000);
    if (problem !== undefined) throw unauthenticated(`${LABEL} ${problem}`);
    return { context: { tenantId: tid, userId: sub, scopes, txn, issuer: iss, expiresAt: c.exp as number }, kid };
  }
  return {
    verifyWithKid,
    verify: async (token) => (await verifyWithKid(token)).context,
  };
}

function isText(value: unknown): value is string {
  return typeof value === "string" && value.length > 0;
}

function requireText(value: unknown, name: string): asserts value is string {
  if (!isText(value)) throw new TypeError(`${name} must be a non-empty string`);
}
