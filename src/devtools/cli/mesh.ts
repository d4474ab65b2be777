/**
 * `tt-rpc mesh`: the platform's internal RPC mesh on one machine, one process
 * per service. Creates the dev PKI on first run (or uses --certs), starts
 * `tt-rpc serve <service>` for every contract as its own child process on the
 * contract's ports + --port-offset (gRPC 50000 + legacy HTTP port - 3000;
 * Connect + 1000), tells every child where the others are
 * (`<NAME>_RPC_ADDRESS`), waits for each to answer grpc.health.v1 SERVING over
 * mTLS, and prints who runs where. SIGINT/SIGTERM drain and stop every child.
 */
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { serviceContracts } from "@tickettoken/contracts";
import { createMaterialSource, type MaterialSource } from "@tickettoken/rpc/internal/identity/material";
import { initPki } from "../pki/dev-ca.ts";
import { workloadSpiffeId } from "@tickettoken/rpc/internal/identity/spiffe-id";
import type { ServiceName } from "@tickettoken/rpc/internal/identity/workloads";
import { DEFAULT_CERTS_DIR } from "@tickettoken/rpc/internal/identity/pki-files";
import { CONNECT_PORT_OFFSET, DEFAULT_DATA_DIR, meshAddressEnv, OPS_PORT_OFFSET } from "@tickettoken/services/host/host";
import { stdio, usageError, type CliIo } from "@tickettoken/services/host/cli-io";
import { ConfigError, loadConfig } from "@tickettoken/services/host/config-load";
import { bannerLines, type BannerRow } from "./mesh/banner.ts";
import { waitServing } from "./mesh/health.ts";
import { createSupervisor, type ChildSpec, type Started } from "./mesh/supervisor.ts";

const USAGE = `usage: tt-rpc mesh [--certs <dir>] [--data <dir>] [--only <service,...>] [--port-offset <n>] [--host <ip>] [--no-connect] [--quiet]
  --certs        PKI directory (created on first run; default ${DEFAULT_CERTS_DIR})
  --data         databases and logs: <data>/<service>.db, <data>/logs/<service>.log (env TT_RPC_DATA_DIR; default ${DEFAULT_DATA_DIR})
  --only         run only these services
  --port-offset  add n to every port (run a second mesh, or avoid a port in use)
  --host         address to bind (default 127.0.0.1)
  --no-connect   do not serve the Connect protocol (JSON over HTTP) ports
  --quiet        do not print a line per call (warnings and errors still show)`;

/** Every child must answer SERVING within this (8 children compile and start on 2 cores). */
const STARTUP_TIMEOUT_MS = 60_000;
const HIGHEST_DEFAULT_PORT = Math.max(...serviceContracts.map((c) => c.defaultPort)) + OPS_PORT_OFFSET;

export async function runMesh(args: string[], io: CliIo = stdio): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      options: {
        certs: { type: "string" },
        data: { type: "string" },
        host: { type: "string" },
        only: { type: "string" },
        "port-offset": { type: "string" },
        "no-connect": { type: "boolean" },
        quiet: { type: "boolean", short: "q" },
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
  const offset = Number(values["port-offset"] ?? 0);
  if (!Number.isInteger(offset) || offset < 0 || HIGHEST_DEFAULT_PORT + offset > 65535) {
    return usageError(io, `--port-offset must be an integer from 0 to ${65535 - HIGHEST_DEFAULT_PORT}, got ${JSON.stringify(values["port-offset"])}`, USAGE);
  }
  const certs = resolve(values.certs ?? DEFAULT_CERTS_DIR);
  const data = resolve(values.data ?? process.env.TT_RPC_DATA_DIR ?? DEFAULT_DATA_DIR);
  const host = values.host ?? "127.0.0.1";
  // Where the mesh (and the printed commands) reach a child bound to every interface.
  const dialHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  const connect = !values["no-connect"];
  // Every service finds every other on the mesh's ports, whether or not it runs here.
  // No load balancer in front of a local mesh: children stop accepting at once on SIGTERM.
  const env: NodeJS.ProcessEnv = { TT_RPC_DRAIN_DELAY_MS: "0", ...process.env, ...meshAddressEnv(dialHost, offset) };
  // Every child would refuse a bad setting (and be restarted to refuse again): refuse once, before starting any.
  try {
    for (const warning of loadConfig(env).warnings) io.err(`warning: ${warning}`);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`mesh: refusing to start: ${err.message}`);
    return 2;
  }
  const t0 = performance.now();

  const { written } = await initPki({ dir: certs });
  if (written.length > 0) io.out(`dev PKI: wrote ${written.length} file(s) in ${certs}`);
  const ops = await createMaterialSource({ dir: certs, workload: "ops", pollMs: 0 });

  const contracts = serviceContracts.filter((c) => !only || only.includes(c.name));
  const specs: ChildSpec[] = contracts.map((c) => ({
    service: c.name,
    args: [
      "--certs", certs,
      "--data", data,
      "--host", host,
      "--port", String(c.defaultPort + offset),
      ...(connect ? ["--connect-port", String(c.defaultPort + CONNECT_PORT_OFFSET + offset)] : []),
      "--ops-port", String(c.defaultPort + OPS_PORT_OFFSET + offset),
    ],
    env,
    logFile: join(data, "logs", `${c.name}.log`),
  }));

  return new Promise<number>((finish) => {
    let done = false;
    const started = new Map<ServiceName, Started>();
    let bannerShown = false;

    const stopAndExit = (code: number, why?: string) => {
      if (done) return;
      done = true;
      if (why) io.out(why);
      supervisor.stopAll().then(
        () => {
          ops.close();
          finish(code);
        },
        (err: unknown) => {
          io.err(String(err));
          ops.close();
          finish(1);
        },
      );
    };

    const supervisor = createSupervisor(specs, io, {
      onStarted(s, restart) {
        started.set(s.service, s);
        waitServing(ops, s.service, `${dialHost}:${s.port}`, STARTUP_TIMEOUT_MS).then(
          () => {
            if (done) return;
            if (restart > 0) io.err(`${s.service}: restarted as pid ${s.pid}, SERVING again`);
            if (!bannerShown && contracts.every((c) => started.has(c.name))) {
              bannerShown = true;
              printBanner(io, contracts.map((c) => started.get(c.name)!), ops, certs, dialHost, performance.now() - t0, { data, offset });
            }
          },
          (err: unknown) => {
            // Only the latest start of a service counts: an older process may have been replaced meanwhile.
            if (started.get(s.service)?.pid === s.pid && supervisor.pid(s.service) === s.pid) {
              stopAndExit(1, `${s.service}: ${(err as Error).message}; stopping the mesh`);
            }
          },
        );
      },
      onFatal(service, code) {
        stopAndExit(code, `${service} cannot start (exit code ${code}); stopping the mesh`);
      },
    }, { quiet: values.quiet ?? false });

    // `on`, not `once`: a second signal during the drain must not kill the mesh mid-drain.
    process.on("SIGINT", () => stopAndExit(0, "\nSIGINT: stopping every service..."));
    process.on("SIGTERM", () => stopAndExit(0, "\nSIGTERM: stopping every service..."));
    supervisor.start();
  });
}

function printBanner(
  io: CliIo,
  started: readonly Started[],
  ops: MaterialSource,
  certs: string,
  dialHost: string,
  startupMs: number,
  where: { data: string; offset: number },
): void {
  const m = ops.current();
  const rows: BannerRow[] = started.map((s) => ({
    service: s.service,
    grpc: `${dialHost}:${s.port}`,
    connect: s.connectPort ? `https://${dialHost}:${s.connectPort}` : undefined,
    spiffeId: workloadSpiffeId(s.service, m.workload.env, m.bundle.trustDomain),
    pid: s.pid,
  }));
  const first = started[0] ? serviceContracts.find((c) => c.name === started[0]!.service) : undefined;
  const opsPort = first ? first.defaultPort + OPS_PORT_OFFSET + where.offset : undefined;
  for (const line of bannerLines(rows, certs, process.cwd(), startupMs, { ...where, opsPort })) io.out(line);
}
