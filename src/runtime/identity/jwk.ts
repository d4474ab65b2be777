/**
 * ES256 key material as we store it: generation and the RFC 7638 thumbprint
 * that is every key's kid. Identity material (the PKI loaders and the key
 * files use it); the token code in auth/ only reads keys.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";

/** A private ES256 JWK as we store it: kid is always the RFC 7638 thumbprint. */
export interface SigningJwk extends JWK {
  kty: "EC";
  crv: "P-256";
  x: string;
  y: string;
  d: string;
  kid: string;
  alg: "ES256";
  use: "sig";
}

/** RFC 7638 SHA-256 thumbprint, base64url: the only kid we ever publish. */
export function thumbprintKid(jwk: JWK): Promise<string> {
  return calculateJwkThumbprint(jwk, "sha256");
}

/** A fresh P-256 key pair as a private JWK carrying kid, alg and use. */
export async function generateSigningKey(): Promise<SigningJwk> {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await thumbprintKid(jwk);
  return { kty: "EC", crv: "P-256", x: jwk.x!, y: jwk.y!, d: jwk.d!, kid, alg: "ES256", use: "sig" };
}

