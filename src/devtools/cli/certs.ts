/**
 * `tt-rpc certs ...`: manage the dev PKI (layout documented in
 * src/runtime/identity/pki-files.ts). `args` are the words after "certs". Prints only
 * public facts (names, SPIFFE IDs, expiry, kids), never key material.
 * Exit codes: 0 success, 2 bad usage or failure.
 */
import { parseArgs } from "node:util";
import { readFile } from "node:fs/promises";
import * as x509 from "@tickettoken/rpc/internal/identity/x509";
import { PkiError, initPki, loadTrustBundle, pkiPaths, rotateJwtKey, rotateLeaf } from "../pki/dev-ca.ts";
import { WORKLOAD_NAMES, isWorkloadName } from "@tickettoken/rpc/internal/identity/workloads";
import { SpiffeIdError } from "@tickettoken/rpc/internal/identity/spiffe-id";
import { inspectPeerLeaf } from "@tickettoken/rpc/internal/identity/leaf-checks";

import { DEFAULT_CERTS_DIR } from "@tickettoken/rpc/internal/identity/pki-files";
export { DEFAULT_CERTS_DIR };

const USAGE = `usage:
  tt-rpc certs init [--dir <dir>] [--env <env>]   create or renew the dev PKI
  tt-rpc certs rotate <workload> [--dir <dir>]     new TLS key and certificate
  tt-rpc certs rotate-jwt <workload> [--dir <dir>] new JWT signing key (previous stays published)
  tt-rpc certs show [--dir <dir>]                  list identities and expiry
default --dir: ${DEFAULT_CERTS_DIR}, default --env: dev`;

export interface CertsIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const defaultIo: CertsIo = { out: (l) => console.log(l), err: (l) => console.error(l) };

export async function runCerts(args: string[], io: CertsIo = defaultIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { dir: { type: "string" }, env: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (err) {
    return usageError(io, (err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const dir = values.dir ?? DEFAULT_CERTS_DIR;
  if (dir === "") return usageError(io, "--dir must not be empty");
  if (values.env !== undefined && command !== "init") return usageError(io, "--env only applies to `certs init`");

  try {
    switch (command) {
      case "init":
        if (rest.length) return usageError(io, `unexpected argument: ${rest[0]}`);
        return await init(io, dir, values.env ?? "dev");
      case "rotate":
      case "rotate-jwt": {
        const workload = singleWorkload(io, command, rest);
        if (workload === undefined) return 2;
        if (command === "rotate") {
          const r = await rotateLeaf({ dir, workload });
          io.out(`rotated TLS certificate for ${r.spiffeId}, expires ${r.notAfter.toISOString()}`);
        } else {
          const r = await rotateJwtKey({ dir, workload });
          io.out(`rotated JWT key for ${workload}: current kid ${r.kid}; published ${r.published.join(", ")}`);
        }
        return 0;
      }
      case "show":
        if (rest.length) return usageError(io, `unexpected argument: ${rest[0]}`);
        return await show(io, dir);
      case undefined:
        return usageError(io, "missing command");
      default:
        return usageError(io, `unknown command: ${command}`);
    }
  } catch (err) {
    if (err instanceof PkiError || err instanceof SpiffeIdError) {
      io.err(`certs ${command}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}

async function init(io: CertsIo, dir: string, env: string): Promise<number> {
  const { written } = await initPki({ dir, env });
  if (written.length === 0) io.out(`PKI in ${dir} is up to date; nothing changed`);
  else {
    io.out(`PKI in ${dir}: wrote ${written.length} file(s)`);
    for (const f of written) io.out(`  ${f}`);
  }
  io.out(`trust roots for grpcurl/curl: ${pkiPaths(dir).bundleCa}`);
  return 0;
}

async function show(io: CertsIo, dir: string): Promise<number> {
  const p = pkiPaths(dir);
  const bundle = await loadTrustBundle(p.bundleJson);
  const ca = new x509.X509Certificate(bundle.x509Authorities[0]!);
  io.out(`trust domain: ${bundle.trustDomain}`);
  io.out(`CA: ${ca.subject}, expires ${ca.notAfter.toISOString()}`);
  io.out(`context keys: ${bundle.contextKeys.map((k) => k.kid).join(", ")}`);
  const now = Date.now();
  for (const w of WORKLOAD_NAMES) {
    io.out(`${w.padEnd(22)} ${await describeLeaf(p.workload(w).cert, bundle.trustDomain, now)}`);
  }
  return 0;
}

async function describeLeaf(path: string, trustDomain: string, now: number): Promise<string> {
  let pem;
  try {
    pem = await readFile(path, "utf8");
  } catch {
    return "MISSING tls.crt";
  }
  try {
    const cert = new x509.X509Certificate(pem);
    const id = inspectPeerLeaf(new Uint8Array(cert.rawData), { trustDomain });
    const hours = Math.floor((cert.notAfter.getTime() - now) / 3_600_000);
    const state = hours < 0 ? "EXPIRED" : `${hours} h left`;
    return `${id.spiffeId}  expires ${cert.notAfter.toISOString()} (${state})`;
  } catch (err) {
    return `INVALID tls.crt: ${(err as Error).message}`;
  }
}

function singleWorkload(io: CertsIo, command: string, rest: string[]): string | undefined {
  if (rest.length !== 1) {
    usageError(io, `certs ${command} takes exactly one workload name`);
    return undefined;
  }
  const name = rest[0]!;
  if (!isWorkloadName(name)) {
    io.err(`unknown workload "${name}"; valid names:\n  ${WORKLOAD_NAMES.join("\n  ")}`);
    return undefined;
  }
  return name;
}

function usageError(io: CertsIo, message: string): number {
  io.err(`certs: ${message}`);
  io.err(USAGE);
  return 2;
}
