/**
 * `tt-rpc mesh`: the local mesh. Creates the dev PKI on first run, then serves
 * every contract on its own port (50000 + legacy HTTP port - 3000) with its
 * own identity, over mTLS, with health and reflection; the Connect protocol
 * (JSON, for curl) on 51000 + the same offset. Stops gracefully on SIGINT or
 * SIGTERM.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { serviceContracts } from "../gen/contracts.ts";
import { initPki, pkiPaths } from "../identity/pki.ts";
import { createMaterialSource, type MaterialSource } from "../identity/material.ts";
import { createLogger } from "../observability/logger.ts";
import { createServer, type RpcServer } from "../server/server.ts";
import { implement } from "../server/routes.ts";
import type { ServiceContract } from "../contract/types.ts";
import { implementations } from "../../services/index.ts";
import { DEFAULT_CERTS_DIR } from "./certs.ts";
import { stdio, usageError, type CliIo } from "./io.ts";

const USAGE = `usage: tt-rpc mesh [--certs <dir>] [--host <ip>] [--only <service,...>] [--no-connect]
  --certs       PKI directory (created on first run; default ${DEFAULT_CERTS_DIR})
  --host        address to bind (default 127.0.0.1)
  --only        serve only these services
  --no-connect  do not serve the Connect protocol (JSON over HTTP) ports`;

export const CONNECT_PORT_OFFSET = 1000;

export interface RunningMesh {
  readonly servers: ReadonlyMap<string, RpcServer>;
  stop(): Promise<void>;
}

export async function startMesh(opts: {
  certs: string;
  host: string;
  only?: string[];
  connect: boolean;
  io: CliIo;
  /** Create or renew the dev PKI first (the mesh does; `serve` never does: it fails closed). */
  initPki: boolean;
  ports?: { grpc?: number; connect?: number };
}): Promise<RunningMesh> {
  const logger = createLogger({ level: process.env.TT_RPC_LOG_LEVEL ?? "info" });
  if (opts.initPki) {
    const { written } = await initPki({ dir: opts.certs });
    if (written.length > 0) opts.io.out(`dev PKI: wrote ${written.length} file(s) in ${opts.certs}`);
  }
  const contracts = serviceContracts.filter((c) => !opts.only || opts.only.includes(c.name));
  const servers = new Map<string, RpcServer>();
  const materials: MaterialSource[] = [];
  try {
    for (const contract of contracts) {
      const material = await createMaterialSource({
        dir: opts.certs,
        workload: contract.name,
        onReloadError: (err) => logger.warn({ service: contract.name, err: err.message }, "certificate reload failed; keeping current material"),
      });
      materials.push(material);
      const registration = implementations[contract.name]?.() ?? implement(contract as ServiceContract, {});
      const server = await createServer({
        identity: material,
        services: [registration],
        host: opts.host,
        port: opts.ports?.grpc ?? contract.defaultPort,
        ...(opts.connect ? { connectPort: opts.ports?.connect ?? contract.defaultPort + CONNECT_PORT_OFFSET } : {}),
        logger,
      });
      servers.set(contract.name, server);
    }
  } catch (err) {
    await Promise.all([...servers.values()].map((s) => s.stop(0)));
    materials.forEach((m) => m.close());
    throw err;
  }
  return {
    servers,
    async stop() {
      await Promise.all([...servers.values()].map((s) => s.stop(10_000)));
      materials.forEach((m) => m.close());
    },
  };
}

function printHowToCall(io: CliIo, mesh: RunningMesh, certs: string, connect: boolean): void {
  const p = pkiPaths(certs);
  const ops = p.workload("ops");
  io.out("");
  io.out("TicketToken RPC mesh is up (mTLS everywhere; Ctrl-C stops it):");
  for (const [name, server] of mesh.servers) {
    const impl = implementations[name as keyof typeof implementations] ? "" : "  (contract only: methods answer UNIMPLEMENTED)";
    io.out(`  ${name.padEnd(22)} grpc 127.0.0.1:${server.port}${server.connectPort ? `  connect https://127.0.0.1:${server.connectPort}` : ""}${impl}`);
  }
  const tls = `--cacert ${p.bundleCa} --cert ${ops.cert} --key ${ops.key}`;
  io.out("");
  io.out("Call it as the operator (each token is single-use and must be used within 15 s):");
  io.out(`  TOKEN=$(npm run -s tt-rpc -- token --certs ${certs} --aud ticket-service --method reflection)`);
  io.out(`  npx buf curl --protocol grpc ${tls} --reflect-header "authorization: Bearer $TOKEN" --list-methods https://127.0.0.1:50004`);
  io.out(`  grpcurl -cacert ${p.bundleCa} -cert ${ops.cert} -key ${ops.key} -H "authorization: Bearer $TOKEN" 127.0.0.1:50004 list`);
  if (connect) io.out(`  (Connect/JSON for curl: same certificates, port + ${CONNECT_PORT_OFFSET})`);
  io.out("See README.md, \"Debugging with grpcurl\", for a full session.");
}

export async function runMesh(args: string[], io: CliIo = stdio): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        certs: { type: "string" },
        host: { type: "string" },
        only: { type: "string" },
        "no-connect": { type: "boolean" },
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
  const only = values.only?.split(",").map((s) => s.trim()).filter(Boolean);
  const known = serviceContracts.map((c) => c.name as string);
  const unknown = only?.find((s) => !known.includes(s));
  if (unknown) return usageError(io, `--only: no contract for "${unknown}" (known: ${known.join(", ")})`, USAGE);
  const certs = resolve(values.certs ?? DEFAULT_CERTS_DIR);
  const connect = !values["no-connect"];
  const mesh = await startMesh({ certs, host: values.host ?? "127.0.0.1", ...(only ? { only } : {}), connect, io, initPki: true });
  stopOnSignals(mesh, io);
  printHowToCall(io, mesh, certs, connect);
  return -1;
}

/** Drains on SIGINT/SIGTERM, then exits. */
export function stopOnSignals(mesh: RunningMesh, io: CliIo): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    io.out(`\n${signal}: draining...`);
    mesh.stop().then(
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
}
