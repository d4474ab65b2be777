/**
 * README "Adding an RPC", walked end to end on a scratch copy of the
 * repository, with every step taken from the README: its proto block goes
 * into the ticket contract, its generate/lint/breaking commands run, its
 * TypeScript blocks are written where their `tutorial-file` directives say
 * and type-checked, ticket-service (the real module, createServer over mTLS,
 * PKI from test/support/pki.ts) serves the new RPC, the README's client
 * snippet calls it through the freshly generated client, and the README's
 * "Try it" block runs against it (its buf curl line as printed; its grpcurl
 * line parsed and run as its buf curl twin).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ACME } from "../../services/shared/demo-data.ts";
import { run, type ExecResult } from "../support/exec.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { bufCurlTwin } from "./grpcurl.ts";
import { fencedBlocks, readReadme, shellCommands, simpleAssignments, expandVars, snippetSource, type FencedBlock } from "./readme-blocks.ts";
import { createScratchRepo, type ScratchRepo } from "./scratch-repo.ts";

const readme = readReadme();
const section = readme.slice(readme.indexOf("\n## Adding an RPC\n"), readme.indexOf("\n## Architecture\n"));
const blocks = fencedBlocks(readme).filter((b) => b.section === "Adding an RPC");
const protoBlock = blocks.find((b) => b.lang === "proto")!;
const tsFiles = blocks.filter((b) => b.directives.has("tutorial-file"));
const tryIt = blocks.find((b) => b.lang === "bash")!;
const CONTRACT = "proto/tickettoken/ticket/v1/ticket_service.proto";

let scratch: ScratchRepo;
let pki: TestPki;
let server: ChildProcess | undefined;
let address = "";

/** `bash -c <script>` in the scratch repository. */
function sh(script: string, timeoutMs: number, env: NodeJS.ProcessEnv = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], { cwd: scratch.dir, env: scratch.env(env), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** The README's proto block, split into what goes inside `service TicketService { }` and the messages after it. */
function applyProtoEdit(block: FencedBlock): void {
  const lines = block.text.split("\n");
  const firstMessage = lines.findIndex((l) => /^message \w+ \{/.test(l));
  expect(firstMessage, "the proto block has an rpc, then its messages").toBeGreaterThan(0);
  const rpc = lines.slice(0, firstMessage).join("\n").trimEnd();
  const messages = lines.slice(firstMessage).join("\n").trimEnd();
  const path = join(scratch.dir, CONTRACT);
  const src = readFileSync(path, "utf8").split("\n");
  const service = src.findIndex((l) => l.startsWith("service TicketService {"));
  const close = src.findIndex((l, i) => i > service && l === "}");
  expect(service).toBeGreaterThan(0);
  const indented = rpc.split("\n").map((l) => (l === "" ? l : `  ${l}`));
  src.splice(close, 0, "", ...indented);
  writeFileSync(path, `${src.join("\n").trimEnd()}\n\n${messages}\n`);
}

/** Inline commands of the list item that starts with `label` (e.g. "**Generate**"). */
function stepCommands(label: string): string[] {
  const start = section.indexOf(label);
  const end = section.indexOf("\n3. ", start);
  return [...section.slice(start, end).matchAll(/`((?:npm|npx) [^`]+)`/g)].map((m) => m[1]!);
}

beforeAll(async () => {
  scratch = createScratchRepo();
  pki = await createTestPki();
  // The README's commands read the default PKI directory of the checkout.
  mkdirSync(join(scratch.dir, ".tt-rpc"));
  symlinkSync(pki.dir, join(scratch.dir, ".tt-rpc", "certs"));
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once("exit", r));
    server.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5_000))]);
    if (server.exitCode === null) server.kill("SIGKILL");
  }
  pki?.cleanup();
  scratch?.remove();
});

describe("README: Adding an RPC, end to end", () => {
  it("finds the tutorial's pieces in the README", () => {
    expect(protoBlock.text).toContain("rpc GetTicketSeat(GetTicketSeatRequest) returns (GetTicketSeatResponse)");
    expect(tsFiles.map((b) => b.directives.get("tutorial-file"))).toEqual(["services/ticket/handlers/seats.ts", "services/ticket/handlers.ts", "tutorial-call.ts"]);
    expect(stepCommands("**Generate**")).toEqual(["npm run generate", "npx buf lint", "npm run breaking"]);
    expect(shellCommands(tryIt.text).some((c) => c.startsWith("npx buf curl"))).toBe(true);
    expect(shellCommands(tryIt.text).some((c) => c.startsWith("grpcurl"))).toBe(true);
  });

  it("edit the contract, generate, implement: the generated code has the method and everything type-checks", async () => {
    applyProtoEdit(protoBlock);
    for (const command of stepCommands("**Generate**")) {
      const r = await sh(command, 90_000);
      expect(r.code, `${command}\n${r.stdout}\n${r.stderr}`).toBe(0);
    }
    const generated = readFileSync(join(scratch.dir, "src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts"), "utf8");
    expect(generated).toContain('path: "/tickettoken.ticket.v1.TicketService/GetTicketSeat"');
    expect(generated).toMatch(/getTicketSeat: \{[^}]*callers: \["scanning-service", "ops"\]/);

    for (const b of tsFiles) writeFileSync(join(scratch.dir, b.directives.get("tutorial-file")!), snippetSource(b));
    writeFileSync(
      join(scratch.dir, "tsconfig.tutorial.json"),
      JSON.stringify({ extends: "./tsconfig.json", include: [...tsFiles.map((b) => b.directives.get("tutorial-file")), "test/docs/tutorial-server.ts"] }),
    );
    const tsc = await sh("tsc --noEmit -p tsconfig.tutorial.json", 120_000);
    expect(tsc.stdout + tsc.stderr, "tsc over the tutorial's files").toBe("");
    expect(tsc.code).toBe(0);
  }, 180_000);

  it("the contract inventory accepts the new RPC (// New:), and the coverage test asks for a test calling it, as the README says", async () => {
    const r = await sh("vitest run test/contracts/inventory.test.ts test/services/coverage.test.ts --reporter=json --outputFile=vitest-tutorial.json", 90_000, {
      NODE_OPTIONS: "--conditions=tt-rpc-source",
    });
    expect(r.code).not.toBe(0);
    const report = JSON.parse(readFileSync(join(scratch.dir, "vitest-tutorial.json"), "utf8")) as {
      testResults: { name: string; status: string; assertionResults: { status: string; failureMessages: string[] }[] }[];
    };
    const file = (name: string) => report.testResults.find((t) => t.name.endsWith(name))!;
    expect(file("test/contracts/inventory.test.ts").status).toBe("passed");
    expect(file("test/contracts/inventory.test.ts").assertionResults.length).toBeGreaterThan(0);
    const failures = file("test/services/coverage.test.ts").assertionResults.filter((a) => a.status === "failed");
    expect(failures).toHaveLength(1);
    expect(failures[0]!.failureMessages.join("\n")).toMatch(/ticket-service: methods no test in test\/services calls[\s\S]*GetTicketSeat/);
  }, 120_000);

  it("serves the new RPC; the README's client snippet calls it through the generated client", async () => {
    server = spawn(process.execPath, ["--conditions=tt-rpc-source", "--import", "tsx", "test/docs/tutorial-server.ts"], {
      cwd: scratch.dir,
      env: scratch.env({ TUTORIAL_CERTS: pki.dir }),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    server.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
    address = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no "listening" line in 30 s: ${out}`)), 30_000);
      server!.stdout!.setEncoding("utf8").on("data", (d: string) => {
        out += d;
        const m = /listening (\S+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      server!.once("exit", (code) => reject(new Error(`server exited ${code}: ${out}`)));
    });

    // The snippet as printed; the names its context declares get real values from the environment.
    const call = tsFiles.find((b) => b.directives.get("tutorial-file") === "tutorial-call.ts")!;
    const declared = /declare const ([^;]+);/.exec(call.directives.get("snippet-context")!)![1]!.split(",").map((d) => d.split(":")[0]!.trim());
    expect(declared.sort()).toEqual(["contextToken", "tenantId", "ticketId"]);
    const values = declared.map((n) => `const ${n} = process.env[${JSON.stringify(`TUTORIAL_${n}`)}]!;`).join("\n");
    writeFileSync(join(scratch.dir, "tutorial-call.run.ts"), `${values}\n${call.text}\nprocess.exit(0);\n`);
    const r = await sh("node --conditions=tt-rpc-source --import tsx tutorial-call.run.ts", 30_000, {
      TICKET_RPC_ADDRESS: address,
      TUTORIAL_tenantId: ACME,
      TUTORIAL_ticketId: "t-1",
      TUTORIAL_contextToken: await pki.contextToken({ tenantId: ACME, userId: "u-1" }),
    });
    expect(r.code, r.stderr).toBe(0);
    // Seeded t-1 is general admission: its number, and empty section, row and seat.
    expect(r.stdout).toBe("TKT-0001   \n");
  }, 60_000);

  it("the README's Try it block works as printed: buf curl with reflection and an inline token; grpcurl through its twin", async () => {
    expect(address).not.toBe("");
    const commands = shellCommands(tryIt.text);
    const vars = simpleAssignments(commands);
    // Only the documented port changes: the mesh's ticket-service port becomes this server's.
    const port = address.split(":")[1]!;
    const script = commands.map((c) => (c.startsWith("grpcurl") ? bufCurlTwin(expandVars(c, vars)).command : c)).map((c) => c.replaceAll("127.0.0.1:50004", `127.0.0.1:${port}`));
    expect(script.filter((c) => c.includes(`127.0.0.1:${port}`))).toHaveLength(2);
    const r = await sh(script.join("\n"), 60_000);
    expect(r.code, r.stderr).toBe(0);
    // Both calls answer with the seeded ticket (buf curl prints each response as JSON).
    const answers = r.stdout.trim().split(/\n(?=\{)/).map((j) => JSON.parse(j) as unknown);
    expect(answers).toEqual([{ ticketId: "t-1", ticketNumber: "TKT-0001" }, { ticketId: "t-1", ticketNumber: "TKT-0001" }]);
  }, 60_000);
});
