/**
 * Runs the real tt-rpc CLI in a child process, the way a developer does:
 * `node_modules/.bin/tsx src/cli/main.ts <args>`. Bounded by a timeout; never
 * throws on a non-zero exit. The Node running the tests goes first on PATH so
 * tsx's `#!/usr/bin/env node` picks the same (>= 24) runtime.
 */
import { execFile } from "node:child_process";
import { delimiter, dirname } from "node:path";
import { BIN, REPO_ROOT, type ExecResult } from "../support/exec.ts";

export const CLI_ENTRY = `${REPO_ROOT}src/cli/main.ts`;
export const CLI_LAUNCHER = `${REPO_ROOT}bin/tt-rpc.mjs`;

/** Environment for CLI children: our Node first on PATH, quiet logs, no drain delay (no load balancer to wait for). */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
    TT_RPC_LOG_LEVEL: "warn",
    TT_RPC_DRAIN_DELAY_MS: "0",
    ...extra,
  };
}

function exec(cmd: string, args: readonly string[], timeoutMs: number): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, env: cliEnv(), timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** `tsx src/cli/main.ts ...args` */
export function ttRpc(args: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
  return exec(BIN("tsx"), [CLI_ENTRY, ...args], timeoutMs);
}

/** `node bin/tt-rpc.mjs ...args` (the published launcher). */
export function ttRpcBin(args: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
  return exec(process.execPath, [CLI_LAUNCHER, ...args], timeoutMs);
}

/** Mints a token with the CLI and returns it; fails the test with the CLI's stderr otherwise. */
export async function cliOutput(args: readonly string[]): Promise<string> {
  const r = await ttRpc(args);
  if (r.code !== 0) throw new Error(`tt-rpc ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}
