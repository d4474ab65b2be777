/**
 * `tt-rpc serve` fails closed: without a complete, consistent PKI for our
 * trust domain it exits non-zero naming the missing or bad file, and never
 * creates keys. With one it serves and drains cleanly on SIGTERM.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initPki, pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { REPO_ROOT } from "../support/exec.ts";
import { CLI_LAUNCHER, cliEnv } from "../cli/run-cli.ts";

const SERVICE = "ticket-service";
let tmp: string;
let template: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "tt-fail-closed-"));
  template = join(tmp, "template");
  await initPki({ dir: template });
});

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** A fresh copy of the complete PKI, for one case to break. */
function pkiCopy(name: string): string {
  const dir = join(tmp, name);
  cpSync(template, dir, { recursive: true });
  return dir;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the compiled CLI (`node src/devtools/bin/tt-rpc.mjs serve ticket-service --certs <dir> --data <dir>.data --port 0`, packages from dist/; never the repository's default data directory). */
function startServe(dir: string) {
  const child = spawn(process.execPath, [CLI_LAUNCHER, "serve", SERVICE, "--certs", dir, "--data", mkdtempSync(`${dir}.data-`), "--port", "0"], {
    cwd: REPO_ROOT,
    env: cliEnv({ NODE_OPTIONS: "" }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  const exited = new Promise<Exit>((resolve) => {
    child.on("exit", (code, signal) => {
      // Let the pipes drain before reporting the output.
      setImmediate(() => resolve({ code, signal, stdout, stderr }));
    });
  });
  /** Resolves when stdout matches, rejects if the process exits first or the time is up. */
  const waitFor = (pattern: RegExp, timeoutMs: number) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${pattern} within ${timeoutMs} ms; stdout: ${stdout} stderr: ${stderr}`)), timeoutMs);
      const check = () => {
        const m = stdout.match(pattern);
        if (m) {
          clearTimeout(timer);
          child.stdout.off("data", check);
          resolve(m[0]);
        }
      };
      child.stdout.on("data", check);
      check();
      void exited.then((e) => {
        clearTimeout(timer);
        reject(new Error(`exited ${e.code ?? e.signal} before ${pattern}: ${e.stderr}`));
      });
    });
  return { child, exited, waitFor };
}

/** Runs serve against `dir` and expects it to refuse, bounded. */
async function expectRefusal(dir: string, names: RegExp): Promise<Exit> {
  const { child, exited } = startServe(dir);
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  const e = await exited.finally(() => clearTimeout(timer));
  expect(e.signal, `killed: did not exit by itself; stdout: ${e.stdout}`).toBeNull();
  expect(e.code).not.toBe(0);
  expect(e.stderr).toContain(`${SERVICE}: refusing to start`);
  expect(e.stderr).toMatch(names);
  expect(e.stdout).not.toContain("serving gRPC");
  return e;
}

const w = (dir: string) => pkiPaths(dir).workload(SERVICE);

describe("tt-rpc serve refuses to start without its material", () => {
  it("empty directory: names bundle.json and creates nothing", async () => {
    const dir = join(tmp, "empty");
    mkdirSync(dir);
    const e = await expectRefusal(dir, /bundle[/\\]bundle\.json: missing/);
    expect(e.code).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("missing tls.key", async () => {
    const dir = pkiCopy("no-key");
    rmSync(w(dir).key);
    await expectRefusal(dir, /ticket-service[/\\]tls\.key: missing/);
  });

  it("missing tls.crt", async () => {
    const dir = pkiCopy("no-cert");
    rmSync(w(dir).cert);
    await expectRefusal(dir, /ticket-service[/\\]tls\.crt: missing/);
  });

  it("missing jwt-signing.jwk.json", async () => {
    const dir = pkiCopy("no-jwt");
    rmSync(w(dir).jwt);
    await expectRefusal(dir, /ticket-service[/\\]jwt-signing\.jwk\.json: missing/);
  });

  it("a key that does not match its certificate", async () => {
    const dir = pkiCopy("wrong-key");
    copyFileSync(pkiPaths(dir).workload("payment-service").key, w(dir).key);
    await expectRefusal(dir, /ticket-service[/\\]tls\.key: key does not match .*ticket-service[/\\]tls\.crt/);
  });

  it("a bundle for another trust domain (trust_domain rewritten)", async () => {
    const dir = pkiCopy("other-domain");
    const path = pkiPaths(dir).bundleJson;
    const bundle = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...bundle, trust_domain: "other.example" }));
    await expectRefusal(dir, /bundle[/\\]bundle\.json: .*other\.example/);
  });

  it("a consistent bundle for another trust domain", async () => {
    const dir = pkiCopy("other-domain-consistent");
    const path = pkiPaths(dir).bundleJson;
    writeFileSync(path, readFileSync(path, "utf8").replaceAll("tickettoken.internal", "other.example"));
    await expectRefusal(dir, /bundle[/\\]bundle\.json: trust bundle is for "other\.example", not our trust domain tickettoken\.internal/);
  });

  it("a corrupted bundle", async () => {
    const dir = pkiCopy("corrupt-bundle");
    const path = pkiPaths(dir).bundleJson;
    const text = readFileSync(path, "utf8");
    writeFileSync(path, text.slice(0, Math.floor(text.length / 2)));
    await expectRefusal(dir, /bundle[/\\]bundle\.json: not valid JSON/);
  });
});

/**
 * Serves from `dir`, waits for the readiness line, sends one SIGTERM after
 * `settleMs` and returns how the process ended (SIGKILL after 5 s).
 */
async function serveThenTerm(dir: string, settleMs: number): Promise<Exit & { port: number; drainMs: number }> {
  const { child, exited, waitFor } = startServe(dir);
  const line = await waitFor(/serving gRPC on 127\.0\.0\.1:\d+/, 20_000);
  if (settleMs > 0) await new Promise((r) => setTimeout(r, settleMs));
  const t0 = Date.now();
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
  const e = await exited.finally(() => clearTimeout(timer));
  return { ...e, port: Number(line.split(":").at(-1)), drainMs: Date.now() - t0 };
}

describe("tt-rpc serve with a complete PKI", () => {
  it("serves, then drains and exits 0 on SIGTERM", async () => {
    const e = await serveThenTerm(pkiCopy("complete"), 100);
    expect(e.port).toBeGreaterThan(0);
    expect(e.signal, e.stderr).toBeNull();
    expect(e.code, e.stderr).toBe(0);
    expect(e.drainMs).toBeLessThan(5_000);
    expect(e.stdout).toContain("SIGTERM: draining");
  });

  // The signal handlers are installed before the readiness line is printed, so a
  // supervisor that signals as soon as it sees the line still gets a drain.
  // Several at once made the old window (line first, handlers after) visible.
  it("SIGTERM sent the moment the readiness line appears still drains and exits 0", async () => {
    const dir = pkiCopy("complete-race");
    const results = await Promise.all(Array.from({ length: 6 }, () => serveThenTerm(dir, 0)));
    expect(results.map((e) => `${e.code}/${e.signal}`)).toEqual(results.map(() => "0/null"));
  });
});
