/**
 * The PKI directory as every service reads it at start-up and on reload:
 * the layout, the trust bundle, a workload's certificate, key and JWT keys,
 * the context-token key. Validates everything and fails closed (PkiError
 * names the file to fix). Writing the directory (the dev CA, `tt-rpc certs`)
 * is developer tooling and lives in @tickettoken/rpc-devtools.
 *
 * Layout under <dir> (directories 0700, private files 0600, public 0644):
 *   ca/ca.crt, ca/ca.key               root CA (dev PKI only; never read by services)
 *   <workload>/tls.crt, tls.key        leaf X509-SVID (PEM) and its key (PKCS#8 PEM)
 *   <workload>/jwt-signing.jwk.json    per-call JWT signing keys (format in jwt-keys.ts)
 *   context/context-signing.jwk.json   context-token signing keys (same format)
 *   bundle/ca.crt                      trust roots (PEM, for -cacert / --cacert)
 *   bundle/bundle.json                 { trust_domain, x509_authorities: [PEM],
 *                                        jwt_keys: { <spiffe id>: [public JWK] },
 *                                        context_keys: [public JWK] }
 * tls.key and tls.crt are replaced by two renames: loadWorkloadMaterial checks
 * the pair matches, and a reloading reader retries.
 */
import * as x509 from "./x509.ts";
import { PkiError, pkiPaths, readKeyFile, readRequired, requireWorkload } from "./pki-layout.ts";

export { DEFAULT_CERTS_DIR, PkiError, loadContextSigningKey, loadJwtSigningKeys, pkiPaths, readKeyFile, readOptional, readRequired, requireWorkload, type SigningKeys } from "./pki-layout.ts";
import { TRUST_DOMAIN, parseWorkloadId, workloadSpiffeId } from "./spiffe-id.ts";
import type { WorkloadName } from "./workloads.ts";
import { inspectPeerLeaf } from "./leaf-checks.ts";
import { keyMatchesCert } from "./key-pem.ts";
import {
  type PrivateSigningJwk,
  type PublicSigningJwk,
  checkPublicJwk,
  currentKey,
  signingKeyAt,
} from "./jwt-keys.ts";

export interface TrustBundle {
  trustDomain: string;
  /** PEM of each trust root. */
  x509Authorities: string[];
  /** All roots as one PEM string, ready for tls `ca`. */
  caPem: string;
  /** Public JWT keys by SPIFFE ID: a caller's tokens verify only with its own keys. */
  jwtKeys: ReadonlyMap<string, readonly PublicSigningJwk[]>;
  contextKeys: readonly PublicSigningJwk[];
}

export async function loadTrustBundle(path: string): Promise<TrustBundle> {
  const text = await readRequired(path);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new PkiError("not valid JSON", path);
  }
  const bad = (msg: string): never => {
    throw new PkiError(msg, path);
  };
  if (typeof raw !== "object" || raw === null) return bad("not a JSON object");
  const b = raw as Record<string, unknown>;
  if (typeof b.trust_domain !== "string") return bad("trust_domain is missing");
  const trustDomain = b.trust_domain;
  try {
    workloadSpiffeId("x", "x", trustDomain);
  } catch (err) {
    bad(`trust_domain is invalid: ${(err as Error).message}`);
  }

  if (!Array.isArray(b.x509_authorities) || b.x509_authorities.length === 0) bad("x509_authorities is empty");
  const x509Authorities = (b.x509_authorities as unknown[]).map((pem, i) => {
    let cert: x509.X509Certificate | undefined;
    try {
      if (typeof pem === "string") cert = new x509.X509Certificate(pem);
    } catch {
      // reported below
    }
    if (!cert) return bad(`x509_authorities[${i}] is not a PEM certificate`);
    if (!cert.getExtension(x509.BasicConstraintsExtension)?.ca) bad(`x509_authorities[${i}] is not a CA certificate`);
    return (pem as string).trimEnd() + "\n";
  });

  const jwtKeys = new Map<string, PublicSigningJwk[]>();
  if (typeof b.jwt_keys !== "object" || b.jwt_keys === null || Array.isArray(b.jwt_keys)) bad("jwt_keys is missing");
  for (const [id, keys] of Object.entries(b.jwt_keys as Record<string, unknown>)) {
    try {
      parseWorkloadId(id, trustDomain);
    } catch (err) {
      bad(`jwt_keys has an invalid SPIFFE ID ${JSON.stringify(id)}: ${(err as Error).message}`);
    }
    jwtKeys.set(id, await publicKeyList(keys, `jwt_keys[${id}]`, path));
  }
  const contextKeys = await publicKeyList(b.context_keys, "context_keys", path);
  return { trustDomain, x509Authorities, caPem: x509Authorities.join(""), jwtKeys, contextKeys };
}

export interface WorkloadMaterial {
  workload: WorkloadName;
  spiffeId: string;
  env: string;
  certPem: string;
  keyPem: string;
  notAfter: Date;
  /** Signs per-call JWTs. */
  /** `current` is the newest key; sign with `signingKey()`, which waits out the publish delay. */
  jwt: { current: PrivateSigningJwk; keys: PrivateSigningJwk[]; signingKey(now?: number): PrivateSigningJwk };
}

/**
 * Everything a service needs to start, validated: the leaf is a proper
 * X509-SVID for `workload`, unexpired, matching its key; the JWT key file is
 * sound. Throws PkiError naming the file otherwise (fail closed).
 */
export async function loadWorkloadMaterial(
  dir: string,
  workload: string,
  opts: { trustDomain?: string; now?: Date } = {},
): Promise<WorkloadMaterial> {
  const name = requireWorkload(workload);
  const w = pkiPaths(dir).workload(name);
  const now = opts.now ?? new Date();
  const certPem = await readRequired(w.cert);
  const keyPem = await readRequired(w.key);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch {
    throw new PkiError("not a PEM certificate", w.cert);
  }
  let id;
  try {
    id = inspectPeerLeaf(new Uint8Array(cert.rawData), { trustDomain: opts.trustDomain ?? TRUST_DOMAIN });
  } catch (err) {
    throw new PkiError(`not a valid leaf: ${(err as Error).message}`, w.cert);
  }
  if (id.workload !== name) throw new PkiError(`certificate is for ${id.spiffeId}, not ${name}`, w.cert);
  if (cert.notAfter.getTime() <= now.getTime()) throw new PkiError(`certificate expired on ${cert.notAfter.toISOString()}`, w.cert);
  if (cert.notBefore.getTime() > now.getTime()) throw new PkiError("certificate is not yet valid", w.cert);
  let matches = false;
  try {
    matches = keyMatchesCert(keyPem, cert);
  } catch {
    throw new PkiError("not a PKCS#8 PEM private key", w.key);
  }
  if (!matches) throw new PkiError(`key does not match ${w.cert}`, w.key);
  const file = (await readKeyFile(w.jwt, false))!;
  return {
    workload: name,
    spiffeId: id.spiffeId,
    env: id.env,
    certPem,
    keyPem,
    notAfter: cert.notAfter,
    jwt: { current: currentKey(file), keys: file.keys.map((k) => k.jwk), signingKey: (at?: number) => signingKeyAt(file, at) },
  };
}

// ---- internals ----

async function publicKeyList(value: unknown, label: string, path: string): Promise<PublicSigningJwk[]> {
  if (!Array.isArray(value) || value.length === 0) throw new PkiError(`${label} must be a non-empty array`, path);
  const out: PublicSigningJwk[] = [];
  for (const [i, jwk] of value.entries()) {
    try {
      out.push(await checkPublicJwk(jwk, `${label}[${i}]`));
    } catch (err) {
      throw new PkiError((err as Error).message, path);
    }
  }
  return out;
}

