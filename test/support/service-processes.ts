/**
 * The platform's services as real processes, the way a deployment runs them:
 * one `tt-rpc serve <service>` per service (same launcher as the mesh), real
 * certificates, a database file per service under one data directory, and
 * every downstream address in the environment. Each process's JSON log lines
 * go to `<data>/logs/<service>.log`, where `tt-rpc demo` reads the hops.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { addressVariable } from "../../src/runtime/client/address.ts";
import { REPO_ROOT, SOURCE_CONDITION } from "./exec.ts";
import { freePort } from "./ports.ts";

const MAIN = join(REPO_ROOT, "src/devtools/cli/main.ts");
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;

export interface ServiceProcess {
  readonly service: string;
  readonly port: number;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything the process wrote to stderr (diagnostics on failure). */
  readonly stderr: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServiceProcesses {
  readonly dataDir: string;
  readonly logDir: string;
  /** `<NAME>_RPC_ADDRESS` of every service: what each process and every client get. */
  readonly env: Record<string, string>;
  readonly running: ReadonlyMap<string, ServiceProcess>;
  /** Starts (or restarts, on the same port and database) one service; resolves once it listens. */
  start(service: string, extraEnv?: Record<string, string>): Promise<ServiceProcess>;
  /** Sends `signal` and waits for the process to exit. */
  stop(service: string, signal?: NodeJS.Signals): Promise<void>;
  stopAll(): Promise<void>;
}


export async function serviceProcesses(opts: {
  certs: string;
  dataDir: string;
  services: readonly string[];
  /** Settings for every process (e.g. TT_RPC_<TARGET>_<SETTING> resilience overrides). */
  env?: Record<string, string>;
}): Promise<ServiceProcesses> {
  const logDir = join(opts.dataDir, "logs");
  mkdirSync(logDir, { recursive: true });
  const ports = new Map<string, number>();
  const env: Record<string, string> = {};
  for (const s of opts.services) {
    const port = await freePort();
    ports.set(s, port);
    env[addressVariable(s)] = `127.0.0.1:${port}`;
  }
  const running = new Map<string, ServiceProcess>();
  const logs = new Map<string, WriteStream>();

  async function start(service: string, extraEnv: Record<string, string> = {}): Promise<ServiceProcess> {
    const port = ports.get(service);
    if (port === undefined) throw new Error(`${service} is not one of this test's services`);
    const child = spawn(
      process.execPath,
      [SOURCE_CONDITION, "--import", TSX_LOADER, MAIN, "serve", service, "--certs", opts.certs, "--data", opts.dataDir, "--port", String(port)],
      { cwd: REPO_ROOT, env: { TT_RPC_DRAIN_DELAY_MS: "0", ...process.env, ...opts.env, ...env, ...extraEnv, TT_RPC_LOG_LEVEL: "info" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let log = logs.get(service);
    if (!log) logs.set(service, (log = createWriteStream(join(logDir, `${service}.log`), { flags: "a" })));
    const stderr: string[] = [];
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
    const ready = new Promise<void>((resolve, reject) => {
      let buffered = "";
      const timer = setTimeout(() => reject(new Error(`${service} did not start within 60 s: ${stderr.join("")}`)), 60_000);
      child.stdout!.on("data", (chunk: Buffer) => {
        buffered += chunk.toString();
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.startsWith("{")) log!.write(`${line}\n`);
          else if (line.includes("serving gRPC on")) {
            clearTimeout(timer);
            resolve();
          }
        }
      });
      child.stderr!.on("data", (chunk: Buffer) => stderr.push(chunk.toString()));
      void exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`${service} exited before it was ready (${e.code ?? e.signal}): ${stderr.join("")}`));
      });
    });
    const proc: ServiceProcess = { service, port, pid: child.pid!, child, stderr, exited };
    running.set(service, proc);
    await ready;
    return proc;
  }

  async function stop(service: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const proc = running.get(service);
    if (!proc) return;
    running.delete(service);
    if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill(signal);
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), 15_000);
    await proc.exited.finally(() => clearTimeout(timer));
  }

  return {
    dataDir: opts.dataDir,
    logDir,
    env,
    running,
    start,
    stop,
    async stopAll() {
      await Promise.all([...running.keys()].map((s) => stop(s)));
      for (const log of logs.values()) log.end();
    },
  };
}
