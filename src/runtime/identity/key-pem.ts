/**
 * PEM private keys as the loaders check them: does a key belong to its
 * certificate, and the WebCrypto form of a key for signing.
 */
import { createPrivateKey, createPublicKey, webcrypto } from "node:crypto";
import type * as x509 from "./x509.ts";

const EC_P256_SHA256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

export async function importPrivateKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = createPrivateKey(pem).export({ type: "pkcs8", format: "der" });
  return webcrypto.subtle.importKey("pkcs8", der, EC_P256_SHA256, false, ["sign"]);
}

/** True when the PKCS#8 PEM key is the private half of the certificate's key. */
export function keyMatchesCert(keyPem: string, cert: x509.X509Certificate): boolean {
  const spki = createPublicKey(createPrivateKey(keyPem)).export({ type: "spki", format: "der" });
  return Buffer.compare(spki, Buffer.from(cert.publicKey.rawData)) === 0;
}

