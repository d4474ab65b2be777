/**
 * The PKI directory's layout and its plain files (key files, paths, errors):
 * everything that needs no certificate parsing, so a command that only signs
 * (`tt-rpc token`) starts fast. pki-files.ts adds the certificate and bundle checks.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { WORKLOAD_NAMES, isWorkloadName, type WorkloadName } from "./workloads.ts";
import { currentKey, parseKeyFile, signingKeyAt, type PrivateSigningJwk, type SigningKeyFile } from "./jwt-keys.ts";

/** Where `tt-rpc certs init` writes the dev PKI, and where services look by default. */
export const DEFAULT_CERTS_DIR = ".tt-rpc/certs";

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


/** Signing keys of one key file: the newest, all of them, and the one to sign with now (publish delay). */
export interface SigningKeys {
  current: PrivateSigningJwk;
  keys: PrivateSigningJwk[];
  signingKey(now?: number): PrivateSigningJwk;
}

/** The context-token signing key (api-gateway and the CLI mint context tokens). */
export async function loadContextSigningKey(
  dir: string,
): Promise<SigningKeys> {
  const file = (await readKeyFile(pkiPaths(dir).contextKey, false))!;
  return { current: currentKey(file), keys: file.keys.map((k) => k.jwk), signingKey: (at?: number) => signingKeyAt(file, at) };
}

/** A workload's per-call JWT signing keys, without its certificate (the token CLI's fast path). */
export async function loadJwtSigningKeys(dir: string, workload: string): Promise<SigningKeys> {
  const file = (await readKeyFile(pkiPaths(dir).workload(requireWorkload(workload)).jwt, false))!;
  return { current: currentKey(file), keys: file.keys.map((k) => k.jwk), signingKey: (at?: number) => signingKeyAt(file, at) };
}

export function requireWorkload(name: string): WorkloadName {
  if (!isWorkloadName(name)) {
    throw new PkiError(`unknown workload "${name}"; valid names: ${WORKLOAD_NAMES.join(", ")}`);
  }
  return name;
}

/** Key file, or undefined when absent and `optional`; invalid content is always an error. */
export async function readKeyFile(path: string, optional: boolean): Promise<SigningKeyFile | undefined> {
  const text = optional ? await readOptional(path) : await readRequired(path);
  if (text === undefined) return undefined;
  try {
    return await parseKeyFile(text);
  } catch (err) {
    throw new PkiError((err as Error).message, path);
  }
}

export async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new PkiError(`cannot read: ${(err as Error).message}`, path);
  }
}

export async function readRequired(path: string): Promise<string> {
  const text = await readOptional(path);
  if (text === undefined) throw new PkiError("missing (run `tt-rpc certs init`)", path);
  return text;
}

