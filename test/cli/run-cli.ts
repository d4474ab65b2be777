/**
 * Runs the real tt-rpc CLI in a child process, the way a developer does:
 * `node_modules/.bin/tsx src/devtools/cli/main.ts <args>` with the workspace packages
 * resolved to their sources (NODE_OPTIONS=--conditions=tt-rpc-source, as `npm run
 * tt-rpc` does). Bounded by a timeout; never
 * throws on a non-zero exit. The Node running the tests goes first on PATH so
 * tsx's `#!/usr/bin/env node` picks the same (>= 24) runtime.
 */
import { execFile } from "node:child_process";
import { delimiter, dirname } from "node:path";
import { BIN, REPO_ROOT, SOURCE_CONDITION, type ExecResult } from "../support/exec.ts";

export const CLI_ENTRY = `${REPO_ROOT}src/devtools/cli/main.ts`;
/** The package's bin: the compiled CLI (src/devtools/dist, built by `npm run build`). */
export const CLI_LAUNCHER = `${REPO_ROOT}src/devtools/bin/tt-rpc.mjs`;

/** Environment for CLI children: our Node first on PATH, quiet logs, no drain delay (no load balancer to wait for). */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
    NODE_OPTIONS: SOURCE_CONDITION,
    TT_RPC_LOG_LEVEL: "warn",
    TT_RPC_DRAIN_DELAY_MS: "0",
    ...extra,
  };
}

function exec(cmd: string, args: readonly string[], timeoutMs: number, env = cliEnv()): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: REPO_ROOT, env, timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** `tsx src/devtools/cli/main.ts ...args` */
export function ttRpc(args: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
  return exec(BIN("tsx"), [CLI_ENTRY, ...args], timeoutMs);
}

/** `node src/devtools/bin/tt-rpc.mjs ...args`: the compiled CLI, packages from their dist/ (no source condition). */
export function ttRpcBin(args: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
  return exec(process.execPath, [CLI_LAUNCHER, ...args], timeoutMs, cliEnv({ NODE_OPTIONS: "" }));
}

/** `node services/bin/tt-service.mjs ...args`: the services package's bin (compiled, as a container runs it). */
export function ttService(args: readonly string[], timeoutMs = 20_000): Promise<ExecResult> {
  return exec(process.execPath, [`${REPO_ROOT}services/bin/tt-service.mjs`, ...args], timeoutMs, cliEnv({ NODE_OPTIONS: "" }));
}

/** Mints a token with the CLI and returns it; fails the test with the CLI's stderr otherwise. */
export async function cliOutput(args: readonly string[]): Promise<string> {
  const r = await ttRpc(args);
  if (r.code !== 0) throw new Error(`tt-rpc ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}
