/**
 * Writing key files (format: @tickettoken/rpc identity/jwt-keys.ts): a new file
 * with one fresh key, and rotation by the rule documented there. Used by the
 * dev CA (`tt-rpc certs init|rotate-jwt`); services only read key files.
 */
import { generateSigningKey } from "@tickettoken/rpc/internal/identity/jwk";
import { JWT_KEY_GRACE_MS, type PrivateSigningJwk, type SigningKeyFile } from "@tickettoken/rpc/internal/identity/jwt-keys";

/** A fresh ES256 key in our stored form (one generator for the whole code base: jwk.ts). */
export async function generateSigningJwk(): Promise<PrivateSigningJwk> {
  const jwk = await generateSigningKey();
  return { kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y, d: jwk.d!, kid: jwk.kid!, alg: "ES256", use: "sig" };
}

export async function newKeyFile(now = new Date()): Promise<SigningKeyFile> {
  const jwk = await generateSigningJwk();
  return { current: jwk.kid, keys: [{ created: now.toISOString(), jwk }] };
}

/** Add a new current key and prune per the rotation rule above. */
export async function rotateKeyFile(
  file: SigningKeyFile,
  opts: { now?: Date; graceMs?: number } = {},
): Promise<SigningKeyFile> {
  const now = opts.now ?? new Date();
  const grace = opts.graceMs ?? JWT_KEY_GRACE_MS;
  const jwk = await generateSigningJwk();
  const all = [{ created: now.toISOString(), jwk }, ...file.keys];
  // all[i] was retired when all[i - 1] was created.
  const kept = all.filter((_, i) => i <= 1 || now.getTime() - Date.parse(all[i - 1]!.created) <= grace);
  return { current: jwk.kid, keys: kept };
}

export function serializeKeyFile(file: SigningKeyFile): string {
  return JSON.stringify(file, null, 2) + "\n";
}

