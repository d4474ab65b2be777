/**
 * `tt-rpc token`: prints a call token for grpcurl / buf curl, signed with the
 * given identity's JWT key (normally `ops`). Like every call token it is
 * single-use (jti), accepted only within 15 s of minting (exp is 60 s, the freshness
 * window is shorter); access is still decided by the contract.
 */
import { parseArgs } from "node:util";
import { createCallTokenMinter } from "@tickettoken/rpc/internal/auth/call-token";
import { DEFAULT_CERTS_DIR, loadJwtSigningKeys, PkiError, pkiPaths } from "@tickettoken/rpc/internal/identity/pki-layout";
import { readFile } from "node:fs/promises";
import { parseWorkloadId, workloadSpiffeId } from "@tickettoken/rpc/internal/identity/spiffe-id";
import { isServiceName, isWorkloadName, SERVICE_NAMES, WORKLOAD_NAMES } from "@tickettoken/rpc/internal/identity/workloads";
import { stdio, usageError, type CliIo } from "@tickettoken/services/host/cli-io";
import { knownMethods, METHOD_ALIASES } from "./methods.ts";

const USAGE = `usage: tt-rpc token [--certs <dir>] [--as ops] --aud <service> --method </pkg.Service/Method> [--context <ctx-token>]
  --certs    PKI directory (default ${DEFAULT_CERTS_DIR})
  --as       identity whose JWT key signs the token (default ops; it must be the identity of your client certificate)
  --aud      the service you call, e.g. ticket-service
  --method   the full method path, or an alias: ${Object.keys(METHOD_ALIASES).join(", ")}
  --context  a context token (from tt-rpc context-token) to bind to this call
Prints the token. Use it once: the server refuses a replayed token.`;

export async function runToken(args: string[], io: CliIo = stdio): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        certs: { type: "string" },
        as: { type: "string" },
        aud: { type: "string" },
        method: { type: "string" },
        context: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (err) {
    return usageError(io, (err as Error).message, USAGE);
  }
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  const as = values.as ?? "ops";
  if (!isWorkloadName(as)) return usageError(io, `unknown identity "${as}" (valid: ${WORKLOAD_NAMES.join(", ")})`, USAGE);
  if (!values.aud) return usageError(io, "--aud is required", USAGE);
  if (!isServiceName(values.aud)) return usageError(io, `unknown service "${values.aud}" (valid: ${SERVICE_NAMES.join(", ")})`, USAGE);
  if (!values.method) return usageError(io, "--method is required", USAGE);
  const method = METHOD_ALIASES[values.method] ?? values.method;
  if (!knownMethods().has(method)) {
    return usageError(io, `unknown method "${values.method}": expected /package.Service/Method of a TicketToken contract or an alias`, USAGE);
  }
  try {
    const dir = values.certs ?? DEFAULT_CERTS_DIR;
    const keys = await loadJwtSigningKeys(dir, as);
    const env = await pkiEnv(dir, as);
    const minter = createCallTokenMinter({ identity: workloadSpiffeId(as, env), key: keys.signingKey() });
    const token = await minter.mint({
      audience: workloadSpiffeId(values.aud, env),
      method,
      contextToken: values.context,
    });
    io.out(token);
    return 0;
  } catch (err) {
    if (err instanceof PkiError) {
      io.err(err.message.includes("certs init") ? `token: ${err.message}` : `token: ${err.message}\n(run \`tt-rpc certs init\` first?)`);
      return 2;
    }
    throw err;
  }
}

/**
 * The PKI's env (the `ns` of its SPIFFE IDs), read from the bundle's key list without
 * parsing any certificate: minting needs only the signing key, and the server checks the rest.
 */
async function pkiEnv(dir: string, workload: string): Promise<string> {
  const path = pkiPaths(dir).bundleJson;
  let bundle: { trust_domain?: unknown; jwt_keys?: unknown };
  try {
    bundle = JSON.parse(await readFile(path, "utf8")) as typeof bundle;
  } catch (err) {
    throw new PkiError((err as NodeJS.ErrnoException).code === "ENOENT" ? "missing (run `tt-rpc certs init`)" : "not valid JSON", path);
  }
  const ids = bundle.jwt_keys !== null && typeof bundle.jwt_keys === "object" ? Object.keys(bundle.jwt_keys) : [];
  for (const id of ids) {
    try {
      const parsed = parseWorkloadId(id, String(bundle.trust_domain));
      if (parsed.workload === workload) return parsed.env;
    } catch {
      // not ours to judge here: the server verifies the token
    }
  }
  throw new PkiError(`has no JWT keys for ${workload}`, path);
}
