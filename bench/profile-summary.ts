/**
 * Summarises the V8 CPU profiles a `BENCH_PROFILE=dir npm run bench` run
 * leaves behind: self time per component (token crypto, GC, logging,
 * TLS/HTTP/2, grpc-js, connect-es, ...) for each process, in µs per call when
 * the number of calls is given, plus the hottest functions.
 *
 *   npx tsx bench/profile-summary.ts <dir> [calls per process] [top N]
 *
 * Components are assigned by the self-time frame's script (and, for Node's
 * crypto binding, its function): a coarse but honest split; the "other node"
 * bucket is what Node's own JS does around them (streams, timers, events).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const COMPONENTS: [string, (url: string, fn: string) => boolean][] = [
  ["idle", (u, f) => f === "(idle)"],
  ["GC", (u, f) => f === "(garbage collector)"],
  ["token sign/verify (crypto)", (u) => /internal\/crypto\/(sig|keys)/.test(u) || u.includes("/src/runtime/auth/es256") || u.includes("/src/runtime/auth/keys") || u.includes("/node_modules/jose/")],
  ["token claims + replay (ours)", (u) => /\/src\/runtime\/auth\/(call-token|context-token|context-cache|replay-cache)/.test(u)],
  ["logging (pino)", (u) => /node_modules\/(pino|sonic-boom|fast-redact|@pinojs|pino-std-serializers|thread-stream|quick-format|fast-safe-stringify)/.test(u) || u.includes("/src/runtime/observability/logger")],
  ["metrics (prom-client)", (u) => u.includes("node_modules/prom-client") || u.includes("/src/runtime/telemetry/metrics")],
  ["random ids (crypto)", (u) => u.includes("internal/crypto/random")],
  ["DOMException / AbortSignal", (u, f) => u.includes("domexception") || u.includes("internal/abort_controller")],
  ["Headers (undici)", (u) => u.includes("internal/deps/undici")],
  ["TLS/HTTP/2 (node)", (u) => /node:(internal\/http2|_tls|internal\/tls|tls|http2|internal\/stream_base_commons|net|internal\/js_stream)/.test(u)],
  ["grpc-js", (u) => u.includes("node_modules/@grpc/grpc-js")],
  ["connect-es", (u) => u.includes("node_modules/@connectrpc")],
  ["protobuf-es", (u) => u.includes("node_modules/@bufbuild")],
  ["cockatiel", (u) => u.includes("node_modules/cockatiel")],
  ["framework glue (src/)", (u) => u.includes("/src/")],
  ["bench harness", (u) => u.includes("/bench/")],
  ["tsx loader", (u) => u.includes("node_modules/tsx") || u.includes("node_modules/esbuild")],
  ["other node (events, streams, timers, async hooks)", (u) => u.startsWith("node:")],
  ["native / program", (u, f) => f === "(program)" || u === ""],
  ["other JS", () => true],
];

function componentOf(url: string, fn: string): string {
  for (const [name, test] of COMPONENTS) if (test(url, fn)) return name;
  return "other JS";
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  busyMs: number;
  byComponentMs: Record<string, number>;
  topFunctions: { name: string; ms: number }[];
  /** Inclusive time (self + callees) of frames matching each pattern ("function@url-part"). */
  inclusiveMs: Record<string, number>;
}

/**
 * Inclusive-time probes: samples whose stack holds a frame whose
 * "functionName url" matches. Overlapping probes count the same sample.
 */
const INCLUSIVE: [string, RegExp][] = [
  ["call token verify (call-token.ts verify)", /^verify .*src\/runtime\/auth\/call-token/],
  ["  of which ES256 signature check", /^verifyEs256 /],
  ["call token mint (call-token.ts mint)", /^mint .*src\/runtime\/auth\/call-token/],
  ["  of which ES256 sign", /^signEs256 /],
  ["security interceptor (auth + decode + authorize)", /src\/runtime\/server\/security-interceptor/],
  ["rpc log line (finishCall -> pino)", /^finishCall /],
  ["metrics", /prom-client|src\/runtime\/telemetry\/metrics/],
  ["HTTP/2 guard", /src\/runtime\/server\/http2-guard/],
  ["grpc-js adapter (src/runtime/server/grpc-js-adapter)", /src\/runtime\/server\/grpc-js-adapter/],
  ["resilience (policy-stack + cockatiel)", /src\/runtime\/resilience\/policy-stack|node_modules\/cockatiel/],
  ["client transport (src/runtime/client/grpc-js-transport)", /src\/runtime\/client\/grpc-js-transport/],
];

export function summarise(file: string, top = 15): ProfileSummary {
  const p = JSON.parse(readFileSync(file, "utf8")) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const probeHits = new Map<number, number[]>();
  const probesOf = (id: number): number[] => {
    let hit = probeHits.get(id);
    if (hit) return hit;
    const found = new Set<number>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { functionName, url } = byId.get(cur)!.callFrame;
      const label = `${functionName} ${url}`;
      INCLUSIVE.forEach(([, rx], i) => rx.test(label) && found.add(i));
    }
    hit = [...found];
    probeHits.set(id, hit);
    return hit;
  };
  const selfUs = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    selfUs.set(id, (selfUs.get(id) ?? 0) + (p.timeDeltas[i + 1] ?? 0));
  }
  const byComponent: Record<string, number> = {};
  const byFunction = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    const c = componentOf(url, functionName);
    byComponent[c] = (byComponent[c] ?? 0) + us;
    total += us;
    const short = url.replace(/^.*\/(node_modules|src|bench)\//, "$1/").replace(/^file:\/\//, "");
    const key = `${functionName || "(anonymous)"} ${short}:${lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  }
  const inclusive: Record<string, number> = {};
  for (const [id, us] of selfUs) for (const i of probesOf(id)) inclusive[INCLUSIVE[i]![0]] = (inclusive[INCLUSIVE[i]![0]] ?? 0) + us / 1000;
  const idle = byComponent.idle ?? 0;
  return {
    file,
    totalMs: total / 1000,
    busyMs: (total - idle) / 1000,
    byComponentMs: Object.fromEntries(Object.entries(byComponent).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, v / 1000])),
    topFunctions: [...byFunction]
      .filter(([k]) => !k.startsWith("(idle)"))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000 })),
    inclusiveMs: inclusive,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [dir, callsArg, topArg] = process.argv.slice(2);
  if (!dir) throw new Error("usage: tsx bench/profile-summary.ts <dir> [calls per process] [top N]");
  const calls = callsArg ? Number(callsArg) : undefined;
  for (const f of readdirSync(dir).filter((f) => f.endsWith(".cpuprofile")).sort()) {
    const s = summarise(join(dir, f), topArg ? Number(topArg) : 15);
    const per = (ms: number) => (calls ? `${((ms * 1000) / calls).toFixed(1)} µs/call` : `${ms.toFixed(0)} ms`);
    console.log(`\n## ${f}: busy ${per(s.busyMs)}`);
    for (const [k, ms] of Object.entries(s.byComponentMs)) if (k !== "idle") console.log(`  ${k.padEnd(52)} ${per(ms).padStart(16)}  ${((100 * ms) / s.busyMs).toFixed(1)}%`);
    console.log("  inclusive (self + callees):");
    for (const [k, ms] of Object.entries(s.inclusiveMs)) console.log(`    ${k.padEnd(50)} ${per(ms).padStart(16)}`);
    console.log("  top functions (self):");
    for (const { name, ms } of s.topFunctions) console.log(`    ${per(ms).padStart(16)}  ${name}`);
  }
}
