/**
 * Every shell command of README.md, and every command the mesh banner
 * prints, run exactly as printed against a real mesh. The commands are read
 * from the README's ```bash blocks and inline `npm ...` / `npx ...` spans
 * (nothing is copied into this file), and run by bash in a scratch copy of
 * the repository (test/docs/scratch-repo.ts), so the README's default paths
 * (`.tt-rpc/certs`, `.tt-rpc/data`) are the scratch's own and the mesh is the
 * one `npm run mesh` starts there. The only rewrites are the documented ones:
 * the mesh runs with `--port-offset` (a free one), so every documented port
 * moves by it and `tt-rpc demo` gets the same `--port-offset`; the banner's
 * pid replaces `<venue-service pid from the banner>`. grpcurl is not
 * installable: each grpcurl command is parsed against grpcurl's flags
 * (test/docs/grpcurl.ts) and its `buf curl` twin runs in its place.
 * What cannot run here is listed below with its reason, and checked to be in
 * the README, so nothing is skipped silently.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serviceContracts } from "../../src/contracts/gen/contracts.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { createMaterialSource } from "../../src/runtime/identity/material.ts";
import { frameworkContract, HEALTH_CALLERS } from "../../src/runtime/server/framework-contracts.ts";
import { REPO_ROOT, type ExecResult } from "../support/exec.ts";
import { alive, freePortOffset, waitGone } from "../cli/processes.ts";
import { bufCurlTwin, parseGrpcurl } from "./grpcurl.ts";
import { expandVars, fencedBlocks, inlineCommands, readReadme, shellCommands, simpleAssignments, stripComment, type FencedBlock } from "./readme-blocks.ts";
import { createScratchRepo, type ScratchRepo } from "./scratch-repo.ts";

/** Commands of the README this test does not run, each with why (and where it is covered, if it is). */
const NOT_RUN: Readonly<Record<string, string>> = {
  "npm install && npm run mesh": "`npm install` would reinstall the shared node_modules; this test starts `npm run mesh` itself (with --port-offset) and runs every other command against it",
  "npm ci": "would reinstall the shared node_modules; .ci/run runs it on a bare machine",
  "npm install": "would reinstall the shared node_modules (the scratch copy links the installed packages)",
  "npm test": "the test suite this test belongs to",
  "kubectl apply -k deploy/overlays/dev": "no Kubernetes cluster here; test/deploy/manifests.test.ts validates the manifests and the overlay",
  "npm run generate": "test/docs/tutorial.test.ts runs it on its scratch copy after the tutorial's proto edit",
  "npm run typecheck": ".ci/run runs it as its own step; a full tsc over the repository is minutes of CPU on this shared machine",
  "npm run build": "`npm test` runs it first (pretest), and .ci/run as its own step",
  "npm run check:deps": ".ci/run runs it as its own step",
  "npm run bench": "about 3 minutes of load; BENCHMARKS.md holds its results",
  "npm run bench:quick": "a benchmark run (load, not a check); test/bench/harness.test.ts tests the harness",
  "npm run bench:token": "a benchmark (repeated timed runs under the machine's load), not a check",
};

/** Where a NOT_RUN reason says another file runs the command, that file must exist and mention it. */
const COVERED_BY: Readonly<Record<string, { file: string; mentions: string }>> = {
  "npm run generate": { file: "test/docs/tutorial.test.ts", mentions: "**Generate**" },
  "npm run typecheck": { file: ".ci/run", mentions: "npm run --silent typecheck" },
  "npm ci": { file: ".ci/run", mentions: "npm ci --no-audit --no-fund" },
  "npm run build": { file: "package.json", mentions: '"pretest": "npm run -s build' },
  "npm run check:deps": { file: ".ci/run", mentions: "npm run --silent check:deps" },
  "kubectl apply -k deploy/overlays/dev": { file: "test/deploy/manifests.test.ts", mentions: "overlays/dev" },
};

const readme = readReadme();
const bashBlocks = fencedBlocks(readme).filter((b) => b.lang === "bash");
/** The tutorial's block names an RPC that exists only after its proto edit: test/docs/tutorial.test.ts runs it. */
const tutorialBlocks = bashBlocks.filter((b) => b.section === "Adding an RPC");
const firstBlock = bashBlocks[0]!;
/** "What to try next": runs last, since it stops venue-service. */
const tryNext = bashBlocks[1]!;
const replicasBlock = bashBlocks.find((b) => b.section === "Running N replicas")!;
const otherBlocks = bashBlocks.filter((b) => ![firstBlock, tryNext, replicasBlock, ...tutorialBlocks].includes(b));

const PORTS = serviceContracts.flatMap((c) => [c.defaultPort, c.defaultPort + 1000, c.defaultPort + 2000]);

let scratch: ScratchRepo;
let offset = 0;
let mesh: ChildProcess | undefined;
let meshOut = "";
let venuePid = 0;
/** The banner's "stop venue-service, then: ..." command, run after the README's kill. */
let bannerStopped: string[] = [];

/** A documented port (50000-52999: gRPC, Connect, ops; 50104... for replicas) moved by the mesh's offset. */
function movePorts(command: string): string {
  return command
    .replace(/127\.0\.0\.1:(5[0-2]\d{3})\b/g, (_, p: string) => `127.0.0.1:${Number(p) + offset}`)
    .replace(/--port (5[0-2]\d{3})\b/g, (_, p: string) => `--port ${Number(p) + offset}`);
}

/** The documented rewrites, nothing else: ports, `tt-rpc demo ... --port-offset`, the banner's pid; grpcurl -> its buf curl twin. */
function runnable(command: string, vars: ReadonlyMap<string, string>): string {
  let c = movePorts(command);
  if (c.startsWith("grpcurl ")) c = bufCurlTwin(expandVars(c, vars)).command;
  c = c.replace("<venue-service pid from the banner>", String(venuePid));
  const code = stripComment(c);
  if (/tt-rpc demo /.test(code) && !code.includes("--port-offset")) c = `${code} --port-offset ${offset}`;
  return c;
}

/** `bash -euo pipefail -c <script>` in the scratch repository, its own process group (killed whole on timeout). */
function sh(script: string, timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], { cwd: scratch.dir, env: scratch.env(), stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    // Already gone.
  }
}

/** A block as one script: every command in order, each rewritten as documented, with a marker line before each. */
function script(block: FencedBlock, skip: (command: string) => boolean = () => false): { text: string; commands: string[] } {
  const commands = shellCommands(block.text).filter((c) => !skip(stripComment(c)));
  const vars = simpleAssignments(commands);
  const lines = commands.flatMap((c, i) => [`echo "@@ ${i}" >&2`, runnable(c, vars)]);
  return { text: lines.join("\n"), commands };
}

function expectOk(r: ExecResult, what: string): void {
  expect(r.code, `${what}\n--- stdout:\n${r.stdout}\n--- stderr:\n${r.stderr}`).toBe(0);
}

function waitForBanner(timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no mesh banner in ${timeoutMs} ms:\n${meshOut}`)), timeoutMs);
    const check = () => {
      if (/Each call token is single-use[^\n]*\n[\s\S]*Run a flow[^\n]*\n(.*\n){2}/.test(meshOut)) {
        clearTimeout(timer);
        resolve();
      }
    };
    mesh!.stdout!.on("data", check);
    mesh!.once("exit", (code) => reject(new Error(`mesh exited ${code}:\n${meshOut}`)));
  });
}

/** Health of ticket-service at `where`: an address option, or a caller's environment. */
async function healthy(where: { address: string } | { env: NodeJS.ProcessEnv }): Promise<Status> {
  const ops = await createMaterialSource({ dir: join(scratch.dir, ".tt-rpc", "certs"), workload: "ops", pollMs: 0 });
  const client = createServiceClient(frameworkContract(Health, "ticket-service", HEALTH_CALLERS), { identity: ops, ...where });
  try {
    return (await client.check({ service: "" }, { timeoutMs: 5_000 })).status;
  } finally {
    closeClient(client);
    ops.close();
  }
}

beforeAll(async () => {
  scratch = createScratchRepo({ withDist: true });
  offset = await freePortOffset([...PORTS, 50104, 50204, 50304]);
  // The README's `npm run mesh`, with the documented --port-offset.
  const first = shellCommands(firstBlock.text).map(stripComment);
  expect(first[0]).toBe("npm install && npm run mesh");
  mesh = spawn("bash", ["-c", `npm run mesh -- --port-offset ${offset}`], { cwd: scratch.dir, env: scratch.env(), stdio: ["ignore", "pipe", "pipe"], detached: true });
  mesh.stdout!.setEncoding("utf8").on("data", (d: string) => (meshOut += d));
  mesh.stderr!.setEncoding("utf8").on("data", (d: string) => (meshOut += d));
  await waitForBanner(150_000);
  venuePid = Number(/^ {2}venue-service +\S+ +\S+ +spiffe:\S+ +(\d+)/m.exec(meshOut)![1]);
}, 180_000);

afterAll(async () => {
  if (mesh && mesh.exitCode === null) {
    killGroup(mesh, "SIGTERM");
    const exited = await Promise.race([new Promise((r) => mesh!.once("exit", () => r(true))), new Promise((r) => setTimeout(() => r(false), 15_000))]);
    if (!exited) killGroup(mesh, "SIGKILL");
  }
  scratch?.remove();
}, 30_000);

describe("README commands, run as printed against a real mesh", () => {
  it("lists what it does not run, each with a reason, each present in the README (and covered where it says so)", () => {
    const all = new Set([...bashBlocks.flatMap((b) => shellCommands(b.text).map(stripComment)), ...inlineCommands(readme)]);
    for (const [command, reason] of Object.entries(NOT_RUN)) {
      expect(all.has(command), `"${command}" is listed as not run but is not in the README`).toBe(true);
      expect(reason.length).toBeGreaterThan(10);
    }
    for (const [command, { file, mentions }] of Object.entries(COVERED_BY)) {
      expect(NOT_RUN[command]).toBeDefined();
      expect(readFileSync(join(REPO_ROOT, file), "utf8"), `${file} covers ${command}`).toContain(mentions);
    }
    expect(tutorialBlocks.length).toBe(1);
    // Every expected output applies to some command of the blocks run one by one (no check that never runs).
    const run = otherBlocks.flatMap((b) => shellCommands(b.text).map(stripComment));
    for (const [command] of EXPECTED) expect(run.some((c) => command.test(c)), String(command)).toBe(true);
  });

  it("every grpcurl command in the README and the banner is a valid grpcurl invocation", () => {
    const banner = meshOut.split("\n").filter((l) => l.startsWith("  grpcurl ")).map((l) => l.trim());
    expect(banner).toHaveLength(3);
    const fromReadme = bashBlocks.flatMap((b) => {
      const cmds = shellCommands(b.text);
      const vars = simpleAssignments(cmds);
      return cmds.filter((c) => c.startsWith("grpcurl ")).map((c) => expandVars(c, vars));
    });
    expect(fromReadme.length).toBeGreaterThanOrEqual(7);
    for (const c of [...banner, ...fromReadme]) expect(() => parseGrpcurl(c), c).not.toThrow();
    // The parser refuses what grpcurl would refuse or misread.
    expect(() => parseGrpcurl("grpcurl -cacert a.crt -rpc-heder 'x: y' 127.0.0.1:1 list")).toThrow(/no flag -rpc-heder/);
    expect(() => parseGrpcurl("grpcurl -cacert")).toThrow(/needs a value/);
    expect(() => parseGrpcurl("grpcurl 127.0.0.1:1 list -plaintext")).toThrow(/after the address/);
    expect(() => parseGrpcurl("grpcurl -rpc-header token 127.0.0.1:1 a.B/C")).toThrow(/not "name: value"/);
    expect(() => parseGrpcurl("grpcurl -d '{bad' 127.0.0.1:1 a.B/C")).toThrow();
    expect(() => parseGrpcurl("grpcurl -plaintext -cacert a 127.0.0.1:1 list")).toThrow(/-plaintext with TLS/);
  });

  it("the banner's commands work as printed (grpcurl through its buf curl twin)", async () => {
    const lines = meshOut.split("\n");
    const printed = lines.filter((l) => /^ {2}(CTX=|grpcurl |npx )/.test(l)).map((l) => l.trim());
    const parenthetical = lines.find((l) => l.startsWith("  (") && l.includes("stop venue-service"));
    const stopped = parenthetical ? [...parenthetical.matchAll(/(npx tt-rpc demo [^,:]+?)(?=[,:])/g)].map((m) => m[1]!) : [];
    const metrics = /Metrics and probes: (curl \S+)/.exec(meshOut)?.[1];
    expect(printed.filter((l) => l.startsWith("npx buf curl"))).toHaveLength(3);
    expect(printed.filter((l) => l.startsWith("npx tt-rpc demo"))).toHaveLength(1);
    expect(stopped).toHaveLength(2);
    expect(metrics).toBeDefined();
    // The parenthetical's first command runs now (venue-service up); its second needs venue-service stopped: at the end.
    const text = [...printed, stopped[0]!, metrics!].map((c) => (c.startsWith("grpcurl ") ? bufCurlTwin(c).command : c)).join("\n");
    const r = await sh(text, 120_000);
    expectOk(r, text);
    expect(r.stdout).toContain("tickettoken.venue.v1.VenueService/GetVenue"); // --list-methods through reflection
    expect(r.stdout).toContain('"status": "SERVING"');
    expect(r.stdout.match(/"name": "Acme Arena"/g)).toHaveLength(2); // the business call, grpcurl's twin and buf curl
    expect(r.stdout).toMatch(/purchase: done/);
    expect(r.stdout).toMatch(/event-create: done/);
    expect(r.stdout).toContain("grpc_server_handled_total");
    // Kept for the end (it needs venue-service stopped): the banner's event-create, after the README's kill.
    bannerStopped = stopped;
  }, 150_000);

  it.each(otherBlocks.map((b) => [`${b.section || "top"} (README.md:${b.line})`, b] as const))("block %s works as printed", async (_, block) => {
    const { text, commands } = script(block, (c) => NOT_RUN[c] !== undefined);
    expect(commands.length).toBeGreaterThan(0);
    const r = await sh(text, 120_000);
    expectOk(r, text);
    for (const [command, expected] of EXPECTED) if (commands.some((c) => command.test(stripComment(c)))) expect(r.stdout, String(command)).toMatch(expected);
  }, 150_000);

  it("Running N replicas: the three serve commands start three SERVING replicas, and the exported address reaches them", async () => {
    const { text } = script(replicasBlock);
    const child = spawn("bash", ["-euo", "pipefail", "-c", `${text}\necho "address: $TICKET_RPC_ADDRESS"\nwait`], {
      cwd: scratch.dir,
      env: scratch.env(),
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    try {
      const address = await new Promise<string>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no address line: ${out}`)), 30_000);
        child.stdout.on("data", () => {
          const m = /address: (\S+)/.exec(out);
          if (m) {
            clearTimeout(t);
            resolve(m[1]!);
          }
        });
      });
      const replicas = address.split(",");
      expect(replicas).toEqual([50104, 50204, 50304].map((p) => `127.0.0.1:${p + offset}`));
      for (const replica of replicas) {
        const deadline = Date.now() + 60_000;
        let status: Status | undefined;
        while (status !== Status.SERVING && Date.now() < deadline) {
          status = await healthy({ address: replica }).catch(() => undefined);
          if (status !== Status.SERVING) await new Promise((r) => setTimeout(r, 500));
        }
        expect(status, `${replica}\n${out}`).toBe(Status.SERVING);
      }
      // The exported variable, in a caller's environment; the same list as the `address` option.
      expect(await healthy({ env: { TICKET_RPC_ADDRESS: address } })).toBe(Status.SERVING);
      expect(await healthy({ address })).toBe(Status.SERVING);
    } finally {
      killGroup(child, "SIGKILL");
    }
  }, 120_000);

  it("inline commands: they work, and what they regenerate is what the checkout holds (buf lint, breaking, baseline, docs:config, deploy/generate, npm pack)", async () => {
    const inline = inlineCommands(readme);
    // A synopsis (placeholders) or the bare name of the CLI launcher is not a command to paste.
    const synopsis = (c: string) => /[<[]|\.\.\./.test(c) || c === "npx tt-rpc" || c === "npm run -s tt-rpc --";
    const runs = inline.filter((c) => !synopsis(c) && NOT_RUN[c] === undefined && c !== "npm run mesh");
    expect(runs.sort()).toEqual(["npm pack -w @tickettoken/rpc", "npm run baseline", "npm run breaking", "npm run docs:config", "npx buf lint", "npx tsx deploy/generate.ts"].sort());
    for (const c of runs) {
      const r = await sh(c, 120_000);
      expectOk(r, c);
    }
    // npm pack wrote the runtime's tarball (test/packaging/pack.test.ts installs it and makes a call).
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "src/runtime/package.json"), "utf8")) as { version: string };
    expect(readdirSync(scratch.dir)).toContain(`tickettoken-rpc-${version}.tgz`);
    // Regenerating from the checkout changes nothing that is committed: the README's table and the manifests are current.
    expect(readFileSync(join(scratch.dir, "README.md"), "utf8")).toBe(readme);
    for (const f of readdirSync(join(REPO_ROOT, "deploy/base"))) {
      expect(readFileSync(join(scratch.dir, "deploy/base", f), "utf8"), f).toBe(readFileSync(join(REPO_ROOT, "deploy/base", f), "utf8"));
    }
    // Every synopsis names a real command (placeholders aside): tt-rpc's, or an npm script.
    const scripts = Object.keys((JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts);
    for (const c of inline.filter(synopsis)) {
      const npmScript = /^npm run (?:-s )?([\w:-]+)/.exec(c)?.[1];
      if (npmScript) expect(scripts, c).toContain(npmScript);
      else expect(c, c).toMatch(/^npx (tt-rpc|tsx|buf)\b/);
    }
  }, 300_000);

  it("What to try next works as printed, last: the flows, reflection, metrics, and venue-service stopped (stale venue, breaker opens)", async () => {
    const { text, commands } = script(tryNext);
    expect(commands.at(-1)).toMatch(/^kill <venue-service pid from the banner> && /);
    expect(alive(venuePid)).toBe(true);
    // Then the banner's version of the same (venue-service is down now: its second command).
    const r = await sh(`${text}\n${bannerStopped.at(-1)!}`, 240_000);
    expectOk(r, text);
    expect(await waitGone([venuePid], 10_000)).toEqual([]);
    expect(r.stdout).toContain("tickettoken.venue.v1.VenueService/GetVenue");
    expect(r.stdout).toContain("grpc_server_handled_total");
    for (const flow of ["purchase", "cross-tenant", "event-create"]) expect(r.stdout).toContain(`${flow}: done`);
    expect(r.stdout).toMatch(/PERMISSION_DENIED/);
    // With venue-service stopped: the venue event-service saw before, flagged stale, and its breaker for venue-service opens.
    expect(r.stdout).toMatch(/venue checked against a cached copy, flagged stale/);
    expect(r.stdout).toMatch(/breaker for venue-service: OPEN/);
  }, 300_000);
});

/** What some commands must print (beyond exiting 0), by what the command is (its code, comment stripped). */
const EXPECTED: ReadonlyArray<readonly [RegExp, RegExp]> = [
  [/certs show$/, /ticket-service +spiffe:\/\/tickettoken\.internal\/ns\/dev\/sa\/ticket-service/],
  [/token inspect /, /verdict: ACCEPT/],
  // A call: the method right after the address (grpcurl) or in the URL (buf curl, curl), not a token's --method.
  [/:\d+[ /]grpc\.health\.v1\.Health\/Check$/, /"status": "SERVING"/],
  [/:\d+[ /]tickettoken\.ticket\.v1\.TicketService\/GetTicketStatus$/, /"ticketId": "t-1"/],
  [/:\d+[ /]tickettoken\.ticket\.v1\.TicketService\/CountOrderTickets$/, /"count"/],
  [/:\d+[ /]tickettoken\.rpc\.v1\.AdminService\/ListBreakers$/, /"breakers"/],
];
