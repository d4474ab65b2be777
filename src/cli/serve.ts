/**
 * `tt-rpc serve <service>`: run one service the way a deployment does. It
 * never creates keys: without its certificate, key, JWT key or a trust bundle
 * for our trust domain it exits non-zero naming the missing piece.
 */
import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { PkiError } from "../identity/pki.ts";
import { serviceContracts } from "../gen/contracts.ts";
import { DEFAULT_CERTS_DIR } from "./certs.ts";
import { stdio, usageError, type CliIo } from "./io.ts";
import { startMesh, stopOnSignals } from "./mesh.ts";

const USAGE = `usage: tt-rpc serve <service> [--certs <dir>] [--host <ip>] [--port <n>] [--connect-port <n>]
  --certs  PKI directory (env TT_RPC_CERTS_DIR; default ${DEFAULT_CERTS_DIR}); never created by serve
  --port   gRPC port (default: the contract's port); --connect-port enables the Connect protocol`;

function port(value: string | undefined, name: string): number | undefined | Error {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= 65535 ? n : new Error(`${name} must be a port number (0-65535), got ${JSON.stringify(value)}`);
}

export async function runServe(args: string[], io: CliIo = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: {
        certs: { type: "string" },
        host: { type: "string" },
        port: { type: "string" },
        "connect-port": { type: "string" },
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
  if (!known.includes(service)) return usageError(io, `no contract for "${service}" (known: ${known.join(", ")})`, USAGE);
  const grpcPort = port(values.port, "--port");
  const connectPort = port(values["connect-port"], "--connect-port");
  if (grpcPort instanceof Error) return usageError(io, grpcPort.message, USAGE);
  if (connectPort instanceof Error) return usageError(io, connectPort.message, USAGE);
  const certs = resolve(values.certs ?? process.env.TT_RPC_CERTS_DIR ?? DEFAULT_CERTS_DIR);
  try {
    const mesh = await startMesh({
      certs,
      host: values.host ?? "127.0.0.1",
      only: [service],
      connect: connectPort !== undefined,
      io,
      initPki: false,
      ports: { ...(grpcPort !== undefined ? { grpc: grpcPort } : {}), ...(connectPort !== undefined ? { connect: connectPort } : {}) },
    });
    const server = mesh.servers.get(service)!;
    // Handlers first: whoever waits for the readiness line may signal at once.
    stopOnSignals(mesh, io);
    io.out(`${service} serving gRPC on ${values.host ?? "127.0.0.1"}:${server.port}${server.connectPort ? `, Connect on ${server.connectPort}` : ""}`);
    return -1;
  } catch (err) {
    if (err instanceof PkiError) {
      io.err(`${service}: refusing to start: ${err.message}`);
      return 1;
    }
    throw err;
  }
}
