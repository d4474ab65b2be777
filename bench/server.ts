/**
 * One benchmark server process (forked by bench/run.ts): argv = config id,
 * PKI dir, log file. Answers {cmd:"stats"} over IPC with its CPU usage and
 * peak RSS, so server cost is measured apart from the client's.
 */
import http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createMaterialSource } from "../src/runtime/identity/material.ts";
import { asyncDestination, createLogger } from "../src/runtime/observability/logger.ts";
import { createServer } from "../src/runtime/server/server.ts";
import { implement } from "../src/runtime/server/routes.ts";
import { TicketServiceContract } from "../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { serverJwtInterceptor } from "./jwt-peer.ts";
import { startGrpcPeer } from "./grpc-peer.ts";
import { serverMacInterceptor } from "./mac-peer.ts";
import { CONFIGS, SERVER, statusOf, TicketService, ticketsOf, type ConfigId } from "./shared.ts";
import type { JWK } from "jose";

const [config, certs, logFile] = process.argv.slice(2) as [ConfigId, string, string];
if (!CONFIGS.includes(config)) throw new Error(`unknown config ${config}`);
const material = await createMaterialSource({ dir: certs, workload: SERVER, pollMs: 0 });
const m = material.current();
const tls = { ca: m.bundle.caPem, cert: m.workload.certPem, key: m.workload.keyPem };
let port = 0;
let stop: () => Promise<void>;

async function bareGrpc(interceptors: grpc.ServerInterceptor[]): Promise<void> {
  const peer = await startGrpcPeer(m, interceptors);
  port = peer.port;
  stop = peer.stop;
}

if (config === "a") {
  await bareGrpc([]);
} else if (config === "b") {
  const keys = new Map<string, JWK[]>([...m.bundle.jwtKeys].map(([id, list]) => [id, list as JWK[]]));
  await bareGrpc([await serverJwtInterceptor(m.workload.spiffeId, keys)]);
} else if (config === "e") {
  await bareGrpc([serverMacInterceptor()]);
} else if (config === "c") {
  const handler = connectNodeAdapter({
    routes: (router) => router.service(TicketService, { getTicketStatus: statusOf, listTicketsByEvent: ticketsOf }),
  });
  const server = http2.createSecureServer({ ...tls, requestCert: true, rejectUnauthorized: true, minVersion: "TLSv1.3" }, handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as { port: number }).port;
  stop = () => new Promise((resolve) => server.close(() => resolve()));
} else {
  // Production defaults everywhere (limits, replay cache, dedupe, metrics, the asynchronous log destination); only the log goes to a file.
  const logger = createLogger({ level: "info", destination: asyncDestination(logFile) });
  const service = implement(TicketServiceContract, {
    getTicketStatus: statusOf,
    listTicketsByEvent: ticketsOf,
  });
  const server = await createServer({ identity: material, services: [service], port: 0, logger });
  port = server.port;
  stop = () => server.stop(1000);
}

process.send!({ ready: true, port });
process.on("message", async (msg: { cmd: string }) => {
  if (msg.cmd === "stats") process.send!({ cpu: process.cpuUsage(), maxRssKb: process.resourceUsage().maxRSS });
  if (msg.cmd === "stop") {
    await stop();
    material.close();
    process.exit(0);
  }
});
