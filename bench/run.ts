/**
 * `npm run bench`: the framework's full path (d) side by side with its peers
 * on this machine, in one run: (a) bare grpc-js, (b) grpc-js with hand-rolled
 * jose per-call JWT interceptors, (c) bare connect-node, (d) tt-rpc's
 * generated client -> createServer. Each configuration has its own server and
 * client process (one mTLS HTTP/2 connection per caller identity), all alive
 * for the whole run; configurations take turns per repetition (the order
 * rotates), so load from elsewhere on the machine hits them alike.
 *
 * Env: BENCH_RUNS (repetitions, default 5), BENCH_CALLS (unary calls per
 * cell, default 1500; the 64 KiB case does a quarter, the stream case a
 * fiftieth), BENCH_CONFIGS (default a,b,c,d,e), BENCH_OUT (default bench/results),
 * BENCH_MICRO_N (operations per micro-cost, default 2000; 0 skips), BENCH_PROFILE
 * (a directory: each server and client process writes a CPU profile there),
 * BENCH_CASES (comma-separated case ids to run, default all).
 */
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRequire } from "node:module";
import { initPki, loadContextSigningKey } from "../src/devtools/pki/dev-ca.ts";
import { createMaterialSource } from "../src/runtime/identity/material.ts";
import { workloadSpiffeId } from "../src/runtime/identity/spiffe-id.ts";
import { createContextTokenMinter } from "../src/runtime/auth/context-token.ts";
import type { CaseKind, RunResult } from "./client.ts";
import { measureMicroCosts, type MicroCosts } from "./micro.ts";
import { CONFIG_NAMES, CONFIGS, SERVER, STREAM_MESSAGES, TENANT, UNARY_CALLER, type ConfigId } from "./shared.ts";
import { renderMarkdown } from "./report.ts";

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const CALLS = Number(process.env.BENCH_CALLS ?? 1500);
const MICRO_N = Number(process.env.BENCH_MICRO_N ?? 2000);
const OUT = process.env.BENCH_OUT ?? fileURLToPath(new URL("./results/", import.meta.url));
const SELECTED = (process.env.BENCH_CONFIGS ?? CONFIGS.join(",")).split(",").map((s) => s.trim()) as ConfigId[];
for (const c of SELECTED) if (!CONFIGS.includes(c)) throw new Error(`BENCH_CONFIGS: unknown configuration ${c} (use ${CONFIGS.join(",")})`);
// (d) runs with default limits; any TT_RPC_TICKET_SERVICE_* override in the environment is recorded with the run.
const RESILIENCE_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("TT_RPC_TICKET_SERVICE_"))) as Record<string, string>;
if (!(RUNS >= 1 && CALLS >= 1)) throw new Error("BENCH_RUNS and BENCH_CALLS must be positive");

export interface CaseSpec {
  id: string;
  kind: CaseKind;
  concurrency: number;
  calls: number;
  configs: ConfigId[];
}
// BENCH_CASES=unary-small-c16,...: run only these cases (profiling one cell); default all.
const ONLY_CASES = process.env.BENCH_CASES?.split(",").map((s) => s.trim());
const only = (ids: ConfigId[]) => SELECTED.filter((c) => ids.includes(c));
const CASES: CaseSpec[] = ([
  { id: "unary-small-c1", kind: "unary", concurrency: 1, calls: Math.max(1, Math.round(CALLS / 3)), configs: SELECTED },
  { id: "unary-small-c16", kind: "unary", concurrency: 16, calls: CALLS, configs: SELECTED },
  { id: "unary-small-c64", kind: "unary", concurrency: 64, calls: CALLS, configs: SELECTED },
  { id: "unary-small-c256", kind: "unary", concurrency: 256, calls: CALLS, configs: only(["a", "d", "e"]) },
  { id: "server-stream-1000-c4", kind: "stream", concurrency: 4, calls: Math.max(4, Math.round(CALLS / 50)), configs: SELECTED },
  { id: "unary-64KiB-c16", kind: "large", concurrency: 16, calls: Math.max(16, Math.round(CALLS / 4)), configs: SELECTED },
] satisfies CaseSpec[]).filter((c) => c.configs.length > 0 && (ONLY_CASES === undefined || ONLY_CASES.includes(c.id)));

export interface Sample {
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  serverCpuUsPerCall: number;
  clientCpuUsPerCall: number;
  errors: number;
}
export interface Cell extends Omit<Sample, "errors"> {
  errors: number;
  firstError?: string;
  samples: Sample[];
}
export interface Results {
  startedAt: string;
  durationS: number;
  settings: { runs: number; calls: number; configs: ConfigId[]; streamMessages: number; resilienceEnv: Record<string, string> };
  machine: { cpus: number; model: string; loadAvgAtStart: number[]; loadAvgAtEnd: number[]; totalMemGiB: number; platform: string };
  versions: Record<string, string>;
  configurations: Record<string, string>;
  cases: (Omit<CaseSpec, "configs"> & { results: Partial<Record<ConfigId, Cell>>; ratios: Record<string, Record<string, number>> })[];
  peakRssMiB: Partial<Record<ConfigId, { server: number; client: number }>>;
  /** Failed calls of the warm-up pass, by case/config. */
  warmupErrors: Record<string, { errors: number; firstError: string }>;
  /** "rpc" lines (d)'s server wrote to its log file over the run, warm-up included. */
  fullPathLogLines: number | null;
  microCostsUs: MicroCosts | null;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function versionOf(pkg: string): string {
  const require = createRequire(import.meta.url);
  try {
    return JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), "utf8")).version;
  } catch {
    // Packages whose exports hide package.json: read it from node_modules directly.
    return JSON.parse(readFileSync(fileURLToPath(new URL(`../node_modules/${pkg}/package.json`, import.meta.url)), "utf8")).version;
  }
}

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
// BENCH_PROFILE=dir: every server and client process writes a V8 CPU profile there on exit (bench/profile-summary.ts reads them).
const PROFILE_DIR = process.env.BENCH_PROFILE;
function spawn(script: string, args: string[]): ChildProcess {
  const profile = PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${script.replace(/\W/g, "")}-${args[0]}-\${pid}.cpuprofile`] : [];
  return fork(here(script), args, { execArgv: ["--import", "tsx", ...profile], stdio: ["ignore", "inherit", "inherit", "ipc"] });
}
async function ask<T>(child: ChildProcess, msg: object): Promise<T> {
  child.send(msg);
  const [reply] = (await once(child, "message")) as [T];
  return reply;
}
type ServerStats = { cpu: NodeJS.CpuUsage; maxRssKb: number };

const t0 = Date.now();
const startedAt = new Date(t0).toISOString();
const loadAvgAtStart = loadavg();
const certs = mkdtempSync(join(tmpdir(), "tt-bench-"));
const procs: ChildProcess[] = [];
try {
  await initPki({ dir: certs });
  const ctxKey = await loadContextSigningKey(certs);
  const contextToken = await createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: ctxKey.current }).mint({
    tenantId: TENANT,
    userId: "bench-user",
    scopes: [],
    ttlSeconds: 300,
  });
  const logFile = join(certs, "server-d.log");

  const servers = new Map<ConfigId, ChildProcess>();
  const clients = new Map<ConfigId, ChildProcess>();
  for (const c of SELECTED) {
    const server = spawn("./server.ts", [c, certs, logFile]);
    procs.push(server);
    const [{ port }] = (await once(server, "message")) as [{ port: number }];
    const client = spawn("./client.ts", [c, certs, String(port), contextToken]);
    procs.push(client);
    await once(client, "message");
    servers.set(c, server);
    clients.set(c, client);
  }
  console.log(`tt-rpc bench: ${SELECTED.map((c) => `(${c}) ${CONFIG_NAMES[c]}`).join(", ")}; ${RUNS} runs, ${CALLS} calls per unary cell`);

  const measureCell = async (c: ConfigId, spec: CaseSpec, calls: number): Promise<RunResult & { serverCpuUs: number }> => {
    const s0 = await ask<ServerStats>(servers.get(c)!, { cmd: "stats" });
    const r = await ask<RunResult>(clients.get(c)!, { cmd: "run", kind: spec.kind, concurrency: spec.concurrency, calls });
    const s1 = await ask<ServerStats>(servers.get(c)!, { cmd: "stats" });
    return { ...r, serverCpuUs: s1.cpu.user + s1.cpu.system - (s0.cpu.user + s0.cpu.system) };
  };

  // Warm-up: JIT, connections, key caches; not measured, but its failures are reported (they can open (d)'s breaker).
  const warmupErrors: Results["warmupErrors"] = {};
  for (const spec of CASES) {
    for (const c of spec.configs) {
      const r = await measureCell(c, spec, Math.max(spec.concurrency, Math.round(spec.calls / 3)));
      if (r.errors > 0) warmupErrors[`${spec.id}/${c}`] = { errors: r.errors, firstError: r.firstError ?? "" };
    }
  }

  const samples = new Map<string, { sample: Sample; firstError?: string }[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const spec of CASES) {
      // Rotate who goes first, so no configuration always runs on the heels of another.
      const order = spec.configs.map((_, i) => spec.configs[(i + run) % spec.configs.length]!);
      for (const c of order) {
        const r = await measureCell(c, spec, spec.calls);
        const key = `${spec.id}/${c}`;
        const list = samples.get(key) ?? [];
        list.push({
          sample: {
            callsPerSec: r.calls / (r.wallNs / 1e9),
            p50Ms: r.latencyUs.p50 / 1000,
            p99Ms: r.latencyUs.p99 / 1000,
            p999Ms: r.latencyUs.p999 / 1000,
            serverCpuUsPerCall: r.serverCpuUs / r.calls,
            clientCpuUsPerCall: r.cpuUs / r.calls,
            errors: r.errors,
          },
          ...(r.firstError ? { firstError: r.firstError } : {}),
        });
        samples.set(key, list);
      }
    }
    console.log(`run ${run + 1}/${RUNS} done (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
  }

  const cases: Results["cases"] = CASES.map(({ configs, ...spec }) => {
    const results: Partial<Record<ConfigId, Cell>> = {};
    for (const c of configs) {
      const list = samples.get(`${spec.id}/${c}`)!;
      const pick = (k: keyof Sample) => median(list.map((s) => s.sample[k]));
      const firstError = list.find((s) => s.firstError)?.firstError;
      results[c] = {
        callsPerSec: pick("callsPerSec"),
        p50Ms: pick("p50Ms"),
        p99Ms: pick("p99Ms"),
        p999Ms: pick("p999Ms"),
        serverCpuUsPerCall: pick("serverCpuUsPerCall"),
        clientCpuUsPerCall: pick("clientCpuUsPerCall"),
        errors: list.reduce((n, s) => n + s.sample.errors, 0),
        ...(firstError ? { firstError } : {}),
        samples: list.map((s) => s.sample),
      };
    }
    // (d) against each peer, and the (e) prototype against (a) and (b), from medians of the same run: >1 means more of it.
    const ratios: Record<string, Record<string, number>> = {};
    const pairs = [["d", "a"], ["d", "b"], ["d", "c"], ["e", "a"], ["e", "b"]] as const;
    for (const [x, peer] of pairs) {
      const d = results[x];
      const p = results[peer];
      if (!d || !p) continue;
      ratios[`${x}/${peer}`] = {
        callsPerSec: d.callsPerSec / p.callsPerSec,
        p99: d.p99Ms / p.p99Ms,
        serverCpuPerCall: d.serverCpuUsPerCall / p.serverCpuUsPerCall,
        clientCpuPerCall: d.clientCpuUsPerCall / p.clientCpuUsPerCall,
      };
    }
    return { ...spec, results, ratios };
  });

  const peakRssMiB: Results["peakRssMiB"] = {};
  for (const c of SELECTED) {
    const s = await ask<ServerStats>(servers.get(c)!, { cmd: "stats" });
    const cl = await ask<{ maxRssKb: number }>(clients.get(c)!, { cmd: "stats" });
    peakRssMiB[c] = { server: s.maxRssKb / 1024, client: cl.maxRssKb / 1024 };
  }
  for (const p of [...servers.values(), ...clients.values()]) {
    p.send({ cmd: "stop" });
    await once(p, "exit");
  }
  procs.length = 0;
  // Evidence that (d) logged every call at info to its file (the line is part of what (d) costs).
  const fullPathLogLines = SELECTED.includes("d") ? readFileSync(logFile, "utf8").split("\n").filter((l) => l.includes('"msg":"rpc"')).length : null;

  let microCostsUs: MicroCosts | null = null;
  if (MICRO_N > 0) {
    const caller = await createMaterialSource({ dir: certs, workload: UNARY_CALLER, pollMs: 0 });
    const server = await createMaterialSource({ dir: certs, workload: SERVER, pollMs: 0 });
    try {
      microCostsUs = await measureMicroCosts({ caller, server, contextToken, logFile: join(certs, "micro.log"), n: MICRO_N });
    } finally {
      caller.close();
      server.close();
    }
  }

  const results: Results = {
    startedAt,
    durationS: (Date.now() - t0) / 1000,
    settings: { runs: RUNS, calls: CALLS, configs: SELECTED, streamMessages: STREAM_MESSAGES, resilienceEnv: RESILIENCE_ENV },
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model ?? "unknown",
      loadAvgAtStart,
      loadAvgAtEnd: loadavg(),
      totalMemGiB: totalmem() / 2 ** 30,
      platform: `${process.platform} ${process.arch}`,
    },
    versions: {
      node: process.version,
      "@grpc/grpc-js": versionOf("@grpc/grpc-js"),
      "@connectrpc/connect": versionOf("@connectrpc/connect"),
      "@connectrpc/connect-node": versionOf("@connectrpc/connect-node"),
      "@bufbuild/protobuf": versionOf("@bufbuild/protobuf"),
      jose: versionOf("jose"),
      pino: versionOf("pino"),
      cockatiel: versionOf("cockatiel"),
    },
    configurations: Object.fromEntries(SELECTED.map((c) => [c, CONFIG_NAMES[c]])),
    cases,
    peakRssMiB,
    warmupErrors,
    fullPathLogLines,
    microCostsUs,
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "latest.json"), JSON.stringify(results, null, 2) + "\n");
  const md = renderMarkdown(results);
  writeFileSync(join(OUT, "latest.md"), md);
  console.log("\n" + md);
  console.log(`wrote ${join(OUT, "latest.json")} and latest.md in ${results.durationS.toFixed(0)} s`);
} finally {
  for (const p of procs) p.kill();
  rmSync(certs, { recursive: true, force: true });
}
