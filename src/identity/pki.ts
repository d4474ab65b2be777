/**
 * The dev PKI on disk: created by `tt-rpc certs init`, read by every service
 * at start-up and on reload. Same code path in every environment; only the
 * CA differs.
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
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import * as x509 from "./x509.ts";
import { TRUST_DOMAIN, parseWorkloadId, workloadSpiffeId } from "./spiffe-id.ts";
import { WORKLOAD_NAMES, isWorkloadName, type WorkloadName } from "./workloads.ts";
import { inspectPeerLeaf } from "./leaf-checks.ts";
import {
  type CaMaterial,
  type CryptoKey,
  createRootCa,
  importPrivateKeyPem,
  issueWorkloadLeaf,
  keyMatchesCert,
} from "./cert-issue.ts";
import {
  type PrivateSigningJwk,
  type PublicSigningJwk,
  type SigningKeyFile,
  checkPublicJwk,
  currentKey,
  signingKeyAt,
  newKeyFile,
  parseKeyFile,
  rotateKeyFile,
  serializeKeyFile,
  toPublicJwk,
} from "./jwt-keys.ts";

// Lower-level helpers, re-exported for tests and tooling.
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
export { JWT_KEY_GRACE_MS, JWT_KEY_PUBLISH_DELAY_MS, type PrivateSigningJwk, type PublicSigningJwk, type SigningKeyFile } from "./jwt-keys.ts";

const DIR_MODE = 0o700;
const PRIVATE_MODE = 0o600;
const PUBLIC_MODE = 0o644;
const HOUR_MS = 3_600_000;
const DEFAULT_LEAF_HOURS = 24 * 7;
const RENEW_BEFORE_MS = 24 * HOUR_MS;

/** Missing or invalid PKI material; `file` is the path to fix. */
export class PkiError extends Error {
  override name = "PkiError";
  constructor(
    message: string,
    readonly file?: string,
  ) {
    super(file ? `${file}: ${message}` : message);
  }
}

export function pkiPaths(dir: string) {
  return {
    caDir: join(dir, "ca"),
    caCert: join(dir, "ca", "ca.crt"),
    caKey: join(dir, "ca", "ca.key"),
    bundleDir: join(dir, "bundle"),
    bundleCa: join(dir, "bundle", "ca.crt"),
    bundleJson: join(dir, "bundle", "bundle.json"),
    contextDir: join(dir, "context"),
    contextKey: join(dir, "context", "context-signing.jwk.json"),
    workload: (w: string) => ({
      dir: join(dir, w),
      cert: join(dir, w, "tls.crt"),
      key: join(dir, w, "tls.key"),
      jwt: join(dir, w, "jwt-signing.jwk.json"),
    }),
  };
}

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

/** The context-token signing key (api-gateway and the CLI mint context tokens). */
export async function loadContextSigningKey(
  dir: string,
): Promise<{ current: PrivateSigningJwk; keys: PrivateSigningJwk[]; signingKey(now?: number): PrivateSigningJwk }> {
  const file = (await readKeyFile(pkiPaths(dir).contextKey, false))!;
  return { current: currentKey(file), keys: file.keys.map((k) => k.jwk), signingKey: (at?: number) => signingKeyAt(file, at) };
}

// ---- internals ----

function requireWorkload(name: string): WorkloadName {
  if (!isWorkloadName(name)) {
    throw new PkiError(`unknown workload "${name}"; valid names: ${WORKLOAD_NAMES.join(", ")}`);
  }
  return name;
}

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

/** Key file, or undefined when absent and `optional`; invalid content is always an error. */
async function readKeyFile(path: string, optional: boolean): Promise<SigningKeyFile | undefined> {
  const text = optional ? await readOptional(path) : await readRequired(path);
  if (text === undefined) return undefined;
  try {
    return await parseKeyFile(text);
  } catch (err) {
    throw new PkiError((err as Error).message, path);
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

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new PkiError(`cannot read: ${(err as Error).message}`, path);
  }
}

async function readRequired(path: string): Promise<string> {
  const text = await readOptional(path);
  if (text === undefined) throw new PkiError("missing (run `tt-rpc certs init`)", path);
  return text;
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
