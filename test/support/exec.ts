/** Runs a command with a hard timeout and returns its exit code and output (never throws on non-zero). */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = (name: string) => `${REPO_ROOT}node_modules/.bin/${name}`;
/** Node flag that resolves the workspace packages (@tickettoken/*) to their TypeScript sources, not dist/. */
export const SOURCE_CONDITION = "--conditions=tt-rpc-source";

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function run(cmd: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<ExecResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? REPO_ROOT, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}
