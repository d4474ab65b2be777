/**
 * The mesh's children: one `tt-rpc serve <service>` process per service, on
 * the same Node and started the way the mesh was (the compiled CLI, or the
 * TypeScript sources with the tsx loader), with no npm or tsx wrapper in
 * between, so a signal reaches the service itself. Each child gets an IPC channel: it
 * reports where it listens, and it drains and exits when the channel closes,
 * so even a SIGKILLed mesh leaves no orphans. Children run in their own
 * process group so a terminal's Ctrl-C reaches only the mesh, which then
 * stops them in order.
 *
 * A child that crashes (non-zero exit or a signal, not caused by us) is
 * reported and restarted with exponential backoff (restart-policy.ts); one
 * that drained and exited 0 was stopped on purpose and stays down;
 * a child that cannot start for a reason a restart cannot fix (port in use,
 * missing PKI material, bad usage) is fatal for the whole mesh.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { ServiceName } from "@tickettoken/rpc/internal/identity/workloads";
import type { CliIo } from "@tickettoken/services/host/cli-io";
import { EXIT_PORT_IN_USE } from "@tickettoken/services/host/serve";
import { viewLine } from "./log-view.ts";
import { decideRestart, MAX_RESTARTS, RESTART_WINDOW_MS } from "./restart-policy.ts";

const FROM_SOURCE = import.meta.url.endsWith(".ts");
const MAIN = fileURLToPath(new URL(FROM_SOURCE ? "../main.ts" : "../main.js", import.meta.url));
/** From the sources (`npm run mesh`): the tsx loader, and workspace packages resolved to their sources. */
const NODE_ARGS = FROM_SOURCE
  ? ["--conditions=tt-rpc-source", "--import", pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href]
  : [];

/** A stopping child gets the server's drain grace plus a margin before SIGKILL. */
const STOP_TIMEOUT_MS = 15_000;

export interface ChildSpec {
  readonly service: ServiceName;
  /** Arguments after `serve <service>`. */
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly logFile: string;
}

export interface Started {
  readonly service: ServiceName;
  readonly pid: number;
  readonly port: number;
  readonly connectPort: number | null;
}

export interface SupervisorEvents {
  /** A child (re)started and reported its ports; the mesh checks its health. */
  onStarted(started: Started, restart: number): void;
  /** A child cannot run, and restarting will not help: the mesh stops. */
  onFatal(service: ServiceName, exitCode: number): void;
}

interface Slot {
  readonly spec: ChildSpec;
  readonly log: WriteStream;
  readonly prefix: string;
  child?: ChildProcess;
  restarts: number[];
  timer?: NodeJS.Timeout;
  exited?: Promise<void>;
}

export interface Supervisor {
  start(): void;
  /** Current pid per service (undefined while down). */
  pid(service: ServiceName): number | undefined;
  /** SIGTERM to every child (drain), SIGKILL to any still running after the timeout; no more restarts. */
  stopAll(): Promise<void>;
}

export function createSupervisor(specs: readonly ChildSpec[], io: CliIo, events: SupervisorEvents, opts: { quiet: boolean }): Supervisor {
  const width = Math.max(...specs.map((s) => s.service.length));
  const slots = new Map<ServiceName, Slot>();
  let stopping = false;
  for (const spec of specs) {
    mkdirSync(join(spec.logFile, ".."), { recursive: true });
    slots.set(spec.service, { spec, log: createWriteStream(spec.logFile, { flags: "a" }), prefix: spec.service.padEnd(width), restarts: [] });
  }

  function pipe(slot: Slot, stream: "stdout" | "stderr", readable: NodeJS.ReadableStream): void {
    createInterface({ input: readable, crlfDelay: Infinity }).on("line", (line) => {
      const view = viewLine(slot.spec.service, slot.prefix, stream, line, opts.quiet);
      slot.log.write(`${view.file}\n`);
      if (view.terminal !== undefined) (stream === "stderr" ? io.err : io.out)(view.terminal);
    });
  }

  function launch(slot: Slot, restart: number): void {
    const { spec } = slot;
    const child = spawn(process.execPath, [...NODE_ARGS, MAIN, "serve", spec.service, ...spec.args], {
      env: spec.env,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
      detached: true,
    });
    slot.child = child;
    pipe(slot, "stdout", child.stdout!);
    pipe(slot, "stderr", child.stderr!);
    let ready = false;
    child.on("message", (m: { type?: string; port?: number; connectPort?: number | null }) => {
      if (m?.type !== "ready" || ready) return;
      ready = true;
      events.onStarted({ service: spec.service, pid: child.pid!, port: Number(m.port), connectPort: m.connectPort ?? null }, restart);
    });
    slot.exited = new Promise<void>((resolve) => {
      child.on("error", (err) => {
        io.err(`${slot.prefix} could not start: ${err.message}`);
        resolve();
      });
      child.on("exit", (code, signal) => {
        if (slot.child === child) slot.child = undefined;
        resolve();
        if (stopping) return;
        // Stdout/stderr may still hold the child's last line (why it failed): print it first.
        setImmediate(() => onUnexpectedExit(slot, code, signal, ready));
      });
    });
  }

  function onUnexpectedExit(slot: Slot, code: number | null, signal: NodeJS.Signals | null, wasReady: boolean): void {
    if (stopping) return;
    const service = slot.spec.service;
    // Port in use, or (before serving) missing PKI material / bad usage: a restart cannot fix these.
    if (code === EXIT_PORT_IN_USE || (!wasReady && (code === 1 || code === 2))) {
      events.onFatal(service, code);
      return;
    }
    // Stopped on purpose by someone else (SIGTERM to the child drains and exits 0): leave it down, e.g. to watch a breaker open.
    if (code === 0) {
      io.err(`${slot.prefix} stopped (exit code 0, not by the mesh); not restarting it`);
      return;
    }
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const { decision, restarts } = decideRestart(slot.restarts, Date.now());
    slot.restarts = restarts;
    if (!decision.restart) {
      io.err(`${slot.prefix} ${how}; gave up after ${MAX_RESTARTS} restarts within ${RESTART_WINDOW_MS / 1000} s (the other services keep running)`);
      return;
    }
    const { delayMs: delay, attempt } = decision;
    io.err(`${slot.prefix} ${how}; restarting in ${delay} ms (restart ${attempt} of ${MAX_RESTARTS} within ${RESTART_WINDOW_MS / 1000} s)`);
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (!stopping) launch(slot, attempt);
    }, delay);
  }

  async function stopOne(slot: Slot): Promise<void> {
    if (slot.timer) clearTimeout(slot.timer);
    const child = slot.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await slot.exited;
      clearTimeout(kill);
    }
    await new Promise<void>((resolve) => slot.log.end(resolve));
  }

  return {
    start() {
      for (const slot of slots.values()) launch(slot, 0);
    },
    pid(service) {
      return slots.get(service)?.child?.pid;
    },
    async stopAll() {
      stopping = true;
      await Promise.all([...slots.values()].map(stopOne));
    },
  };
}
