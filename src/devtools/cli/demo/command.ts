/**
 * `tt-rpc demo <flow>`: runs one of the platform's flows against the running
 * mesh and prints one line per hop (caller -> service/method, tenant, status,
 * duration, attempt), read back from the services' call logs by the flow's
 * request id.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { DEFAULT_CERTS_DIR, PkiError } from "@tickettoken/rpc/internal/identity/pki-files";
import { serviceContracts } from "@tickettoken/contracts";
import { meshAddressEnv, OPS_PORT_OFFSET } from "@tickettoken/services/host/host";
import { stdio, usageError, type CliIo } from "@tickettoken/services/host/cli-io";
import { createDemoContext } from "./context.ts";
import { FLOWS } from "./flows.ts";
import { formatHop, settledHops } from "./hops.ts";

export const DEFAULT_DATA_DIR = ".tt-rpc/data";

/** The largest offset `tt-rpc mesh` accepts (its highest port, an ops port, stays a port): the demo takes any mesh's. */
const MAX_PORT_OFFSET = 65535 - (Math.max(...serviceContracts.map((c) => c.defaultPort)) + OPS_PORT_OFFSET);

const USAGE = `usage: tt-rpc demo <flow> [--certs <dir>] [--data <dir>] [--port-offset <n>] [--decline] [--ticket <id>] [--order <id>] [--repeat <n>]
flows:
${Object.entries(FLOWS).map(([n, f]) => `  ${n.padEnd(13)} ${f.about}`).join("\n")}
  --certs    PKI directory (default ${DEFAULT_CERTS_DIR})
  --data     the mesh's data directory, whose logs/ hold the hops (env TT_RPC_DATA_DIR; default ${DEFAULT_DATA_DIR})
  --decline  purchase: the card is declined (nothing is issued)
  --repeat   event-create: create n events (stop venue-service first to watch the breaker open)
  --port-offset  the mesh's --port-offset (services on their default ports + N)
Addresses: <NAME>_RPC_ADDRESS / <NAME>_SERVICE_URL, else the mesh's default ports (+ --port-offset).`;

export async function runDemo(args: string[], io: CliIo = stdio, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        certs: { type: "string" },
        data: { type: "string" },
        decline: { type: "boolean" },
        ticket: { type: "string" },
        order: { type: "string" },
        repeat: { type: "string" },
        "port-offset": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (err) {
    return usageError(io, (err as Error).message, USAGE);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.out(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return usageError(io, "name exactly one flow", USAGE);
  const flowName = positionals[0]!;
  const flow = FLOWS[flowName];
  if (!flow) return usageError(io, `no flow "${flowName}" (known: ${Object.keys(FLOWS).join(", ")})`, USAGE);
  const repeat = values.repeat === undefined ? undefined : Number(values.repeat);
  if (repeat !== undefined && (!Number.isInteger(repeat) || repeat < 1 || repeat > 50)) return usageError(io, "--repeat must be an integer from 1 to 50", USAGE);
  const offset = values["port-offset"] === undefined ? 0 : Number(values["port-offset"]);
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_PORT_OFFSET) return usageError(io, `--port-offset must be an integer from 0 to ${MAX_PORT_OFFSET}`, USAGE);
  if (offset !== 0) env = { ...meshAddressEnv("127.0.0.1", offset), ...env };
  const logDir = join(resolve(values.data ?? env.TT_RPC_DATA_DIR ?? DEFAULT_DATA_DIR), "logs");

  let d;
  try {
    d = await createDemoContext({ certs: resolve(values.certs ?? env.TT_RPC_CERTS_DIR ?? DEFAULT_CERTS_DIR), env, say: (l) => io.out(`  ${l}`), flow: flowName });
  } catch (err) {
    if (err instanceof PkiError) {
      io.err(`demo: ${err.message}\n(start the mesh first: npm run mesh)`);
      return 2;
    }
    throw err;
  }
  io.out(`${flowName}: ${flow.about}`);
  io.out(`request id ${d.requestId}`);
  let ok = false;
  try {
    ok = await flow.run(d, {
      ...(values.decline ? { decline: true } : {}),
      ...(values.ticket ? { ticket: values.ticket } : {}),
      ...(values.order ? { order: values.order } : {}),
      ...(repeat ? { repeat } : {}),
    });
  } catch (err) {
    io.err(`demo ${flowName}: ${(err as Error).message}`);
  } finally {
    d.close();
  }
  const hops = await settledHops(logDir, d.requestId, 1);
  io.out("hops (caller -> service, method, tenant, status, duration, attempt):");
  if (hops.length === 0) io.out(`  (no call log lines for this request id in ${logDir}: is the mesh running with --data there?)`);
  for (const h of hops) io.out(`  ${formatHop(h)}`);
  io.out(ok ? `${flowName}: done` : `${flowName}: FAILED`);
  return ok ? 0 : 1;
}
