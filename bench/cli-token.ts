/**
 * `npm run bench:token`: how long one `tt-rpc token` takes, start to exit, as a grpcurl or
 * `buf curl` session pays it once per call (issue #10: under 300 ms). Runs the package bin
 * (src/devtools/bin/tt-rpc.mjs: the compiled CLI from dist/, no tsx, no source condition) on
 * this Node, against a fresh dev PKI in a temp directory; reports the median, p90 and max of
 * BENCH_TOKEN_RUNS invocations (default 20), and for reference the same command through tsx
 * from the sources (`npm run tt-rpc -- token`, what it cost before the build). Needs `npm run build`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { initPki } from "../src/devtools/pki/dev-ca.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const RUNS = Number(process.env.BENCH_TOKEN_RUNS ?? 20);
const OUT = process.env.BENCH_OUT ?? join(ROOT, "bench/results");
const TARGET_MS = 300;

function time(cmd: string, args: string[], env: NodeJS.ProcessEnv): number {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: ROOT, env, encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0 || !/^ey[\w-]+\.[\w-]+\.[\w-]+\n$/.test(r.stdout)) throw new Error(`tt-rpc token failed (${r.status}): ${r.stderr}`);
  return ms;
}

function summary(samples: number[]) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
  return { runs: s.length, medianMs: +at(0.5).toFixed(1), p90Ms: +at(0.9).toFixed(1), maxMs: +s[s.length - 1]!.toFixed(1) };
}

const certs = mkdtempSync(join(tmpdir(), "tt-bench-token-"));
try {
  await initPki({ dir: certs });
  const args = ["token", "--certs", certs, "--as", "ops", "--aud", "ticket-service", "--method", "/tickettoken.ticket.v1.TicketService/GetTicketStatus"];
  const env = { ...process.env, NODE_OPTIONS: "" };
  time(process.execPath, [join(ROOT, "src/devtools/bin/tt-rpc.mjs"), ...args], env); // warm the file cache
  const compiled = Array.from({ length: RUNS }, () => time(process.execPath, [join(ROOT, "src/devtools/bin/tt-rpc.mjs"), ...args], env));
  const viaTsx = Array.from({ length: Math.min(5, RUNS) }, () =>
    time(join(ROOT, "node_modules/.bin/tsx"), [join(ROOT, "src/devtools/cli/main.ts"), ...args], { ...env, NODE_OPTIONS: "--conditions=tt-rpc-source" }),
  );
  const result = {
    when: new Date().toISOString(),
    node: process.version,
    load: (await import("node:os")).loadavg().map((l) => +l.toFixed(2)),
    targetMs: TARGET_MS,
    compiled: summary(compiled),
    sourcesThroughTsx: summary(viaTsx),
  };
  mkdirSync(OUT, { recursive: true });
  writeFileSync(join(OUT, "cli-token.json"), JSON.stringify(result, null, 2) + "\n");
  console.log(
    `tt-rpc token (compiled bin): median ${result.compiled.medianMs} ms, p90 ${result.compiled.p90Ms} ms, max ${result.compiled.maxMs} ms over ${RUNS} runs ` +
      `(target < ${TARGET_MS} ms: ${result.compiled.medianMs < TARGET_MS ? "met" : "MISSED"}); through tsx from the sources: median ${result.sourcesThroughTsx.medianMs} ms. ` +
      `Load average ${result.load.join(" / ")}. Written to ${join(OUT, "cli-token.json")}.`,
  );
} finally {
  rmSync(certs, { recursive: true, force: true });
}
