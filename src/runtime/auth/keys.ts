/**
 * ES256 signing keys, and the one strict way both token kinds (call tokens and
 * context tokens) check a compact JWS against them.
 *
 * The PKI code imports the key helpers, so this module depends only on jose
 * (WebCrypto underneath) and the leaf errors module.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import type { JWK } from "jose";
import { quote, unauthenticated } from "./errors.ts";
import { ES256_SIGNATURE_CHARS, signEs256, verifyEs256 } from "./es256.ts";

export const SIGNING_ALG = "ES256";
/** Spec section 4: tokens above 4 KiB are rejected before any parsing. */
export const MAX_TOKEN_BYTES = 4096;
/** Allowed clock difference between two hosts, in seconds. */
export const CLOCK_SKEW_SECONDS = 5;

// Key generation and thumbprints are identity material (src/runtime/identity/jwk.ts); re-exported here.
export { generateSigningKey, thumbprintKid, type SigningJwk } from "../identity/jwk.ts";
import { thumbprintKid } from "../identity/jwk.ts";

/** The publishable half of an ES256 JWK (drops `d`, keeps kid/alg/use). */
export function publicJwk(jwk: JWK): JWK {
  assertP256(jwk, false);
  const out: JWK = { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, alg: SIGNING_ALG, use: "sig" };
  if (jwk.kid !== undefined) out.kid = jwk.kid;
  return out;
}

/** Throws on anything but a P-256 EC JWK (optionally requiring the private part). */
export function assertP256(jwk: JWK, requirePrivate: boolean): void {
  if (jwk === null || typeof jwk !== "object") throw new TypeError("key is not a JWK object");
  if (jwk.kty !== "EC" || jwk.crv !== "P-256") throw new TypeError("key is not an EC P-256 JWK (ES256 only)");
  if (typeof jwk.x !== "string" || typeof jwk.y !== "string") throw new TypeError("EC JWK lacks x/y");
  if (requirePrivate && typeof jwk.d !== "string") throw new TypeError("signing key must be a private JWK (d)");
  if (jwk.alg !== undefined && jwk.alg !== SIGNING_ALG) throw new TypeError(`JWK alg ${quote(jwk.alg)} is not ES256`);
  if (jwk.use !== undefined && jwk.use !== "sig") throw new TypeError(`JWK use ${quote(jwk.use)} is not sig`);
}

/**
 * Signs compact JWS tokens of one `typ` with one private key. The key is
 * checked and its kid settled once (the thumbprint, computed when absent and
 * enforced when present: a wrong kid would only surface later as every peer
 * rejecting our tokens); each token is then signed with OpenSSL directly
 * (measured ~25 µs cheaper per call than WebCrypto) through es256.ts (a
 * KeyObject and a DER signature: another 40-50 µs cheaper than dsaEncoding).
 */
export function createJwsSigner(jwk: JWK, typ: string): { sign(claims: object): Promise<string> } {
  assertP256(jwk, true);
  const ready = thumbprintKid(jwk).then((kid) => {
    if (jwk.kid !== undefined && jwk.kid !== kid) throw new TypeError("signing key kid is not its RFC 7638 thumbprint");
    return {
      key: createPrivateKey({ key: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, d: jwk.d! }, format: "jwk" }),
      header: Buffer.from(JSON.stringify({ alg: SIGNING_ALG, typ, kid })).toString("base64url"),
    };
  });
  ready.catch(() => {}); // surfaced by sign(); avoids an unhandled rejection at startup
  return {
    async sign(claims) {
      const { key, header } = await ready;
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}`;
      // The input is base64url and dots: latin1 is its exact bytes, without a UTF-8 pass.
      return `${input}.${signEs256(key, Buffer.from(input, "latin1"))}`;
    },
  };
}

/**
 * Published public keys, imported once per kid. Entries are keyed by kid but
 * also pinned to x/y, so a bundle that reuses a kid for different key material
 * never gets a cached key it did not publish.
 */
export interface VerifyKeyCache {
  get(jwk: JWK): Promise<KeyObject>;
  /** The imported key if it is cached and ready (no await on the hot path), else undefined. */
  ready(jwk: JWK): KeyObject | undefined;
  /**
   * Protected-header segments already checked by verifyStrictJws for this
   * verifier, with their kid: a signer sends the same header on every token,
   * so it is decoded and checked once, not per call.
   */
  readonly headers: Map<string, { readonly typ: string; readonly kid: string }>;
}

/** Distinct headers remembered per verifier (one per signing key in practice); a full map is cleared. */
const MAX_CACHED_HEADERS = 256;

export function createVerifyKeyCache(maxKeys = 256): VerifyKeyCache {
  const entries = new Map<string, { x: string; y: string; key: Promise<KeyObject>; resolved?: KeyObject }>();
  return {
    headers: new Map(),
    ready(jwk) {
      const hit = entries.get(jwk.kid!);
      return hit !== undefined && hit.x === jwk.x && hit.y === jwk.y ? hit.resolved : undefined;
    },
    get(jwk) {
      const kid = jwk.kid!;
      const hit = entries.get(kid);
      if (hit !== undefined && hit.x === jwk.x && hit.y === jwk.y) return hit.key;
      const key = importPublished(jwk);
      // Rotation only ever adds kids; a full reset is simpler than LRU and rare.
      if (entries.size >= maxKeys) entries.clear();
      const entry: { x: string; y: string; key: Promise<KeyObject>; resolved?: KeyObject } = { x: jwk.x!, y: jwk.y!, key };
      entries.set(kid, entry);
      key.then(
        (k) => (entry.resolved = k),
        // A failed import must be retried after the bundle is fixed, not cached.
        () => {
          if (entries.get(kid)?.key === key) entries.delete(kid);
        },
      );
      return key;
    },
  };
}

async function importPublished(jwk: JWK): Promise<KeyObject> {
  assertP256(jwk, false);
  if (jwk.d !== undefined) throw new TypeError("published key contains private material");
  if ((await thumbprintKid(jwk)) !== jwk.kid) throw new TypeError("published kid is not the key's RFC 7638 thumbprint");
  // Only the public members: nothing else in a bundle entry can influence the key.
  return createPublicKey({ key: { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y! }, format: "jwk" });
}

export interface StrictJwsOptions {
  /** "call token" / "context token": prefixes every reason. */
  label: string;
  /** The exact `typ` header this kind of token must carry. */
  typ: string;
  /** The only keys allowed to have signed it (already narrowed to the expected signer). */
  keys: readonly JWK[] | undefined;
  /** Who published `keys`, for reasons ("peer spiffe://..." / "the context-token issuers"). */
  keyOwner: string;
  cache: VerifyKeyCache;
}

// The header we mint is exactly {alg, typ, kid}. Key-carrying headers are named
// in reasons because they are classic attacks (RFC 8725 section 3.10); `crit`
// would ask us to understand extensions we do not implement.
const FORBIDDEN_HEADERS = new Set(["crit", "jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "b64"]);
const B64URL = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

export interface VerifiedJws {
  /** The JSON payload. */
  claims: Record<string, unknown>;
  /** The published key that verified it: caches of verified tokens keep it, to drop them once it is unpublished. */
  kid: string;
}

/**
 * Checks shape, header and signature of a compact JWS and returns its JSON
 * payload. Cheap structural checks run before any crypto; the key is chosen by
 * kid from `keys` only (the current bundle's list, so a key removed from the
 * bundle stops verifying at the next reload, whatever the import cache holds).
 * Throws AuthError("unauthenticated").
 */
export async function verifyStrictJws(token: string, o: StrictJwsOptions): Promise<VerifiedJws> {
  if (token.length > MAX_TOKEN_BYTES) {
    // Non-ASCII characters would only make it longer in bytes; they fail the charset checks below.
    throw unauthenticated(`${o.label} is ${token.length} bytes, over the ${MAX_TOKEN_BYTES} byte limit`);
  }
  const dot1 = token.indexOf(".");
  const dot2 = dot1 < 0 ? -1 : token.indexOf(".", dot1 + 1);
  if (dot1 <= 0 || dot2 < 0 || token.indexOf(".", dot2 + 1) !== -1) {
    throw unauthenticated(`${o.label} is not a compact JWS with 3 parts`);
  }
  const headerSegment = token.slice(0, dot1);
  const checked = o.cache.headers.get(headerSegment);
  const kid = checked !== undefined && checked.typ === o.typ ? checked.kid : checkHeader(headerSegment, o);
  if (dot2 === dot1 + 1) throw unauthenticated(`${o.label} payload empty`);
  if (token.length - dot2 - 1 !== ES256_SIGNATURE_CHARS) {
    throw unauthenticated(`${o.label} signature is not a 64-byte ES256 signature`);
  }

  let jwk: JWK | undefined;
  if (o.keys !== undefined) {
    for (const candidate of o.keys) {
      if (candidate.kid === kid) {
        jwk = candidate;
        break;
      }
    }
  }
  if (jwk === undefined) throw unauthenticated(`${o.label} kid ${quote(kid)} is not published for ${o.keyOwner}`);

  let key = o.cache.ready(jwk);
  if (key === undefined) {
    try {
      key = await o.cache.get(jwk);
    } catch (err) {
      throw unauthenticated(`${o.label} published key ${quote(kid)} unusable: ${(err as Error).message}`);
    }
  }

  // The signature check itself goes straight to OpenSSL (es256.ts): header, alg and
  // kid are already pinned above, and `npm run bench` measured jose's WebCrypto path
  // at ~40 µs more per verify on the per-call hot path.
  const signature = token.slice(dot2 + 1);
  const payloadSegment = token.slice(dot1 + 1, dot2);
  if (!B64URL.test(signature) || !B64URL.test(payloadSegment)) throw unauthenticated(`${o.label} is not base64url`);
  // Header and payload are base64url by now: latin1 is their exact bytes.
  if (!verifyEs256(key, Buffer.from(token.slice(0, dot2), "latin1"), signature)) {
    throw unauthenticated(`${o.label} signature verification failed`);
  }
  const claims = parseJson(Buffer.from(payloadSegment, "base64url"));
  if (claims === undefined) throw unauthenticated(`${o.label} payload is not a JSON object`);
  return { claims, kid };
}

/** Decodes and checks a protected header (alg, typ, allowed members, kid); returns the kid and remembers the segment. */
function checkHeader(segment: string, o: StrictJwsOptions): string {
  const header = parseJsonSegment(segment);
  if (header === undefined) throw unauthenticated(`${o.label} protected header is not base64url JSON object`);

  if (header.alg !== SIGNING_ALG) throw unauthenticated(`${o.label} alg ${quote(header.alg)} not allowed (ES256 only)`);
  if (header.typ !== o.typ) throw unauthenticated(`${o.label} typ ${quote(header.typ)} is not ${o.typ}`);
  for (const name in header) {
    if (name === "alg" || name === "typ" || name === "kid") continue;
    if (FORBIDDEN_HEADERS.has(name)) throw unauthenticated(`${o.label} header ${name} not allowed`);
    throw unauthenticated(`${o.label} unexpected header parameter ${quote(name)}`);
  }
  const kid = header.kid;
  if (typeof kid !== "string" || kid.length === 0) throw unauthenticated(`${o.label} kid missing`);
  // Only headers that passed every check are remembered; whether the kid is published is checked per call.
  if (o.cache.headers.size >= MAX_CACHED_HEADERS) o.cache.headers.clear();
  o.cache.headers.set(segment, { typ: o.typ, kid });
  return kid;
}

function parseJsonSegment(segment: string): Record<string, unknown> | undefined {
  if (!B64URL.test(segment)) return undefined;
  return parseJson(Buffer.from(segment, "base64url"));
}

function parseJson(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(bytes));
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The time checks both token kinds share: integer iat/exp, positive lifetime
 * no longer than `maxLifetime`, not issued in the future, not expired, each
 * with CLOCK_SKEW_SECONDS of tolerance. Returns a reason, or undefined if fine.
 */
export function timeWindowProblem(claims: Record<string, unknown>, maxLifetime: number, nowSeconds: number): string | undefined {
  const { iat, exp, nbf } = claims;
  if (iat === undefined) return "iat missing";
  if (exp === undefined) return "exp missing";
  if (!Number.isSafeInteger(iat)) return `iat ${quote(iat)} is not an integer`;
  if (!Number.isSafeInteger(exp)) return `exp ${quote(exp)} is not an integer`;
  const issued = iat as number;
  const expires = exp as number;
  if (expires <= issued) return `exp ${expires} is not after iat ${issued}`;
  if (expires - issued > maxLifetime) return `lifetime ${expires - issued} s exceeds ${maxLifetime} s`;
  if (issued > nowSeconds + CLOCK_SKEW_SECONDS) return `iat ${issued} is in the future (now ${Math.floor(nowSeconds)})`;
  if (expires <= nowSeconds - CLOCK_SKEW_SECONDS) return `token expired at ${expires} (now ${Math.floor(nowSeconds)})`;
  // We never mint nbf, but if a signer sets one it must be honoured.
  if (nbf !== undefined && (!Number.isSafeInteger(nbf) || (nbf as number) > nowSeconds + CLOCK_SKEW_SECONDS)) {
    return `nbf ${quote(nbf)} is not yet valid`;
  }
  return undefined;
}
