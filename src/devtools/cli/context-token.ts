/**
 * `tt-rpc context-token`: in development, plays the edge (api-gateway) and
 * prints a signed tenant/user context token (5 minutes at most).
 */
import { parseArgs } from "node:util";
import { createContextTokenMinter } from "@tickettoken/rpc/internal/auth/context-token";
import { DEFAULT_CERTS_DIR, loadContextSigningKey, PkiError } from "@tickettoken/rpc/internal/identity/pki-files";
import { workloadSpiffeId } from "@tickettoken/rpc/internal/identity/spiffe-id";
import { stdio, usageError, type CliIo } from "@tickettoken/services/host/cli-io";

const USAGE = `usage: tt-rpc context-token [--certs <dir>] --tenant <tenant-id> --user <user-id> [--scope <scope>]... [--ttl <seconds>]
  --scope  repeatable, e.g. --scope events:read
  --ttl    lifetime in seconds, 1..300 (default 300)
Prints the token; pass it as the "tt-context" header, and to tt-rpc token --context.`;

export async function runContextToken(args: string[], io: CliIo = stdio): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        certs: { type: "string" },
        tenant: { type: "string" },
        user: { type: "string" },
        scope: { type: "string", multiple: true },
        ttl: { type: "string" },
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
  if (!values.tenant) return usageError(io, "--tenant is required", USAGE);
  if (!values.user) return usageError(io, "--user is required", USAGE);
  const ttl = values.ttl === undefined ? 300 : Number(values.ttl);
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > 300) return usageError(io, "--ttl must be an integer from 1 to 300", USAGE);
  const scopes = values.scope ?? [];
  const bad = scopes.find((s) => !/^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_-]*)+$/.test(s));
  if (bad) return usageError(io, `malformed scope "${bad}" (expected resource:action, e.g. events:read)`, USAGE);
  try {
    const key = await loadContextSigningKey(values.certs ?? DEFAULT_CERTS_DIR);
    const minter = createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: key.signingKey() });
    io.out(await minter.mint({ tenantId: values.tenant, userId: values.user, scopes, ttlSeconds: ttl }));
    return 0;
  } catch (err) {
    if (err instanceof PkiError) {
      io.err(`context-token: ${err.message}\n(run \`tt-rpc certs init\` first?)`);
      return 2;
    }
    throw err;
  }
}
