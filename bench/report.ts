/** The markdown table of a bench run (bench/results/latest.md, and BENCHMARKS.md's copy). */
import type { Results } from "./run.ts";

const row = (cells: (string | number)[]) => `| ${cells.join(" | ")} |`;
const f0 = (x: number) => x.toFixed(0);
const f2 = (x: number) => x.toFixed(2);

export function renderMarkdown(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(
    `Run ${r.startedAt}, ${r.durationS.toFixed(0)} s; ${r.settings.runs} interleaved runs, medians; ${r.settings.calls} calls per small-unary cell ` +
      `(a third at concurrency 1, a quarter for 64 KiB, a fiftieth for the ${r.settings.streamMessages}-message stream).`,
    `Machine: ${m.cpus} x ${m.model}, ${m.totalMemGiB.toFixed(1)} GiB, ${m.platform}; load average at start ${m.loadAvgAtStart.map(f2).join(" / ")}, at end ${m.loadAvgAtEnd.map(f2).join(" / ")}.`,
    `Versions: ${Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    ...(Object.keys(r.settings.resilienceEnv).length > 0 ? [`Resilience overrides from the environment for (d): ${JSON.stringify(r.settings.resilienceEnv)}.`] : []),
    ...(Object.keys(r.warmupErrors).length > 0 ? [`Warm-up failures: ${JSON.stringify(r.warmupErrors)}.`] : []),
    "",
    `Configurations: ${Object.entries(r.configurations).map(([k, v]) => `(${k}) ${v}`).join("; ")}.`,
    "",
    "CPU is per call in each process (a stream call is 1,000 messages); latency is per call as the client saw it.",
    "",
    row(["case", "config", "calls/s", "p50 ms", "p99 ms", "p99.9 ms", "server CPU µs/call", "client CPU µs/call", "errors"]),
    row(["---", "---", "---:", "---:", "---:", "---:", "---:", "---:", "---:"]),
  );
  for (const c of r.cases) {
    for (const [id, cell] of Object.entries(c.results)) {
      if (!cell) continue;
      out.push(row([c.id, `(${id}) ${r.configurations[id]}`, f0(cell.callsPerSec), f2(cell.p50Ms), f2(cell.p99Ms), f2(cell.p999Ms), f0(cell.serverCpuUsPerCall), f0(cell.clientCpuUsPerCall), cell.errors]));
    }
  }
  const withRatios = r.cases.filter((c) => Object.keys(c.ratios).length > 0);
  if (withRatios.length > 0) {
    out.push(
      "",
      "Ratios of (d) to each peer, and of the (e) prototype to (a) and (b), same run (calls/s: higher is better for the first; p99 and CPU: lower is better):",
      "",
      row(["case", "ratio", "calls/s", "p99", "server CPU/call", "client CPU/call"]),
      row(["---", "---", "---:", "---:", "---:", "---:"]),
    );
    for (const c of withRatios) {
      for (const [name, q] of Object.entries(c.ratios)) out.push(row([c.id, name, f2(q.callsPerSec!), f2(q.p99!), f2(q.serverCpuPerCall!), f2(q.clientCpuPerCall!)]));
    }
  }
  out.push("", "Peak RSS per process over the whole run (MiB):", "", row(["config", "server", "client"]), row(["---", "---:", "---:"]));
  for (const [id, rss] of Object.entries(r.peakRssMiB)) if (rss) out.push(row([`(${id}) ${r.configurations[id]}`, f0(rss.server), f0(rss.client)]));
  if (r.microCostsUs) {
    out.push("", "Per-component costs of (d) (and of the (e) prototype's token), in one process, mean µs per operation:", "", row(["component", "µs"]), row(["---", "---:"]));
    const names: Record<string, string> = {
      signCallToken: "sign a call token (client)",
      verifyCallToken: "verify a call token, replay check included (server)",
      replayCheck: "replay check alone (in-memory cache)",
      authorize: "contract authorization + tenant check",
      logLine: "one rpc log line (pino, file)",
      metricsObservation: "one server metrics observation (start + finish)",
      signMacToken: "(e) prototype: make a channel-bound MAC token (client)",
      verifyMacToken: "(e) prototype: check a MAC token's MAC and parse its claims (server, replay check not included)",
    };
    for (const [k, v] of Object.entries(r.microCostsUs)) out.push(row([names[k] ?? k, f2(v)]));
  }
  return out.join("\n") + "\n";
}
