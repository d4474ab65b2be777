/**
 * The packages as a service team gets them: `npm pack` of @tickettoken/rpc (the runtime) and
 * @tickettoken/contracts, installed into a fresh project with no TypeScript tooling (no tsx, no
 * source condition), and a real call over mTLS from the compiled JavaScript. Needs `npm run
 * build` (npm test's pretest runs it) and the npm cache of `npm ci` (third-party packages are
 * installed --prefer-offline).
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initPki } from "../../src/devtools/pki/dev-ca.ts";
import { REPO_ROOT } from "../support/exec.ts";

interface Packed {
  readonly name: string;
  readonly filename: string;
  readonly files: readonly { path: string }[];
}

const work = mkdtempSync(join(tmpdir(), "tt-pack-"));
let packed: Packed[] = [];

/** npm with our Node first on PATH and no source condition: what a service team's machine has. */
function npm(args: string[], cwd: string, timeout = 180_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, NODE_OPTIONS: "", PATH: `${join(process.execPath, "..")}:${process.env.PATH ?? ""}` };
  return new Promise((resolve) => {
    execFile("npm", args, { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

beforeAll(async () => {
  const r = await npm(["pack", "--json", "--workspace", "src/runtime", "--workspace", "src/contracts", "--pack-destination", work], REPO_ROOT);
  expect(r.code, r.stderr).toBe(0);
  packed = JSON.parse(r.stdout) as Packed[];
}, 180_000);

afterAll(() => rmSync(work, { recursive: true, force: true }));

const runtime = () => packed.find((p) => p.name === "@tickettoken/rpc")!;
const contracts = () => packed.find((p) => p.name === "@tickettoken/contracts")!;

describe("npm pack", () => {
  it("packs the runtime as JavaScript and declarations only: no TypeScript source, no dev-only code", () => {
    const files = runtime().files.map((f) => f.path);
    expect(files).toContain("dist/index.js");
    expect(files).toContain("dist/index.d.ts");
    expect(files).toContain("dist/host.js");
    expect(files).toContain("dist/server/server.js");
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(files.every((f) => f === "package.json" || f.startsWith("dist/"))).toBe(true);
    // The dev CA, the CLI and the code generator live in @tickettoken/rpc-devtools.
    expect(files.filter((f) => /cert-issue|dev-ca|key-files|\/cli\/|codegen|tsbuildinfo/.test(f))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, "src/runtime/package.json"), "utf8")) as { dependencies: Record<string, string> };
    expect(Object.keys(manifest.dependencies)).not.toContain("tsx");
  });

  it("packs the contracts with their protos, and no TypeScript source", () => {
    const files = contracts().files.map((f) => f.path);
    expect(files).toContain("dist/gen/contracts.js");
    expect(files).toContain("dist/gen/tickettoken/ticket/v1/ticket_service_rpc.d.ts");
    expect(files).toContain("proto/tickettoken/ticket/v1/ticket_service.proto");
    expect(files).toContain("proto/tickettoken/rpc/v1/options.proto");
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    expect(files.filter((f) => f.endsWith(".binpb"))).toEqual([]);
  });
});

describe("the packed tarballs in a fresh project (plain node, no tsx)", () => {
  it("installs them and makes a real call over mTLS with the generated client", async () => {
    const app = join(work, "app");
    const certs = join(work, "certs");
    await initPki({ dir: certs });
    writeFileSync(join(work, "package.json"), "{}"); // keeps npm from walking up into the repository
    mkdirSync(app);
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "pack-consumer", private: true, type: "module" }));
    const install = await npm(
      ["install", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", join(work, runtime().filename), join(work, contracts().filename)],
      app,
    );
    expect(install.code, install.stderr).toBe(0);
    writeFileSync(join(app, "call.mjs"), CONSUMER);
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
      execFile(process.execPath, ["call.mjs", certs], { cwd: app, env: { ...process.env, NODE_OPTIONS: "" }, timeout: 60_000 }, (err, stdout, stderr) =>
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) }),
      ),
    );
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const line = r.stdout.split("\n").find((l) => l.startsWith("ANSWER "));
    expect(line, r.stdout).toBeDefined();
    const answer = JSON.parse(line!.slice("ANSWER ".length)) as Record<string, unknown>;
    expect(answer).toEqual({ ticketId: "7d3c2a50-0000-4000-8000-000000000001", status: "SOLD", canRefund: true, caller: "spiffe://tickettoken.internal/ns/dev/sa/payment-service" });
  }, 240_000);
});

/** A consumer's code: only the packages' public entry points. */
const CONSUMER = `
import { createServer, implement, callContext, createContextTokenMinter, workloadSpiffeId, closeClient } from "@tickettoken/rpc";
import { createMaterialSource, loadContextSigningKey } from "@tickettoken/rpc/host";
import { TicketServiceContract, createTicketServiceClient } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_rpc";
import { TicketStatus } from "@tickettoken/contracts/tickettoken/ticket/v1/ticket_service_pb";

const certs = process.argv[2];
const serverIdentity = await createMaterialSource({ dir: certs, workload: "ticket-service", pollMs: 0 });
const server = await createServer({
  identity: serverIdentity,
  host: "127.0.0.1",
  port: 0,
  services: [
    implement(TicketServiceContract, {
      getTicketStatus(req, ctx) {
        const caller = callContext(ctx).caller.spiffeId;
        return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true, userId: caller };
      },
    }),
  ],
});
const clientIdentity = await createMaterialSource({ dir: certs, workload: "payment-service", pollMs: 0 });
const client = createTicketServiceClient({ identity: clientIdentity, address: "127.0.0.1:" + server.port, env: {} });
const contextKey = await loadContextSigningKey(certs);
const minter = createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: contextKey.current });
const context = await minter.mint({ tenantId: "7c9e6679-7425-40de-944b-e07fc1f90ae7", userId: "u-1", scopes: [] });
const res = await client.getTicketStatus({ tenantId: "7c9e6679-7425-40de-944b-e07fc1f90ae7", ticketId: "7d3c2a50-0000-4000-8000-000000000001" }, { headers: { "tt-context": context } });
console.log("ANSWER " + JSON.stringify({ ticketId: res.ticketId, status: TicketStatus[res.status], canRefund: res.canRefund, caller: res.userId }));
closeClient(client);
await server.stop(1000);
serverIdentity.close();
clientIdentity.close();
`;
