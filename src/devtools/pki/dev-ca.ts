/**
 * The dev PKI on disk: created and rotated by `tt-rpc certs`. Services read
 * the same layout with the runtime's loaders (@tickettoken/rpc identity/pki-files.ts),
 * whatever CA issued it.
 *
 * Layout under <dir> (directories 0700, private files 0600, public 0644):
 *   ca/ca.crt                          root CA certificate (PEM)
 *   ca/ca.key                          root CA key (PKCS#8 PEM, private)
 *   <workload>/tls.crt                 leaf X509-SVID (PEM)
 *   <workload>/tls.key                 leaf key (PKCS#8 PEM, private)
 *   <workload>/jwt-signing.jwk.json    per-call JWT signing keys (private; format in jwt-keys.ts)
 *   context/context-signing.jwk.json   context-token signing keys (same format)
 *   bundle/ca.crt                      trust roots (PEM, for -cacert / --cacert)
 *   bundle/bundle.json                 { trust_domain, x509_authorities: [PEM],
 *                                        jwt_keys: { <spiffe id>: [public JWK] },
 *                                        context_keys: [public JWK] }
 * <workload> is every name in WORKLOAD_NAMES (21 services and "ops").
 *
 * Every file is written to a temp file and renamed into place, so a reloading
 * reader sees the old or the new file, never half of one. tls.key and tls.crt
 * are two renames: a reader must check the pair matches (loadWorkloadMaterial
 * does) and retry. Not safe for two writers at once on the same dir.
 */
import { chmod, mkdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import * as x509 from "@tickettoken/rpc/internal/identity/x509";
import { TRUST_DOMAIN, parseWorkloadId, workloadSpiffeId } from "@tickettoken/rpc/internal/identity/spiffe-id";
import { WORKLOAD_NAMES } from "@tickettoken/rpc/internal/identity/workloads";
import { inspectPeerLeaf } from "@tickettoken/rpc/internal/identity/leaf-checks";
import {
  type CaMaterial,
  type CryptoKey,
  createRootCa,
  importPrivateKeyPem,
  issueWorkloadLeaf,
  keyMatchesCert,
} from "./cert-issue.ts";
import {
  type PublicSigningJwk,
  type SigningKeyFile,
  toPublicJwk,
} from "@tickettoken/rpc/internal/identity/jwt-keys";
import { newKeyFile, rotateKeyFile, serializeKeyFile } from "./key-files.ts";

import { PkiError, pkiPaths, loadTrustBundle, requireWorkload, readKeyFile, readOptional, readRequired } from "@tickettoken/rpc/internal/identity/pki-files";

// The loaders services use, and lower-level helpers, re-exported for tests and tooling.
export {
  DEFAULT_CERTS_DIR,
  PkiError,
  pkiPaths,
  loadTrustBundle,
  loadWorkloadMaterial,
  loadContextSigningKey,
  type TrustBundle,
  type WorkloadMaterial,
} from "@tickettoken/rpc/internal/identity/pki-files";
export {
  createRootCa,
  issueCertificate,
  issueWorkloadLeaf,
  generateEcKeyPair,
  keyMatchesCert,
  type CaMaterial,
  type CertSpec,
  type IssuedCert,
} from "./cert-issue.ts";
export { JWT_KEY_GRACE_MS, JWT_KEY_PUBLISH_DELAY_MS, type PrivateSigningJwk, type PublicSigningJwk, type SigningKeyFile } from "@tickettoken/rpc/internal/identity/jwt-keys";

const DIR_MODE = 0o700;
const PRIVATE_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const HOUR_MS = 3_600_000;
const DEFAULT_LEAF_HOURS = 24 * 7;
const RENEW_BEFORE_MS = 24 * HOUR_MS;


export interface InitPkiOptions {
  dir: string;
  env?: string;
  trustDomain?: string;
  leafValidityHours?: number;
  now?: Date;
}

export interface InitPkiResult {
  /** Paths written by this run; empty when everything was already in place. */
  written: string[];
}

/**
 * Create whatever is missing and renew what must be; keep everything else.
 * A leaf is reissued when missing, unreadable, not matching its key, not
 * signed by the current CA, carrying another identity, or within 24 h of
 * expiry (half its lifetime, for lifetimes under 48 h, so re-runs stay
 * no-ops). Existing CA and JWT keys are never replaced; a broken one is an
 * error naming the file.
 */
export async function initPki(opts: InitPkiOptions): Promise<InitPkiResult> {
  const env = opts.env ?? "dev";
  const trustDomain = opts.trustDomain ?? TRUST_DOMAIN;
  const now = opts.now ?? new Date();
  const validityHours = opts.leafValidityHours ?? DEFAULT_LEAF_HOURS;
  if (!(validityHours > 0)) throw new PkiError("leafValidityHours must be positive");
  workloadSpiffeId("ops", env, trustDomain); // validates env and trust domain up front

  const p = pkiPaths(opts.dir);
  const written: string[] = [];
  const put = async (path: string, data: string, mode: number) => {
    if (await writeIfChanged(path, data, mode)) written.push(path);
  };

  for (const d of [opts.dir, p.caDir, p.bundleDir, p.contextDir, ...WORKLOAD_NAMES.map((w) => p.workload(w).dir)]) {
    await ensureDir(d);
  }

  let ca = await readCa(opts.dir);
  if (!ca) {
    const created = await createRootCa({ commonName: `TicketToken ${env} root CA`, now });
    await put(p.caKey, created.keyPem, PRIVATE_MODE);
    await put(p.caCert, created.certPem, PUBLIC_MODE);
    ca = created;
  }
  if (ca.cert.notAfter.getTime() <= now.getTime()) {
    throw new PkiError(`CA expired on ${ca.cert.notAfter.toISOString()}; remove ${p.caDir} to create a new one`, p.caCert);
  }

  const renewBefore = Math.min(RENEW_BEFORE_MS, (validityHours * HOUR_MS) / 2);
  for (const workload of WORKLOAD_NAMES) {
    const w = p.workload(workload);
    const expected = workloadSpiffeId(workload, env, trustDomain);
    if (!(await leafIsGood(w, ca, expected, trustDomain, now, renewBefore))) {
      const leaf = await issueWorkloadLeaf(ca, { workload, env, trustDomain, validityHours, now });
      await put(w.key, leaf.keyPem, PRIVATE_MODE);
      await put(w.cert, leaf.certPem, PUBLIC_MODE);
    }
    await ensureMode(w.key, PRIVATE_MODE);
    await ensureMode(w.cert, PUBLIC_MODE);
    if (!(await readKeyFile(w.jwt, true))) await put(w.jwt, serializeKeyFile(await newKeyFile(now)), PRIVATE_MODE);
    await ensureMode(w.jwt, PRIVATE_MODE);
  }
  if (!(await readKeyFile(p.contextKey, true))) {
    await put(p.contextKey, serializeKeyFile(await newKeyFile(now)), PRIVATE_MODE);
  }
  await ensureMode(p.contextKey, PRIVATE_MODE);
  await ensureMode(p.caKey, PRIVATE_MODE);
  await ensureMode(p.caCert, PUBLIC_MODE);

  for (const [path, data] of await buildBundleFiles(opts.dir, env, trustDomain)) await put(path, data, PUBLIC_MODE);
  return { written };
}

/** New key and certificate for one workload, same identity as the bundle says. */
export async function rotateLeaf(opts: {
  dir: string;
  workload: string;
  leafValidityHours?: number;
  now?: Date;
}): Promise<{ spiffeId: string; notAfter: Date }> {
  const workload = requireWorkload(opts.workload);
  const { env, trustDomain } = await readSettings(opts.dir);
  const ca = await readCa(opts.dir);
  if (!ca) throw new PkiError("CA is missing; run `tt-rpc certs init` first", pkiPaths(opts.dir).caCert);
  const w = pkiPaths(opts.dir).workload(workload);
  const leaf = await issueWorkloadLeaf(ca, {
    workload,
    env,
    trustDomain,
    validityHours: opts.leafValidityHours ?? DEFAULT_LEAF_HOURS,
    ...(opts.now ? { now: opts.now } : {}),
  });
  await ensureDir(w.dir);
  await writeAtomic(w.key, leaf.keyPem, PRIVATE_MODE);
  await writeAtomic(w.cert, leaf.certPem, PUBLIC_MODE);
  return { spiffeId: workloadSpiffeId(workload, env, trustDomain), notAfter: leaf.cert.notAfter };
}

export interface RotateKeyOptions {
  dir: string;
  now?: Date;
  graceMs?: number;
}

/** Add a new current JWT signing key for `workload` (rotation rule in jwt-keys.ts). */
export async function rotateJwtKey(opts: RotateKeyOptions & { workload: string }): Promise<{ kid: string; published: string[] }> {
  const workload = requireWorkload(opts.workload);
  return rotateKeyAt(opts, pkiPaths(opts.dir).workload(workload).jwt);
}

/** Add a new current context-token signing key (same rule). */
export function rotateContextKey(opts: RotateKeyOptions): Promise<{ kid: string; published: string[] }> {
  return rotateKeyAt(opts, pkiPaths(opts.dir).contextKey);
}

async function rotateKeyAt(opts: RotateKeyOptions, path: string): Promise<{ kid: string; published: string[] }> {
  const { env, trustDomain } = await readSettings(opts.dir);
  const file = await readKeyFile(path, false);
  const next = await rotateKeyFile(file!, opts);
  // Publish first, then start signing: verifiers that reload the bundle
  // before the signer reloads its key never see an unknown kid.
  const bundle = await buildBundleFiles(opts.dir, env, trustDomain, new Map([[path, next]]));
  for (const [p, data] of bundle) await writeIfChanged(p, data, PUBLIC_MODE);
  await writeAtomic(path, serializeKeyFile(next), PRIVATE_MODE);
  return { kid: next.current, published: next.keys.map((k) => k.jwk.kid) };
}

// ---- internals ----

/** Trust domain and env of an initialised PKI, taken from its bundle. */
async function readSettings(dir: string): Promise<{ env: string; trustDomain: string }> {
  const path = pkiPaths(dir).bundleJson;
  const bundle = await loadTrustBundle(path);
  const first = bundle.jwtKeys.keys().next();
  if (first.done) throw new PkiError("has no workload keys; run `tt-rpc certs init`", path);
  return { env: parseWorkloadId(first.value, bundle.trustDomain).env, trustDomain: bundle.trustDomain };
}

async function readCa(dir: string): Promise<CaMaterial | undefined> {
  const p = pkiPaths(dir);
  const [certPem, keyPem] = [await readOptional(p.caCert), await readOptional(p.caKey)];
  if (certPem === undefined && keyPem === undefined) return undefined;
  // Half a CA is never silently replaced: leaves elsewhere may chain to it.
  if (certPem === undefined) throw new PkiError("CA certificate missing while its key exists", p.caCert);
  if (keyPem === undefined) throw new PkiError("CA key missing while its certificate exists", p.caKey);
  let cert: x509.X509Certificate;
  try {
    cert = new x509.X509Certificate(certPem);
  } catch {
    throw new PkiError("not a PEM certificate", p.caCert);
  }
  let privateKey: CryptoKey;
  try {
    if (!keyMatchesCert(keyPem, cert)) throw new PkiError(`key does not match ${p.caCert}`, p.caKey);
    privateKey = await importPrivateKeyPem(keyPem);
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError("not a PKCS#8 P-256 private key", p.caKey);
  }
  return { cert, privateKey };
}

async function leafIsGood(
  w: ReturnType<ReturnType<typeof pkiPaths>["workload"]>,
  ca: CaMaterial,
  expectedId: string,
  trustDomain: string,
  now: Date,
  renewBefore: number,
): Promise<boolean> {
  const [certPem, keyPem] = [await readOptional(w.cert), await readOptional(w.key)];
  if (certPem === undefined || keyPem === undefined) return false;
  try {
    const cert = new x509.X509Certificate(certPem);
    const id = inspectPeerLeaf(new Uint8Array(cert.rawData), { trustDomain });
    return (
      id.spiffeId === expectedId &&
      keyMatchesCert(keyPem, cert) &&
      cert.notAfter.getTime() - now.getTime() > renewBefore &&
      (await cert.verify({ publicKey: ca.cert.publicKey, signatureOnly: true }))
    );
  } catch {
    return false; // unreadable: reissue
  }
}

/** bundle/ca.crt and bundle/bundle.json contents, from the files on disk (plus overrides). */
async function buildBundleFiles(
  dir: string,
  env: string,
  trustDomain: string,
  override = new Map<string, SigningKeyFile>(),
): Promise<Array<[string, string]>> {
  const p = pkiPaths(dir);
  const caPem = (await readRequired(p.caCert)).trimEnd() + "\n";
  const keysAt = async (path: string) => {
    const file = override.get(path) ?? (await readKeyFile(path, false))!;
    return file.keys.map((k) => toPublicJwk(k.jwk));
  };
  const jwtKeys: Record<string, PublicSigningJwk[]> = {};
  for (const w of WORKLOAD_NAMES) jwtKeys[workloadSpiffeId(w, env, trustDomain)] = await keysAt(p.workload(w).jwt);
  const bundle = {
    trust_domain: trustDomain,
    x509_authorities: [caPem],
    jwt_keys: jwtKeys,
    context_keys: await keysAt(p.contextKey),
  };
  return [
    [p.bundleCa, caPem],
    [p.bundleJson, JSON.stringify(bundle, null, 2) + "\n"],
  ];
}

async function ensureDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true, mode: DIR_MODE });
  await ensureMode(path, DIR_MODE);
}

async function ensureMode(path: string, mode: number): Promise<void> {
  if (((await stat(path)).mode & 0o777) !== mode) await chmod(path, mode);
}

/** Write only when the content differs, so re-runs leave files untouched. */
async function writeIfChanged(path: string, data: string, mode: number): Promise<boolean> {
  if ((await readOptional(path)) === data) {
    await ensureMode(path, mode);
    return false;
  }
  await writeAtomic(path, data, mode);
  return true;
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`;
  try {
    // "wx" + mode: the secret is never readable by others, not even briefly.
    await writeFile(tmp, data, { mode, flag: "wx" });
    await chmod(tmp, mode); // the umask may have narrowed it
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new PkiError(`cannot write: ${(err as Error).message}`, path);
  }
}
