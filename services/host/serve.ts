/**
 * `tt-rpc serve <service>`: run one service the way a deployment does (and
 * the way each mesh child runs). It never creates keys: without its
 * certificate, key, JWT key or a trust bundle for our trust domain it exits
 * non-zero naming the missing piece. Logs are pino JSON lines on stdout.
 *
 * Exit codes: 0 after a drain on SIGTERM/SIGINT (or when the mesh that
 * started it goes away), 1 missing or inconsistent PKI material, 2 bad usage
 * or a bad setting in the environment (checked first, every problem listed),
 * 3 port already in use.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { PkiError } from "@tickettoken/rpc/host";
import { serviceContracts } from "@tickettoken/contracts";
import { isServiceName } from "@tickettoken/rpc";
import { createLogger } from "@tickettoken/rpc/host";
import { DEFAULT_CERTS_DIR } from "@tickettoken/rpc/host";
import { DEFAULT_DATA_DIR, hostService, portInUse, type HostedService } from "./host.ts";
import { stdio, usageError, type CliIo } from "./cli-io.ts";
import { ConfigError, loadConfig, type LoadedConfig } from "./config-load.ts";

const USAGE = `usage: tt-rpc serve <service> [--certs <dir>] [--data <dir>] [--host <ip>] [--port <n>] [--connect-port <n>] [--ops-port <n>] [--ops-host <ip>]
  --certs         PKI directory (env TT_RPC_CERTS_DIR; default ${DEFAULT_CERTS_DIR}); never created by serve
  --data          data directory: <data>/<service>.db (env TT_RPC_DATA_DIR; default ${DEFAULT_DATA_DIR})
  --host          address to bind (default 127.0.0.1)
  --port          gRPC port (default: the contract's port)
  --connect-port  also serve the Connect protocol (JSON over HTTP) on this port
  --ops-port      plain-HTTP /metrics, /healthz, /readyz on this port (env TT_RPC_OPS_PORT; default: none)
  --ops-host      its bind address (env TT_RPC_OPS_HOST; default 127.0.0.1; 0.0.0.0 in a pod for kubelet)
On SIGTERM/SIGINT: NOT_SERVING while still serving for TT_RPC_DRAIN_DELAY_MS (default 5000), then in-flight calls get up to 10 s.
Downstream services are found through <NAME>_RPC_ADDRESS / <NAME>_SERVICE_URL (default: the mesh ports).
Every setting of the environment is checked first (README "Configuration"); a bad one: exit 2, naming it.
In a container: \`tt-service <service> [options]\`, the same command from @tickettoken/services without the dev tools.`;

/** Exit code for a port already in use: the mesh tells it apart from a crash (no restart). */
export const EXIT_PORT_IN_USE = 3;
/** How long a stopping server lets calls in flight finish. */
const DRAIN_GRACE_MS = 10_000;

function port(value: string | undefined, name: string): number | undefined | Error {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
}

export async function runServe(args: string[], io: CliIo = stdio, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        certs: { type: "string" },
        data: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        "connect-port": { type: "string" },
        "ops-port": { type: "string" },
        "ops-host": { type: "string" },
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
  const known = serviceContracts.map((c) => c.name as string);
  if (positionals.length !== 1) return usageError(io, "name exactly one service", USAGE);
  const service = positionals[0]!;
  if (!isServiceName(service) || !known.includes(service)) return usageError(io, `no contract for "${service}" (known: ${known.join(", ")})`, USAGE);
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`${service}: refusing to start: ${err.message}`);
    return 2;
  }
  for (const warning of loaded.warnings) io.err(`${service}: warning: ${warning}`);
  const settings = loaded.config.values;
  const grpcPort = port(values.port, "--port");
  const connectPort = port(values["connect-port"], "--connect-port");
  if (grpcPort instanceof Error) return usageError(io, grpcPort.message, USAGE);
  if (connectPort instanceof Error) return usageError(io, connectPort.message, USAGE);
  const opsPort = values["ops-port"] !== undefined ? port(values["ops-port"], "--ops-port") : settings.TT_RPC_OPS_PORT;
  if (opsPort instanceof Error) return usageError(io, opsPort.message, USAGE);
  const opsHost = values["ops-host"] ?? settings.TT_RPC_OPS_HOST;
  const drainDelayMs = settings.TT_RPC_DRAIN_DELAY_MS;
  const contract = serviceContracts.find((c) => c.name === service)!;
  const certs = resolve(values.certs ?? settings.TT_RPC_CERTS_DIR);
  const data = resolve(values.data ?? settings.TT_RPC_DATA_DIR);
  const host = values.host ?? "127.0.0.1";
  let hosted: HostedService;
  try {
    hosted = await hostService({
      service,
      certs,
      data,
      host,
      port: grpcPort ?? contract.defaultPort,
      ...(connectPort !== undefined ? { connectPort } : {}),
      ...(opsPort !== undefined ? { ops: { port: opsPort, host: opsHost } } : {}),
      logger: createLogger({ level: settings.TT_RPC_LOG_LEVEL }),
      env,
    });
  } catch (err) {
    if (err instanceof PkiError) {
      io.err(`${service}: refusing to start: ${err.message}`);
      return 1;
    }
    const inUse = portInUse(err);
    if (inUse) {
      io.err(`${service}: port ${inUse.port} on ${inUse.address || host} is already in use (another mesh running? start it with --port-offset <n>)`);
      return EXIT_PORT_IN_USE;
    }
    throw err;
  }
  // Handlers first: whoever waits for the readiness line may signal at once.
  stopOnSignals(hosted, drainDelayMs, io);
  const { server } = hosted;
  io.out(`${service} serving gRPC on ${host}:${server.port}${server.connectPort ? `, Connect on ${server.connectPort}` : ""}${server.opsPort ? `, ops HTTP on ${opsHost}:${server.opsPort}` : ""}`);
  // Started by the mesh: tell it where we listen (it then checks health over mTLS itself).
  process.send?.({ type: "ready", port: server.port, connectPort: server.connectPort ?? null, opsPort: server.opsPort ?? null });
  return -1;
}

/**
 * Drains on SIGINT/SIGTERM, and when the mesh that started us goes away (its
 * IPC channel closes, even if it was SIGKILLed), then exits 0.
 */
function stopOnSignals(hosted: HostedService, drainDelayMs: number, io: CliIo): void {
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) return;
    stopping = true;
    io.out(`${reason}: draining...`);
    hosted.stop(DRAIN_GRACE_MS, drainDelayMs).then(
      () => process.exit(0),
      (err: unknown) => {
        io.err(String(err));
        process.exit(1);
      },
    );
  };
  // `on`, not `once`: a second signal during the drain must not kill the process mid-drain.
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  if (process.connected) {
    process.on("disconnect", () => {
      // The mesh read our pipes: with it gone, a write must not turn the drain into a crash.
      const ignore = () => {};
      process.stdout.on("error", ignore);
      process.stderr.on("error", ignore);
      stop("mesh gone");
    });
  }
}
