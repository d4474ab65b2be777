/**
 * Benchmark server process: serves the bench service on the requested stack
 * and answers CPU-usage probes over IPC, so client and server CPU are measured
 * in separate processes.
 */
import { createServer } from "../src/server/server.ts";
import { silentLogger } from "../src/observability/logger.ts";
import { benchService } from "./bench-service.ts";

const stack = process.argv[2] === "connect-node" ? "connect-node" : "grpc-js";
const server = await createServer({ services: [benchService], port: 0, tls: "plaintext", logger: silentLogger(), grpcStack: stack });
process.send?.({ ready: true, port: server.port });
process.on("message", async (msg: { cmd: string }) => {
  if (msg.cmd === "cpu") process.send?.({ cpu: process.cpuUsage() });
  if (msg.cmd === "stop") {
    await server.stop(100);
    process.exit(0);
  }
});
