/**
 * Keeps `npm run bench` working: runs the real harness (separate server and
 * client processes, mTLS on loopback) for configurations (a) bare grpc-js and
 * (d) the full tt-rpc path, a few hundred calls, and checks the JSON and the
 * table it writes. No timing assertions: speed is what the harness reports,
 * not what a test can judge on a shared machine.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, REPO_ROOT } from "../support/exec.ts";

const out = mkdtempSync(join(tmpdir(), "tt-bench-test-"));
afterAll(() => rmSync(out, { recursive: true, force: true }));

function runBench(env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(BIN("tsx"), ["bench/run.ts"], { cwd: REPO_ROOT, env: { ...process.env, ...env }, timeout: 150_000, maxBuffer: 16 * 2 ** 20 }, (err, _stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stderr: String(stderr) }),
    );
  });
}

const positive = expect.any(Number);

describe("npm run bench (quick settings, (a) and (d))", () => {
  it("writes latest.json with every case, medians, ratios and micro-costs, and latest.md", { timeout: 180_000 }, async () => {
    // Generous deadlines for (d): a shape check on a loaded CI machine must not trip the 2 s attempt timeout.
    const slack = { TT_RPC_TICKET_SERVICE_TIMEOUT_MS: "60000", TT_RPC_TICKET_SERVICE_ATTEMPT_TIMEOUT_MS: "30000" };
    const { code, stderr } = await runBench({ BENCH_CONFIGS: "a,d", BENCH_RUNS: "1", BENCH_CALLS: "150", BENCH_MICRO_N: "50", BENCH_OUT: out, ...slack });
    expect(stderr).toBe("");
    expect(code).toBe(0);

    const r = JSON.parse(readFileSync(join(out, "latest.json"), "utf8"));
    expect(r.settings).toEqual({ runs: 1, calls: 150, configs: ["a", "d"], streamMessages: 1000, resilienceEnv: slack });
    expect(r.warmupErrors).toEqual({});
    expect(r.machine).toMatchObject({ cpus: positive, model: expect.any(String), loadAvgAtStart: expect.any(Array) });
    for (const pkg of ["node", "@grpc/grpc-js", "@connectrpc/connect", "jose"]) expect(r.versions[pkg]).toMatch(/^v?\d+\.\d+\.\d+/);

    expect(r.cases.map((c: { id: string }) => c.id)).toEqual([
      "unary-small-c1",
      "unary-small-c16",
      "unary-small-c64",
      "unary-small-c256",
      "server-stream-1000-c4",
      "unary-64KiB-c16",
    ]);
    for (const c of r.cases) {
      expect(Object.keys(c.results).sort()).toEqual(["a", "d"]);
      for (const cell of Object.values(c.results) as Record<string, unknown>[]) {
        // Every call succeeded: the full path's token, context token and authorization all passed.
        expect(cell.errors, `${c.id}: ${cell.firstError}`).toBe(0);
        for (const k of ["callsPerSec", "p50Ms", "p99Ms", "p999Ms", "serverCpuUsPerCall", "clientCpuUsPerCall"]) {
          expect(cell[k], `${c.id}.${k}`).toBeGreaterThan(0);
        }
        expect(cell.p50Ms as number).toBeLessThanOrEqual(cell.p99Ms as number);
        expect(cell.p99Ms as number).toBeLessThanOrEqual(cell.p999Ms as number);
        expect(cell.samples).toHaveLength(1);
      }
      expect(Object.keys(c.ratios)).toEqual(["d/a"]);
      expect(c.ratios["d/a"]).toEqual({ callsPerSec: positive, p99: positive, serverCpuPerCall: positive, clientCpuPerCall: positive });
    }
    for (const id of ["a", "d"]) expect(r.peakRssMiB[id]).toEqual({ server: positive, client: positive });
    // (d) logged each call at info to its file: at least the measured calls (warm-up adds more).
    const measured = r.cases.reduce((n: number, c: { calls: number }) => n + c.calls, 0);
    expect(r.fullPathLogLines).toBeGreaterThanOrEqual(measured);
    expect(Object.keys(r.microCostsUs).sort()).toEqual(["authorize", "logLine", "metricsObservation", "replayCheck", "signCallToken", "signMacToken", "verifyCallToken", "verifyMacToken"]);
    for (const v of Object.values(r.microCostsUs)) expect(v).toBeGreaterThan(0);

    const md = readFileSync(join(out, "latest.md"), "utf8");
    expect(md).toContain("| unary-small-c16 | (d) tt-rpc full path |");
    expect(md).toContain("| unary-small-c64 | d/a |");
  });

  it("refuses an unknown configuration", async () => {
    const { code, stderr } = await runBench({ BENCH_CONFIGS: "a,z", BENCH_OUT: out });
    expect(code).not.toBe(0);
    expect(stderr).toContain("unknown configuration z");
  });
});
