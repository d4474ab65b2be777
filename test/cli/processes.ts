/**
 * Real processes for the mesh and serve tests: spawn with captured output,
 * wait for a line (bounded), check pids, find free port offsets, and kill
 * everything that was started (tests call `killStarted` in finally/afterAll).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { pathToFileURL } from "node:url";
import { REPO_ROOT, SOURCE_CONDITION } from "../support/exec.ts";
import { CLI_ENTRY, cliEnv } from "./run-cli.ts";

export const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match in stdout (or stderr); rejects on exit or timeout, with the output. */
  waitFor(pattern: RegExp, timeoutMs: number, stream?: "stdout" | "stderr"): Promise<RegExpMatchArray>;
  readonly exited: Promise<Exit>;
}

const started = new Set<ChildProcess>();
const extraPids = new Set<number>();

export function spawnProc(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = cliEnv({ TT_RPC_LOG_LEVEL: "info" })): Proc {
  const child = spawn(cmd, args, { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  started.add(child);
  const out = { stdout: "", stderr: "" };
  child.stdout!.setEncoding("utf8").on("data", (d: string) => (out.stdout += d));
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (out.stderr += d));
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code, signal) => setImmediate(() => resolve({ code, signal })));
  });
  const describe = () => `\n--- stdout:\n${out.stdout}\n--- stderr:\n${out.stderr}`;
  return {
    child,
    pid: child.pid!,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    exited,
    waitFor(pattern, timeoutMs, stream = "stdout") {
      return new Promise((resolve, reject) => {
        let finished = false;
        const done = (fn: () => void) => {
          if (finished) return;
          finished = true;
          clearInterval(poll);
          clearTimeout(timer);
          fn();
        };
        const check = () => {
          const m = out[stream].match(pattern);
          if (m) done(() => resolve(m));
        };
        const poll = setInterval(check, 50);
        const timer = setTimeout(() => done(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms${describe()}`))), timeoutMs);
        check();
        void exited.then((e) => {
          check();
          done(() => reject(new Error(`exited (${e.code ?? e.signal}) before ${pattern}${describe()}`)));
        });
      });
    },
  };
}

/** `node --conditions=tt-rpc-source --import tsx src/devtools/cli/main.ts <args>`: the CLI as its own process (signals reach it directly). */
export function spawnCli(args: readonly string[], env?: NodeJS.ProcessEnv): Proc {
  return spawnProc(process.execPath, [SOURCE_CONDITION, "--import", TSX_LOADER, CLI_ENTRY, ...args], env);
}

/** Pids the test learned about (e.g. mesh children), killed at the end too. */
export function trackPids(pids: readonly number[]): void {
  for (const p of pids) extraPids.add(p);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Polls until none of `pids` is alive; returns the ones still alive when the time is up. */
export async function waitGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Every descendant of `pid` (from /proc), so a test can check nothing is left behind. */
/** The command line of a live process ("" once it has exited). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

export function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parent.set(Number(name), ppid);
    } catch {
      // Exited while we looked.
    }
  }
  const found: number[] = [];
  const walk = (p: number) => {
    for (const [child, pp] of parent) {
      if (pp === p) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}

/**
 * A --port-offset whose ports (default ports + offset) are all free. The
 * offsets put the mesh above 61000, out of Linux's ephemeral range, so
 * other tests' port-0 sockets never take them meanwhile.
 */
export async function freePortOffset(defaultPorts: readonly number[]): Promise<number> {
  for (let i = 0; i < 50; i++) {
    // The highest port a mesh opens is minting-service's ops port, 50018 + 2000 + offset: stay under 65535.
    const offset = 11_000 + Math.floor(Math.random() * 2_400);
    const ok = await Promise.all(defaultPorts.map((p) => portFree(p + offset)));
    if (ok.every(Boolean)) return offset;
  }
  throw new Error("no free port offset found in 50 tries");
}

/** SIGKILL every process this file started and every tracked pid. */
export function killStarted(): void {
  for (const c of started) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const p of extraPids) if (alive(p)) process.kill(p, "SIGKILL");
  started.clear();
  extraPids.clear();
}
