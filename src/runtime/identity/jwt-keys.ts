/**
 * ES256 signing keys for per-call JWTs and context tokens, and the key file
 * that holds them, as services read it (writing and rotating it is the dev
 * tools' job: @tickettoken/rpc-devtools pki/key-files.ts).
 *
 * Key file (`jwt-signing.jwk.json`, `context-signing.jwk.json`), newest first:
 *   { "current": "<kid>", "keys": [ { "created": "<ISO time>", "jwk": <private JWK> }, ... ] }
 * Each JWK is P-256 with `kid` = RFC 7638 SHA-256 thumbprint, `alg` "ES256",
 * `use` "sig". Only `current` signs; every listed key is published (public
 * half) in bundle.json so verifiers accept tokens signed just before a
 * rotation.
 *
 * Rotation rule: the new key becomes current; the key it replaces is always
 * kept (the overlap window); any older key is dropped once its successor has
 * existed for longer than the grace period (default 1 h, far above the 60 s
 * token life plus bundle reload delay).
 */
import { createPrivateKey, createPublicKey } from "node:crypto";
import { thumbprintKid } from "./jwk.ts";

export const JWT_KEY_GRACE_MS = 60 * 60_000;

/**
 * A new key is published (bundle.json) at once but signs only after this
 * delay, so every verifier has reloaded the bundle (it polls every 5 s) before
 * the first token with the new kid arrives: "published before use".
 */
export const JWT_KEY_PUBLISH_DELAY_MS = 15_000;

export interface PublicSigningJwk {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  kid: string;
  alg: "ES256";
  use: "sig";
}

export interface PrivateSigningJwk extends PublicSigningJwk {
  d: string;
}

export interface SigningKeyFile {
  current: string;
  keys: Array<{ created: string; jwk: PrivateSigningJwk }>;
}

export function toPublicJwk(jwk: PrivateSigningJwk): PublicSigningJwk {
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { kty, crv, x, y, kid, alg, use };
}

/**
 * The key to sign with now: the newest key that has been published for at
 * least JWT_KEY_PUBLISH_DELAY_MS, or the oldest one if none has (a fresh PKI).
 */
export function signingKeyAt(file: SigningKeyFile, now: number = Date.now()): PrivateSigningJwk {
  const ready = file.keys.find((k) => Date.parse(k.created) + JWT_KEY_PUBLISH_DELAY_MS <= now);
  return (ready ?? file.keys[file.keys.length - 1]!).jwk;
}

export function currentKey(file: SigningKeyFile): PrivateSigningJwk {
  const entry = file.keys.find((k) => k.jwk.kid === file.current);
  if (!entry) throw new Error(`current kid ${file.current} is not among the keys`);
  return entry.jwk;
}

/** Parse and fully validate a key file; the message says what is wrong. */
export async function parseKeyFile(text: string): Promise<SigningKeyFile> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new Error("not valid JSON");
  }
  if (!isObject(raw) || typeof raw.current !== "string" || !Array.isArray(raw.keys) || raw.keys.length === 0) {
    throw new Error('expected { "current": <kid>, "keys": [ ... ] } with at least one key');
  }
  const keys: SigningKeyFile["keys"] = [];
  for (const [i, entry] of raw.keys.entries()) {
    if (!isObject(entry) || typeof entry.created !== "string" || Number.isNaN(Date.parse(entry.created))) {
      throw new Error(`keys[${i}] lacks a valid "created" time`);
    }
    keys.push({ created: entry.created, jwk: await checkPrivateJwk(entry.jwk, `keys[${i}].jwk`) });
  }
  const file = { current: raw.current, keys };
  currentKey(file);
  return file;
}

export async function checkPublicJwk(value: unknown, label: string): Promise<PublicSigningJwk> {
  if (!isObject(value)) throw new Error(`${label} is not a JWK object`);
  if ("d" in value) throw new Error(`${label} is a private key; only public keys may be published`);
  const { kty, crv, x, y, kid, alg, use } = value;
  if (kty !== "EC" || crv !== "P-256") throw new Error(`${label} is not an EC P-256 key`);
  if (alg !== "ES256") throw new Error(`${label} alg must be ES256`);
  if (use !== "sig") throw new Error(`${label} use must be "sig"`);
  if (typeof x !== "string" || typeof y !== "string" || typeof kid !== "string") {
    throw new Error(`${label} lacks x, y or kid`);
  }
  // Node rejects points that are not on the curve.
  try {
    createPublicKey({ key: { kty, crv, x, y }, format: "jwk" });
  } catch {
    throw new Error(`${label} is not a valid P-256 public key`);
  }
  if (kid !== (await thumbprintKid({ kty, crv, x, y }))) {
    throw new Error(`${label} kid is not its RFC 7638 thumbprint`);
  }
  return { kty, crv, x, y, kid, alg, use };
}

async function checkPrivateJwk(value: unknown, label: string): Promise<PrivateSigningJwk> {
  if (!isObject(value) || typeof value.d !== "string") throw new Error(`${label} is not a private JWK`);
  const { d, ...pub } = value;
  const jwk = { ...(await checkPublicJwk(pub, label)), d };
  // The private scalar must belong to the published point, or tokens would not verify.
  let derived;
  try {
    derived = createPublicKey(createPrivateKey({ key: jwk, format: "jwk" })).export({ format: "jwk" });
  } catch {
    throw new Error(`${label} private key does not parse`);
  }
  if (derived.x !== jwk.x || derived.y !== jwk.y) throw new Error(`${label} d does not match x/y`);
  return jwk;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
