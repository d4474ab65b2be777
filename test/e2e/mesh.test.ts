/**
 * The local mesh as real processes: `tt-rpc mesh` starts one `tt-rpc serve`
 * child per service (certificates from a temporary dev PKI it creates, ports
 * at a free --port-offset). Checked by pid and over mTLS: every child answers
 * health SERVING, the printed buf curl commands work as printed, a SIGKILLed
 * child is reported and restarted, SIGTERM (to the mesh, or to `npm run mesh`)
 * leaves no process behind, a SIGKILLed mesh takes its children with it, and a
 * port in use is one clear line and a non-zero exit.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { serviceContracts } from "../../src/contracts/gen/contracts.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import { createMaterialSource } from "../../src/runtime/identity/material.ts";
import type { ServiceName } from "../../src/runtime/identity/workloads.ts";
import { frameworkContract, HEALTH_CALLERS } from "../../src/runtime/server/framework-contracts.ts";
import { run } from "../support/exec.ts";
import { cliEnv } from "../cli/run-cli.ts";
import { alive, commandLine, descendants, freePortOffset, killStarted, spawnCli, spawnProc, trackPids, waitGone, type Proc } from "../cli/processes.ts";

const CONNECT = 1000;
const portOf = (s: ServiceName) => serviceContracts.find((c) => c.name === s)!.defaultPort;
const OPS = 2000;
const allPorts = (services: readonly ServiceName[]) => services.flatMap((s) => [portOf(s), portOf(s) + CONNECT, portOf(s) + OPS]);

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "tt-mesh-"));
  dirs.push(d);
  return d;
}

afterEach(() => killStarted());
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Row {
  service: ServiceName;
  grpc: string;
  connect: string;
  spiffeId: string;
  pid: number;
}

/** The banner's table rows. */
function table(stdout: string): Row[] {
  const rows: Row[] = [];
  for (const m of stdout.matchAll(/^ {2}([a-z]+-service) +(\S+) +(\S+) +(spiffe:\/\/\S+) +(\d+)/gm)) {
    rows.push({ service: m[1] as ServiceName, grpc: m[2]!, connect: m[3]!, spiffeId: m[4]!, pid: Number(m[5]) });
  }
  return rows;
}

async function healthStatus(certs: string, service: ServiceName, address: string): Promise<Status> {
  const ops = await createMaterialSource({ dir: certs, workload: "ops", pollMs: 0 });
  const client = createServiceClient(frameworkContract(Health, service, HEALTH_CALLERS), { identity: ops, address });
  try {
    return (await client.check({ service: "" }, { timeoutMs: 5_000 })).status;
  } finally {
    closeClient(client);
    ops.close();
  }
}

/** Bound for a test that starts processes: generous, the machine is shared (never a speed assertion). */
const PROCESS_TEST_MS = 120_000;

const BANNER = /SERVING over mTLS in [\d.]+ s[\s\S]*Each call token is single-use[^\n]*\n/;

async function startMesh(services: ServiceName[], extra: string[] = []): Promise<{ mesh: Proc; dir: string; offset: number; rows: Row[] }> {
  const dir = tempDir();
  const offset = await freePortOffset(allPorts(services));
  const mesh = spawnCli(["mesh", "--certs", join(dir, "certs"), "--data", join(dir, "data"), "--only", services.join(","), "--port-offset", String(offset), ...extra]);
  await mesh.waitFor(BANNER, 45_000);
  const rows = table(mesh.stdout());
  trackPids(rows.map((r) => r.pid));
  return { mesh, dir, offset, rows };
}

describe("tt-rpc mesh: one process per service", () => {
  it("starts each service as its own process answering SERVING; the printed buf curl commands work as printed; SIGKILL of a child restarts it; SIGTERM stops all", async () => {
    const services: ServiceName[] = ["venue-service", "ticket-service"];
    const { mesh, dir, offset, rows } = await startMesh(services);
    const certs = join(dir, "certs");

    // The table: one row per service, with its addresses, identity and a real pid of its own.
    expect(rows.map((r) => r.service).sort()).toEqual([...services].sort());
    for (const r of rows) {
      expect(r.grpc).toBe(`127.0.0.1:${portOf(r.service) + offset}`);
      expect(r.connect).toBe(`https://127.0.0.1:${portOf(r.service) + CONNECT + offset}`);
      expect(r.spiffeId).toBe(`spiffe://tickettoken.internal/ns/dev/sa/${r.service}`);
      expect(r.pid).not.toBe(mesh.pid);
      expect(alive(r.pid)).toBe(true);
      expect(await healthStatus(certs, r.service, r.grpc)).toBe(Status.SERVING);
    }
    expect(new Set(rows.map((r) => r.pid)).size).toBe(rows.length);
    // Its service processes are exactly the table's (a short-lived helper, e.g. tsx's esbuild, is not a service).
    expect(descendants(mesh.pid).filter((p) => / serve /.test(commandLine(p))).sort()).toEqual(rows.map((r) => r.pid).sort());

    // The printed commands, exactly as printed (the CTX line, then every buf curl line), in one shell.
    const printed = mesh.stdout().split("\n").filter((l) => /^ {2}(CTX=|npx buf curl )/.test(l)).map((l) => l.slice(2));
    expect(printed.filter((l) => l.startsWith("npx buf curl"))).toHaveLength(3);
    // As pasted into a terminal: no source condition (the banner's `npx tt-rpc` runs the compiled CLI).
    const saved = { PATH: process.env.PATH, NODE_OPTIONS: process.env.NODE_OPTIONS };
    process.env.PATH = cliEnv().PATH;
    process.env.NODE_OPTIONS = "";
    const r = await run("bash", ["-euo", "pipefail", "-c", printed.join("\n")], { timeoutMs: 60_000 }).finally(() => {
      for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain("tickettoken.venue.v1.VenueService/GetVenue"); // --list-methods through reflection
    expect(r.stdout).toContain('"status": "SERVING"');
    expect(r.stdout).toContain('"name": "Acme Arena"'); // the business call with its inline call token

    // Calls reach the terminal as compact lines and the service's log file as JSON lines.
    await mesh.waitFor(/venue-service +OK \/tickettoken\.venue\.v1\.VenueService\/GetVenue .*peer=ops/, 5_000);
    const log = readFileSync(join(dir, "data", "logs", "venue-service.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(log.some((l) => l.msg === "rpc" && l.service === "venue-service" && l.method === "/tickettoken.venue.v1.VenueService/GetVenue")).toBe(true);

    // A crashed child: reported with its signal, restarted with a new pid, SERVING again.
    const venue = rows.find((x) => x.service === "venue-service")!;
    process.kill(venue.pid, "SIGKILL");
    await mesh.waitFor(/venue-service +was killed by SIGKILL; restarting in \d+ ms/, 10_000, "stderr");
    const [, newPid] = await mesh.waitFor(/venue-service: restarted as pid (\d+), SERVING again/, 30_000, "stderr");
    const restarted = Number(newPid);
    trackPids([restarted]);
    expect(restarted).not.toBe(venue.pid);
    expect(alive(venue.pid)).toBe(false);
    expect(alive(restarted)).toBe(true);
    expect(await healthStatus(certs, "venue-service", venue.grpc)).toBe(Status.SERVING);

    // SIGTERM to the mesh: every child drains and exits, then the mesh exits 0.
    const children = descendants(mesh.pid);
    expect(children).toContain(restarted);
    mesh.child.kill("SIGTERM");
    expect(await mesh.exited).toEqual({ code: 0, signal: null });
    expect(await waitGone([...children, venue.pid], 10_000)).toEqual([]);
  }, PROCESS_TEST_MS);

  it("a SIGKILLed mesh leaves no orphans: each child exits when the mesh's IPC channel closes", async () => {
    const { mesh, rows } = await startMesh(["venue-service"], ["--no-connect"]);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.connect).toBe("-");
    mesh.child.kill("SIGKILL");
    await mesh.exited;
    expect(await waitGone([rows[0]!.pid], 15_000)).toEqual([]);
  }, PROCESS_TEST_MS);

  it("a port in use: one clear line naming the port and --port-offset, a non-zero exit, no restarts, the others stopped", async () => {
    const dir = tempDir();
    const services: ServiceName[] = ["venue-service", "event-service"];
    const offset = await freePortOffset(allPorts(services));
    const taken = portOf("event-service") + offset;
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(taken, "127.0.0.1", resolve));
    try {
      const mesh = spawnCli(["mesh", "--certs", join(dir, "certs"), "--data", join(dir, "data"), "--only", services.join(","), "--port-offset", String(offset)]);
      const timer = setTimeout(() => mesh.child.kill("SIGKILL"), 90_000);
      const exit = await mesh.exited.finally(() => clearTimeout(timer));
      expect(exit.signal).toBeNull();
      expect(exit.code).toBe(3);
      const lines = mesh.stderr().split("\n").filter((l) => l.includes(`port ${taken}`));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`event-service.*port ${taken} .*already in use.*--port-offset`));
      expect(mesh.stderr()).not.toMatch(/^\s+at /m);
      expect(mesh.stderr()).not.toContain("restarting");
      expect(descendants(mesh.pid)).toEqual([]);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  }, PROCESS_TEST_MS);
});

describe("tt-rpc serve", () => {
  it("exits 3 with one clear line when its port is in use", async () => {
    const dir = tempDir();
    const init = spawnCli(["certs", "init", "--dir", join(dir, "certs")]);
    expect((await init.exited).code).toBe(0);
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(0, "127.0.0.1", resolve));
    const port = (squatter.address() as { port: number }).port;
    try {
      const serve = spawnCli(["serve", "venue-service", "--certs", join(dir, "certs"), "--data", join(dir, "data"), "--port", String(port)]);
      const timer = setTimeout(() => serve.child.kill("SIGKILL"), 30_000);
      const exit = await serve.exited.finally(() => clearTimeout(timer));
      expect(exit).toEqual({ code: 3, signal: null });
      expect(serve.stderr().trim().split("\n")).toEqual([
        `venue-service: port ${port} on 127.0.0.1 is already in use (another mesh running? start it with --port-offset <n>)`,
      ]);
    } finally {
      await new Promise((r) => squatter.close(r));
    }
  }, PROCESS_TEST_MS);
});

describe("npm run mesh (the README's main command)", () => {
  it("brings up every contract as its own process; SIGTERM to the npm process leaves none behind", async () => {
    const dir = tempDir();
    const all = serviceContracts.map((c) => c.name);
    const offset = await freePortOffset(allPorts(all));
    const npm = spawnProc("npm", ["run", "mesh", "--", "--certs", join(dir, "certs"), "--data", join(dir, "data"), "--port-offset", String(offset), "--quiet"], cliEnv({ TT_RPC_LOG_LEVEL: "info" }));
    await npm.waitFor(BANNER, 50_000);
    const rows = table(npm.stdout());
    trackPids(rows.map((r) => r.pid));
    expect(rows.map((r) => r.service).sort()).toEqual([...all].sort());
    const everything = descendants(npm.pid);
    trackPids(everything);
    for (const r of rows) expect(everything).toContain(r.pid);
    const statuses = await Promise.all(rows.map((r) => healthStatus(join(dir, "certs"), r.service, r.grpc)));
    expect(statuses).toEqual(rows.map(() => Status.SERVING));
    console.log(npm.stdout().match(/SERVING over mTLS in [\d.]+ s/)![0]);

    npm.child.kill("SIGTERM");
    expect(await npm.exited).toEqual({ code: 0, signal: null });
    expect(await waitGone([npm.pid, ...everything], 15_000)).toEqual([]);
  }, PROCESS_TEST_MS);
});
