/**
 * `npm run bench`: what a call costs, measured, not assumed.
 *
 * 1. Wire stack: CPU per call on each side and throughput for every pairing
 *    of server stack (grpc-js vs connect-node) and client transport (our
 *    connect-es Transport on grpc-js vs connect-node's gRPC transport). Unary,
 *    small message, one HTTP/2 connection, mTLS (TLS 1.3), loopback, no
 *    interceptors: what the wire stack itself costs.
 * 2. Full chain: the production path (createServer + a generated client):
 *    mTLS, a fresh ES256 call token per call, context token, contract
 *    authorization, tenant check, logging (to a silent logger).
 * Client and server run in separate processes; medians of several runs.
 *
 * Env: BENCH_CALLS (per run, default 4000), BENCH_RUNS (default 5).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../src/gen/grpc/health/v1/health_pb.ts";
import { createGrpcJsTransport } from "../src/client/grpc-js-transport.ts";
import { mtlsChannelCredentials } from "../src/client/tls-credentials.ts";
import { closeClient } from "../src/client/service-client.ts";
import { createTicketServiceClient } from "../src/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { initPki, loadContextSigningKey } from "../src/identity/pki.ts";
import { createMaterialSource, type MaterialSource } from "../src/identity/material.ts";
import { workloadSpiffeId } from "../src/identity/spiffe-id.ts";
import { createContextTokenMinter } from "../src/auth/context-token.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 4000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CONCURRENCY = [1, 64];

interface Sample {
  serverUsPerCall: number;
  clientUsPerCall: number;
  callsPerSec: number;
}

const cpuMicros = (u: NodeJS.CpuUsage) => u.user + u.system;

async function startServer(mode: string, certs: string): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(new URL("./server-proc.ts", import.meta.url)), [mode, certs], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const [msg] = (await once(child, "message")) as [{ port: number }];
  return { child, port: msg.port };
}

async function serverCpu(child: ChildProcess): Promise<number> {
  child.send({ cmd: "cpu" });
  const [msg] = (await once(child, "message")) as [{ cpu: NodeJS.CpuUsage }];
  return cpuMicros(msg.cpu);
}

async function drive(call: () => Promise<unknown>, calls: number, concurrency: number): Promise<void> {
  let issued = 0;
  const worker = async () => {
    while (issued < calls) {
      issued++;
      await call();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function measure(child: ChildProcess, call: () => Promise<unknown>, concurrency: number): Promise<Sample> {
  await drive(call, 1000, concurrency); // warm up JIT and the connection
  const samples: Sample[] = [];
  for (let r = 0; r < RUNS; r++) {
    const s0 = await serverCpu(child);
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await drive(call, CALLS, concurrency);
    const wallNs = Number(process.hrtime.bigint() - t0);
    const c1 = cpuMicros(process.cpuUsage(c0));
    const s1 = await serverCpu(child);
    samples.push({ serverUsPerCall: (s1 - s0) / CALLS, clientUsPerCall: c1 / CALLS, callsPerSec: CALLS / (wallNs / 1e9) });
  }
  return {
    serverUsPerCall: median(samples.map((s) => s.serverUsPerCall)),
    clientUsPerCall: median(samples.map((s) => s.clientUsPerCall)),
    callsPerSec: median(samples.map((s) => s.callsPerSec)),
  };
}

function wireTransport(kind: "grpc-js" | "connect-node", port: number, client: MaterialSource): Transport & { close?: () => void } {
  const m = client.current();
  if (kind === "grpc-js") {
    return createGrpcJsTransport({
      address: `127.0.0.1:${port}`,
      credentials: mtlsChannelCredentials(client, workloadSpiffeId("ticket-service")).credentials,
    });
  }
  return createGrpcTransport({
    baseUrl: `https://127.0.0.1:${port}`,
    nodeOptions: { ca: m.bundle.caPem, cert: m.workload.certPem, key: m.workload.keyPem },
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  child.send({ cmd: "stop" });
  await once(child, "exit");
}

const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;

const certs = mkdtempSync(join(tmpdir(), "tt-bench-"));
try {
  await initPki({ dir: certs });
  const clientMaterial = await createMaterialSource({ dir: certs, workload: "payment-service", pollMs: 0 });
  console.log(`TicketToken RPC benchmark: ${CALLS} calls x ${RUNS} runs per cell, medians; node ${process.version}, mTLS on loopback`);
  console.log("\nWire stack (no interceptors): CPU µs per call in each process, calls/s");
  const lines = [row(["server", "client transport", "conc.", "server µs", "client µs", "calls/s"]), row(["---", "---", "---:", "---:", "---:", "---:"])];
  for (const concurrency of CONCURRENCY) {
    for (const server of ["grpc-js", "connect-node"] as const) {
      const { child, port } = await startServer(`bare-${server}`, certs);
      try {
        for (const client of ["grpc-js", "connect-node"] as const) {
          const transport = wireTransport(client, port, clientMaterial);
          const health = createClient(Health, transport);
          const s = await measure(child, () => health.check({ service: "" }), concurrency);
          transport.close?.();
          const line = row([server, client === "grpc-js" ? "tt grpc-js Transport" : "connect-node gRPC", concurrency, s.serverUsPerCall.toFixed(0), s.clientUsPerCall.toFixed(0), s.callsPerSec.toFixed(0)]);
          lines.push(line);
          console.log(line);
        }
      } finally {
        await stopServer(child);
      }
    }
  }

  console.log("\nFull chain (createServer + generated client: mTLS, per-call ES256 token, context token, authz, logging)");
  const full = [row(["conc.", "server µs", "client µs", "calls/s"]), row(["---:", "---:", "---:", "---:"])];
  const ctxKey = await loadContextSigningKey(certs);
  const contextToken = await createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: ctxKey.current }).mint({
    tenantId: "bench-tenant",
    userId: "bench-user",
    scopes: [],
  });
  for (const concurrency of CONCURRENCY) {
    const { child, port } = await startServer("full", certs);
    const client = createTicketServiceClient({ identity: clientMaterial, address: `127.0.0.1:${port}` });
    try {
      const s = await measure(
        child,
        () => client.getTicketStatus({ tenantId: "bench-tenant", ticketId: "t-1" }, { headers: { "tt-context": contextToken } }),
        concurrency,
      );
      const line = row([concurrency, s.serverUsPerCall.toFixed(0), s.clientUsPerCall.toFixed(0), s.callsPerSec.toFixed(0)]);
      full.push(line);
      console.log(line);
    } finally {
      closeClient(client);
      await stopServer(child);
    }
  }
  console.log("\nSummary (markdown):\n");
  console.log(lines.join("\n"));
  console.log("");
  console.log(full.join("\n"));
  clientMaterial.close();
} finally {
  rmSync(certs, { recursive: true, force: true });
}
