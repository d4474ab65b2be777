/**
 * Wire-stack benchmark (`npm run bench`): CPU per call on each side and peak
 * throughput for every pairing of server stack (grpc-js vs connect-node) and
 * client transport (our connect-es Transport on grpc-js vs connect-node's
 * gRPC transport). Unary, small message, one HTTP/2 connection, loopback,
 * no interceptors: what the wire stack itself costs. Medians of several runs.
 *
 * Env: BENCH_CALLS (per run, default 4000), BENCH_RUNS (default 5).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health } from "../src/gen/grpc/health/v1/health_pb.ts";
import { createGrpcJsTransport, type GrpcJsTransport } from "../src/client/grpc-js-transport.ts";

const CALLS = Number(process.env.BENCH_CALLS ?? 4000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CONCURRENCY = [1, 64];

type ServerStack = "grpc-js" | "connect-node";
type ClientStack = "grpc-js" | "connect-node";

interface Sample { serverUsPerCall: number; clientUsPerCall: number; callsPerSec: number }

function cpuMicros(u: NodeJS.CpuUsage): number {
  return u.user + u.system;
}

async function startServer(stack: ServerStack): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(fileURLToPath(new URL("./server-proc.ts", import.meta.url)), [stack], {
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

function transportFor(stack: ClientStack, port: number): Transport & { close?: () => void } {
  if (stack === "grpc-js") {
    return createGrpcJsTransport({ address: `127.0.0.1:${port}`, credentials: grpc.credentials.createInsecure() }) as GrpcJsTransport;
  }
  return createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}` });
}

async function run(client: ReturnType<typeof createClient<typeof Health>>, calls: number, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < calls) {
      next++;
      await client.check({ service: "" });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function measure(server: ServerStack, clientStack: ClientStack, concurrency: number): Promise<Sample> {
  const { child, port } = await startServer(server);
  const transport = transportFor(clientStack, port);
  const client = createClient(Health, transport);
  try {
    await run(client, 1000, concurrency); // warm up JIT and the connection
    const samples: Sample[] = [];
    for (let r = 0; r < RUNS; r++) {
      const s0 = await serverCpu(child);
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await run(client, CALLS, concurrency);
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
  } finally {
    transport.close?.();
    child.send({ cmd: "stop" });
    await once(child, "exit");
  }
}

const rows: string[] = [];
console.log(`wire-stack benchmark: ${CALLS} calls x ${RUNS} runs per cell, medians; node ${process.version}`);
for (const concurrency of CONCURRENCY) {
  for (const server of ["grpc-js", "connect-node"] as const) {
    for (const client of ["grpc-js", "connect-node"] as const) {
      const s = await measure(server, client, concurrency);
      const row = `| ${server.padEnd(12)} | ${(client === "grpc-js" ? "tt grpc-js transport" : "connect-node grpc").padEnd(20)} | ${String(concurrency).padStart(3)} | ${s.serverUsPerCall.toFixed(0).padStart(6)} | ${s.clientUsPerCall.toFixed(0).padStart(6)} | ${s.callsPerSec.toFixed(0).padStart(7)} |`;
      rows.push(row);
      console.log(row);
    }
  }
}
console.log("\n| server       | client               |  c  | srv us | cli us | calls/s |");
console.log("|--------------|----------------------|-----|--------|--------|---------|");
for (const r of rows) console.log(r);
