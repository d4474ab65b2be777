/**
 * `tt-rpc serve` (the command every mesh child and container runs) checks the
 * whole environment before anything else: a bad setting exits 2 with every
 * problem on stderr (no stack trace, no secret) and nothing listening or
 * written; a valid one with an unknown TT_RPC_* variable starts and warns.
 * Real child processes.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { cliEnv } from "../cli/run-cli.ts";
import { killStarted, spawnCli, type Proc } from "../cli/processes.ts";
import { freePort } from "../support/ports.ts";

const PASSWORD = "pw-never-printed-8f3a";
const BAD_ENV = {
  TT_RPC_OPS_PORT: "99999",
  TT_RPC_MAX_MESSAGE_BYTES: "4MiB",
  TT_RPC_REDIS_URL: `http://app:${PASSWORD}@redis:6379`,
  TICKET_RPC_ADDRESS: "ticket-service",
  TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT: "0",
};

let pki: TestPki;
let dir: string;

beforeAll(async () => {
  pki = await createTestPki();
  dir = mkdtempSync(join(tmpdir(), "tt-config-"));
});

afterAll(() => {
  killStarted();
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
});


async function exitOf(p: Proc, timeoutMs = 30_000) {
  const timer = setTimeout(() => p.child.kill("SIGKILL"), timeoutMs);
  return p.exited.finally(() => clearTimeout(timer));
}

describe("tt-rpc serve with the environment checked first", () => {
  it("a bad setting: exit 2, every problem on stderr naming its variable, no stack trace, no secret, nothing started", async () => {
    const data = join(dir, "bad");
    const serve = spawnCli(["serve", "venue-service", "--certs", pki.dir, "--data", data, "--port", String(await freePort())], cliEnv(BAD_ENV));
    expect(await exitOf(serve)).toEqual({ code: 2, signal: null });
    const lines = serve.stderr().trim().split("\n");
    expect(lines[0]).toBe("venue-service: refusing to start: invalid configuration (5 problems):");
    expect(lines).toHaveLength(6);
    for (const variable of Object.keys(BAD_ENV)) expect(lines.filter((l) => l.startsWith(`  ${variable} `))).toHaveLength(1);
    expect(serve.stderr()).toMatch(/TT_RPC_MAX_MESSAGE_BYTES must be an integer number of bytes from 1024 to 2147483647/);
    expect(serve.stderr()).not.toContain(PASSWORD);
    expect(serve.stderr()).not.toMatch(/\n\s+at /);
    expect(serve.stdout()).toBe("");
    // Refused before the service opened anything: no database, no data directory.
    expect(existsSync(data)).toBe(false);
  }, 60_000);

  it("a valid environment with an unknown TT_RPC_* variable starts, warns about it, and drains on SIGTERM", async () => {
    const serve = spawnCli(
      ["serve", "venue-service", "--certs", pki.dir, "--data", join(dir, "good"), "--port", String(await freePort())],
      cliEnv({ TT_RPC_MAX_MESSAGE_BYTES: "1048576", TT_RPC_VENUE_SERVICE_BULKHEAD_LIMIT: "8", TT_RPC_BULKHEAD_LIMT: "8" }),
    );
    await serve.waitFor(/venue-service serving gRPC on/, 30_000);
    expect(serve.stderr()).toContain("venue-service: warning: TT_RPC_BULKHEAD_LIMT is not a setting (ignored; a typo?)");
    serve.child.kill("SIGTERM");
    expect(await exitOf(serve)).toEqual({ code: 0, signal: null });
  }, 60_000);

  it("the mesh refuses a bad setting once, before starting any child", async () => {
    const mesh = spawnCli(["mesh", "--certs", join(dir, "mesh-certs"), "--data", join(dir, "mesh-data")], cliEnv({ TT_RPC_LOG_LEVEL: "chatty" }));
    expect(await exitOf(mesh)).toEqual({ code: 2, signal: null });
    expect(mesh.stderr().trim().split("\n")).toEqual([
      "mesh: refusing to start: invalid configuration (1 problem):",
      '  TT_RPC_LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent, got "chatty"',
    ]);
    // Nothing created: not even the dev PKI.
    expect(existsSync(join(dir, "mesh-certs"))).toBe(false);
  }, 60_000);
});
