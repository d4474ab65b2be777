/**
 * A real redis-server for tests: its own temp dir, loopback only, a free
 * port, no persistence unless asked (`persistent` turns on an fsync-always
 * append-only file in the temp dir, so a restart keeps what was written, as
 * in production). `kill()` is a crash (SIGKILL), `start()` brings it back on
 * the same port; `close()` (afterAll) kills it and removes the dir.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { createRedisClient, parseRedisUrl } from "../../src/runtime/server/state-backends.ts";
import { freePort } from "./ports.ts";

export const REDIS_SERVER = "redis-server";

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** A connected client configured like the servers' (fails fast, no offline queue); closed by `close()`. */
  client(options?: { commandTimeoutMs?: number }): Promise<Redis>;
  /** SIGKILL, as a crash; resolves when the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: the port stays open but nothing answers (a hung server) until `resume()`. */
  pause(): void;
  resume(): void;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startRedis(options: { persistent?: boolean } = {}): Promise<TestRedis> {
  const dir = mkdtempSync(join(tmpdir(), "tt-redis-"));
  const clients: Redis[] = [];
  let proc: ChildProcess | undefined;
  let port = 0;

  const args = () => [
    "--port", String(port),
    "--bind", "127.0.0.1",
    "--dir", dir,
    "--save", "",
    "--appendonly", options.persistent ? "yes" : "no",
    ...(options.persistent ? ["--appendfsync", "always"] : []),
    "--daemonize", "no",
    "--loglevel", "notice",
  ];

  async function launch(): Promise<void> {
    const child = spawn(REDIS_SERVER, args(), { stdio: ["ignore", "pipe", "pipe"] });
    proc = child;
    let output = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`redis-server did not become ready in 10 s:\n${output}`)), 10_000);
      const fail = (err: Error) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(err);
      };
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on("data", onData);
      child.stderr!.on("data", onData);
      child.once("error", fail);
      child.once("exit", (code) => fail(new Error(`redis-server exited (${code}):\n${output}`)));
    });
    child.removeAllListeners("exit");
  }

  async function kill(): Promise<void> {
    const child = proc;
    proc = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  }

  // A free port can be taken between our probe and redis binding it: try a few.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 5 || !String(err).includes("Address already in use")) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async client(opts = {}) {
      const c = createRedisClient(parseRedisUrl(`redis://127.0.0.1:${port}`), { commandTimeoutMs: opts.commandTimeoutMs ?? 2000 });
      c.on("error", () => {}); // reconnects on its own; the test asserts on command results
      clients.push(c);
      if (c.status !== "ready") await new Promise<void>((resolve) => c.once("ready", () => resolve()));
      return c;
    },
    kill,
    pause: () => void proc?.kill("SIGSTOP"),
    resume: () => void proc?.kill("SIGCONT"),
    start: launch,
    async close() {
      clients.forEach((c) => c.disconnect());
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

