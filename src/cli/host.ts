/**
 * Hosts one service in this process, the way `tt-rpc serve` (and so every
 * mesh child, and a container) runs it: identity from the PKI directory
 * (never created here), the service module opened on its own database file
 * under the data directory, and createServer with a durable dedupe store in
 * that database. A contract without a module answers UNIMPLEMENTED.
 */
import { join } from "node:path";
import type { ServiceContract } from "../contract/types.ts";
import { serviceContracts } from "../gen/contracts.ts";
import { createMaterialSource, type MaterialSource } from "../identity/material.ts";
import type { ServiceName } from "../identity/workloads.ts";
import type { Logger } from "../observability/logger.ts";
import { implement, type ServiceRegistration } from "../server/routes.ts";
import { createServer, type RpcServer } from "../server/server.ts";
import type { DedupeStore } from "../resilience/dedupe-store.ts";
import { implementations, serviceModules } from "../../services/index.ts";
import { openService, type OpenService } from "../../services/shared/runtime.ts";
import { createSqliteDedupeStore } from "../../services/shared/sqlite-dedupe-store.ts";

export const DEFAULT_DATA_DIR = ".tt-rpc/data";
/** The Connect protocol port of a service: its gRPC port + 1000. */
export const CONNECT_PORT_OFFSET = 1000;

export interface HostOptions {
  readonly service: ServiceName;
  readonly certs: string;
  readonly data: string;
  readonly host: string;
  readonly port: number;
  readonly connectPort?: number;
  /** Root logger; the server and the module add `service` to every line. */
  readonly logger: Logger;
  readonly env?: NodeJS.ProcessEnv;
}

export interface HostedService {
  readonly server: RpcServer;
  /** What serves the contract: a module with its database, the legacy in-memory implementation, or nothing. */
  readonly implementation: "module" | "legacy" | "none";
  /** Drains the server (grace), then closes the module (downstream clients, database) and the identity. */
  stop(graceMs?: number): Promise<void>;
}

export function databasePath(data: string, service: string): string {
  return join(data, `${service}.db`);
}

export async function hostService(opts: HostOptions): Promise<HostedService> {
  const contract = serviceContracts.find((c) => c.name === opts.service);
  if (!contract) throw new Error(`no contract for ${opts.service}`);
  const logger = opts.logger.child({ service: opts.service });
  const material: MaterialSource = await createMaterialSource({
    dir: opts.certs,
    workload: opts.service,
    onReloadError: (err) => logger.warn({ err: err.message }, "certificate reload failed; keeping current material"),
  });
  let opened: OpenService | undefined;
  try {
    const module = serviceModules[opts.service];
    let registration: ServiceRegistration;
    let dedupeStore: DedupeStore | undefined;
    if (module) {
      opened = openService(module, {
        identity: material,
        logger,
        database: databasePath(opts.data, opts.service),
        env: opts.env ?? process.env,
      });
      registration = opened.registration;
      dedupeStore = createSqliteDedupeStore(opened.runtime.db);
    } else {
      registration = implementations[opts.service]?.() ?? implement(contract as ServiceContract, {});
    }
    const server = await createServer({
      identity: material,
      services: [registration],
      host: opts.host,
      port: opts.port,
      ...(opts.connectPort !== undefined ? { connectPort: opts.connectPort } : {}),
      logger: opts.logger,
      ...(dedupeStore ? { dedupeStore } : {}),
    });
    const service = opened;
    let stopping: Promise<void> | undefined;
    return {
      server,
      implementation: module ? "module" : implementations[opts.service] ? "legacy" : "none",
      stop(graceMs = 10_000) {
        stopping ??= server.stop(graceMs).finally(() => {
          service?.close();
          material.close();
        });
        return stopping;
      },
    };
  } catch (err) {
    opened?.close();
    material.close();
    throw err;
  }
}

/** Node's error for a port someone else holds: the port is on the error itself. */
export function portInUse(err: unknown): { port: number; address: string } | undefined {
  const e = err as { code?: unknown; port?: unknown; address?: unknown };
  return e && e.code === "EADDRINUSE" ? { port: Number(e.port), address: String(e.address ?? "") } : undefined;
}
