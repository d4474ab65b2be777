/**
 * Hosts one service in this process, the way `tt-rpc serve` (and so every
 * mesh child, and a container) runs it: identity from the PKI directory
 * (never created here), the service module opened on its own database file
 * under the data directory, and createServer with a durable dedupe store in
 * that database (or Redis, when TT_RPC_REDIS_URL is set).
 */
import { join } from "node:path";
import { createMaterialSource, type MaterialSource } from "@tickettoken/rpc/host";
import type { ServiceName } from "@tickettoken/rpc";
import { flushLogger, type Logger } from "@tickettoken/rpc/host";
import { createServer, type RpcServer } from "@tickettoken/rpc/host";
import { createStateBackends, type StateBackends } from "@tickettoken/rpc/host";
import { serviceModules } from "../index.ts";
import { serviceContracts } from "@tickettoken/contracts";
import { addressVariable } from "@tickettoken/rpc/host";
import { openService, type OpenService } from "../shared/runtime.ts";
import { createSqliteDedupeStore } from "../shared/sqlite-dedupe-store.ts";

export const DEFAULT_DATA_DIR = ".tt-rpc/data";
/** The Connect protocol port of a service: its gRPC port + 1000. */
export const CONNECT_PORT_OFFSET = 1000;
/** The ops HTTP port (/metrics, /healthz, /readyz) in the mesh and in deploy/: the gRPC port + 2000. */
export const OPS_PORT_OFFSET = 2000;

export interface HostOptions {
  readonly service: ServiceName;
  readonly certs: string;
  readonly data: string;
  readonly host: string;
  readonly port: number;
  readonly connectPort?: number;
  /** The plain-HTTP ops port (/metrics, /healthz, /readyz); none when undefined. */
  readonly ops?: { readonly port: number; readonly host: string };
  /** Root logger; the server and the module add `service` to every line. */
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
}

export interface HostedService {
  readonly server: RpcServer;
  /** Replay cache and (with Redis) dedupe store, for readiness. */
  readonly state: StateBackends;
  /** Drains the server (NOT_SERVING for delayMs, then grace), then closes the module (downstream clients, database) and the identity. */
  stop(graceMs?: number, delayMs?: number): Promise<void>;
}

/** `<NAME>_RPC_ADDRESS` of every contract at the mesh's ports (default + offset) on `host`. */
export function meshAddressEnv(host: string, offset: number): Record<string, string> {
  const env: Record<string, string> = {};
  for (const c of serviceContracts) env[addressVariable(c.name)] = `${host}:${c.defaultPort + offset}`;
  return env;
}

export function databasePath(data: string, service: string): string {
  return join(data, `${service}.db`);
}

export async function hostService(opts: HostOptions): Promise<HostedService> {
  const module = serviceModules[opts.service];
  if (!module) throw new Error(`no implementation of ${opts.service} in services/`);
  const logger = opts.logger.child({ service: opts.service });
  const env = opts.env ?? process.env;
  const material: MaterialSource = await createMaterialSource({
    dir: opts.certs,
    workload: opts.service,
    onReloadError: (err) => logger.warn({ err: err.message }, "certificate reload failed; keeping current material"),
  });
  let opened: OpenService | undefined;
  let backends: StateBackends | undefined;
  try {
    opened = openService(module, { identity: material, logger, database: databasePath(opts.data, opts.service), env });
    // Redis (TT_RPC_REDIS_URL) when replicas share state; otherwise replay in memory and dedupe in the
    // service's own database, so a keyed retry after a restart still gets the first answer.
    backends = await createStateBackends({ service: opts.service, env, logger });
    const dedupeStore = backends.status().backend === "redis" ? backends.dedupeStore : createSqliteDedupeStore(opened.runtime.db);
    const server = await createServer({
      identity: material,
      services: [opened.registration],
      host: opts.host,
      port: opts.port,
      ...(opts.connectPort !== undefined ? { connectPort: opts.connectPort } : {}),
      logger: opts.logger,
      dedupeStore,
      replayCache: backends.replayCache,
      ...(opts.ops ? { ops: { ...opts.ops, readiness: readinessChecks(opened, backends) } } : {}),
    });
    const service = opened;
    const state = backends;
    let stopping: Promise<void> | undefined;
    return {
      server,
      state,
      stop(graceMs = 10_000, delayMs = 0) {
        stopping ??= server.stop(graceMs, delayMs).finally(async () => {
          service.close();
          await state.close();
          material.close();
          // The module's own last lines too, before the caller exits.
          await flushLogger(logger);
        });
        return stopping;
      },
    };
  } catch (err) {
    opened?.close();
    await backends?.close();
    material.close();
    throw err;
  }
}

/**
 * Readiness beyond the server's own (listeners up, identity loaded): the
 * service's database answers, and with Redis, the shared state is reachable
 * (keyed calls fail closed without it). A down downstream service is never a
 * reason: its callers' breakers handle that.
 */
function readinessChecks(service: OpenService, state: StateBackends) {
  return [
    { name: "database", check: () => service.runtime.db.prepare("SELECT 1").get() !== undefined },
    { name: "shared-state", check: () => state.status().reachable },
  ];
}

/** Node's error for a port someone else holds: the port is on the error itself. */
export function portInUse(err: unknown): { port: number; address: string } | undefined {
  const e = err as { code?: unknown; port?: unknown; address?: unknown };
  return e && e.code === "EADDRINUSE" ? { port: Number(e.port), address: String(e.address ?? "") } : undefined;
}
