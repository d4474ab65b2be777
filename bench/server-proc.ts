/**
 * Benchmark server process (forked by bench/transport.ts), so client and
 * server CPU are measured separately. Modes:
 *   bare-grpc-js / bare-connect-node: the wire stack alone over mTLS (no interceptors);
 *   full: createServer with the whole security chain and a real contract.
 * Answers CPU-usage probes over IPC.
 */
import * as grpc from "@grpc/grpc-js";
import { createMaterialSource } from "../src/identity/material.ts";
import { silentLogger } from "../src/observability/logger.ts";
import { buildRoutes } from "../src/server/routes.ts";
import { registerGrpcRoutes } from "../src/server/grpc-js-adapter.ts";
import { createConnectHandler } from "../src/server/connect-adapter.ts";
import { listenConnect, listenGrpc, type Listener } from "../src/server/listeners.ts";
import { createServer } from "../src/server/server.ts";
import { benchService, benchTicketService } from "./bench-service.ts";

const [mode, certs] = process.argv.slice(2) as [string, string];
const material = await createMaterialSource({ dir: certs, workload: "ticket-service", pollMs: 0 });
const logger = silentLogger();
const shutdown = new AbortController();
const report = () => {};
let stop: () => Promise<void>;
let port: number;

if (mode === "full") {
  const server = await createServer({ identity: material, services: [benchTicketService], port: 0, logger });
  port = server.port;
  stop = () => server.stop(100);
} else {
  const routes = buildRoutes([benchService], []);
  let listener: Listener;
  if (mode === "bare-grpc-js") {
    const grpcServer = new grpc.Server();
    registerGrpcRoutes(grpcServer, routes, shutdown.signal, report);
    listener = await listenGrpc({ grpcServer, material, host: "127.0.0.1", port: 0, logger, methods: new Set(routes.map((r) => r.contract.path)) });
    stop = async () => {
      await listener.close(100);
      grpcServer.forceShutdown();
    };
  } else {
    const handler = createConnectHandler(routes, report, { grpc: true });
    listener = await listenConnect({ handler, material, host: "127.0.0.1", port: 0, logger, maxConnectionAgeMs: 3_600_000 });
    stop = () => listener.close(100);
  }
  port = listener.port;
}

process.send?.({ ready: true, port });
process.on("message", async (msg: { cmd: string }) => {
  if (msg.cmd === "cpu") process.send?.({ cpu: process.cpuUsage() });
  if (msg.cmd === "stop") {
    await stop();
    material.close();
    process.exit(0);
  }
});
