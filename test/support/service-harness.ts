/**
 * Runs one service module for real: its handlers on a fresh in-memory SQLite
 * database (migrated and seeded like a first start), behind a real mTLS
 * server with its own identity from the test PKI. Downstream addresses come
 * through `env` (`<NAME>_RPC_ADDRESS`), exactly as in a deployment.
 *
 *   const venue = await startService(pki, venueModule);
 *   const client = await venue.client("event-service", createVenueServiceClient);
 *   await client.getVenue({ tenantId: ACME, venueId: "v-1" }, await venue.as(ACME, "u-1"));
 */
import { ConnectError, type CallOptions } from "@connectrpc/connect";
import { BadRequestSchema } from "../../src/runtime/gen/google/rpc/error_details_pb.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { closeClient, type ServiceClientOptions } from "../../src/runtime/client/service-client.ts";
import { addressVariable } from "../../src/runtime/client/address.ts";
import { silentLogger, type Logger } from "../../src/runtime/observability/logger.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";
import { openService, type OpenService, type ServiceModule } from "../../services/shared/runtime.ts";
import type { TestPki } from "./pki.ts";

export interface ServiceHarness {
  readonly server: RpcServer;
  readonly service: OpenService;
  /** "127.0.0.1:<port>" of the gRPC listener. */
  readonly address: string;
  /** A generated client calling this service as `workload`; closed by stop(). */
  client<C extends object>(workload: WorkloadName, factory: (o: ServiceClientOptions) => C, options?: Partial<ServiceClientOptions>): Promise<C>;
  /** Call options carrying a context token for (tenant, user), plus a deadline. */
  as(tenantId: string, userId?: string, scopes?: string[]): Promise<CallOptions>;
  stop(): Promise<void>;
}

export interface StartServiceOptions {
  /** Environment of the service: downstream addresses (`rpcAddressEnv`) and settings. */
  readonly env?: NodeJS.ProcessEnv;
  readonly seed?: boolean;
  readonly now?: () => Date;
  readonly logger?: Logger;
  readonly resilience?: ServiceClientOptions["resilience"];
  /** Database file instead of ":memory:" (restart tests). */
  readonly database?: string;
  /** Fixed gRPC port (restart tests); default an ephemeral one. */
  readonly port?: number;
}

/** `{ VENUE_RPC_ADDRESS: "127.0.0.1:1234" }` for a running harness of venue-service. */
export function rpcAddressEnv(service: string, address: string): Record<string, string> {
  return { [addressVariable(service)]: address };
}

export async function startService(pki: TestPki, module: ServiceModule, opts: StartServiceOptions = {}): Promise<ServiceHarness> {
  const logger = opts.logger ?? silentLogger();
  const identity = await pki.material(module.name);
  const service = openService(module, {
    identity,
    logger,
    database: opts.database ?? ":memory:",
    env: opts.env ?? {},
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.resilience ? { resilience: opts.resilience } : {}),
  });
  let server: RpcServer;
  try {
    server = await createServer({ identity, services: [service.registration], host: "127.0.0.1", port: opts.port ?? 0, logger });
  } catch (err) {
    service.close();
    throw err;
  }
  const address = `127.0.0.1:${server.port}`;
  const clients: object[] = [];
  return {
    server,
    service,
    address,
    async client(workload, factory, options) {
      const c = factory({ identity: await pki.material(workload), address, env: {}, ...options });
      clients.push(c);
      return c;
    },
    async as(tenantId, userId = "u-test", scopes = []) {
      return { headers: { "tt-context": await pki.contextToken({ tenantId, userId, scopes }) }, timeoutMs: 10_000 };
    },
    async stop() {
      clients.forEach((c) => closeClient(c));
      await server.stop(1000);
      service.close();
    },
  };
}

/** The error a call fails with (fails the test if it succeeds). */
export async function callError(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, it succeeded");
}

/** Field paths named in an INVALID_ARGUMENT's google.rpc.BadRequest detail. */
export function violatedFields(err: ConnectError): string[] {
  return err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}
