/**
 * Certificate/key/bundle reload (src/runtime/identity/material.ts) against a real PKI
 * directory: never a half-updated pair, never two reloads at once, and a
 * failed reload keeps the last good material, is logged, and never becomes an
 * unhandled rejection.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createMaterialSource, type MaterialSource, type MaterialSourceOptions } from "../../src/runtime/identity/material.ts";
import { pkiPaths, rotateLeaf } from "../../src/devtools/pki/dev-ca.ts";
import { createLogger } from "../../src/runtime/observability/logger.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const WORKLOAD = "ticket-service";
interface Pair {
  cert: string;
  key: string;
}

let pki: TestPki;
let paths: ReturnType<ReturnType<typeof pkiPaths>["workload"]>;
let p0: Pair, p1: Pair, p2: Pair;
const sources: MaterialSource[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => unhandled.push(reason);

const readPair = (): Pair => ({ cert: readFileSync(paths.cert, "utf8"), key: readFileSync(paths.key, "utf8") });
/** Replaces a file the way rotation tools do (write + rename). */
function replace(path: string, data: string): void {
  writeFileSync(`${path}.new`, data, { mode: 0o600 });
  renameSync(`${path}.new`, path);
}
function writePair(p: Pair): void {
  replace(paths.cert, p.cert);
  replace(paths.key, p.key);
}
const pairOf = (m: MaterialSource): Pair => ({ cert: m.current().workload.certPem, key: m.current().workload.keyPem });
const matches = (p: Pair) => new X509Certificate(p.cert).checkPrivateKey(createPrivateKey(p.key));

async function source(opts: Partial<MaterialSourceOptions> = {}): Promise<MaterialSource> {
  const m = await createMaterialSource({ dir: pki.dir, workload: WORKLOAD, pollMs: 0, debounceMs: 0, onReloadError: () => {}, ...opts });
  sources.push(m);
  return m;
}

/** Collects log lines of a real pino logger. */
function captureLogs() {
  const lines: string[] = [];
  return { lines, logger: createLogger({ level: "debug", destination: { write: (s: string) => void lines.push(s) } }) };
}

/** Waits (bounded) until `condition` holds; for timer-driven reloads. */
async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition(), what).toBe(true);
}

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  pki = await createTestPki();
  paths = pkiPaths(pki.dir).workload(WORKLOAD);
  p0 = readPair();
  await rotateLeaf({ dir: pki.dir, workload: WORKLOAD });
  p1 = readPair();
  await rotateLeaf({ dir: pki.dir, workload: WORKLOAD });
  p2 = readPair();
  expect(new Set([p0.cert, p1.cert, p2.cert]).size).toBe(3);
});

beforeEach(() => writePair(p0));

afterEach(() => {
  sources.splice(0).forEach((s) => s.close());
  expect(unhandled).toEqual([]);
});

afterAll(() => {
  process.off("unhandledRejection", onUnhandled);
  pki?.cleanup();
});

describe("material reload", () => {
  it("partial write: a new certificate with the old key is refused until the key arrives", async () => {
    const errors: Error[] = [];
    const m = await source({ onReloadError: (e) => errors.push(e) });
    replace(paths.cert, p1.cert); // the writer has replaced the certificate, not yet the key
    expect(await m.refresh()).toBe(false);
    expect(pairOf(m)).toEqual(p0);
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining("key does not match")]);

    replace(paths.key, p1.key);
    expect(await m.refresh()).toBe(true);
    expect(pairOf(m)).toEqual(p1);
    expect(matches(pairOf(m))).toBe(true);
  });

  it("a mismatched pair (certificate of one rotation, key of another) is refused and logged; the last good pair stays", async () => {
    const { lines, logger } = captureLogs();
    const m = await source({ logger, onReloadError: undefined });
    writePair({ cert: p1.cert, key: p2.key });
    expect(await m.refresh()).toBe(false);
    expect(pairOf(m)).toEqual(p0);
    expect(lines.join("")).toContain("identity material reload failed; keeping the last good material");
    expect(lines.join("")).toContain("key does not match");
    expect(lines.join("")).not.toContain("PRIVATE KEY");
  });

  it("a removed file keeps the last good material; the restored file is picked up", async () => {
    const errors: Error[] = [];
    const m = await source({ onReloadError: (e) => errors.push(e) });
    rmSync(paths.key);
    expect(await m.refresh()).toBe(false);
    expect(await m.refresh()).toBe(false); // retried, but reported once while the files stay the same
    expect(pairOf(m)).toEqual(p0);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.message).toContain(`${paths.key}: missing`);

    writePair(p2);
    expect(await m.refresh()).toBe(true);
    expect(pairOf(m)).toEqual(p2);
  });

  it("a bad PEM (or bad bundle JSON) is refused without disturbing the current material", async () => {
    const errors: Error[] = [];
    const m = await source({ onReloadError: (e) => errors.push(e) });
    replace(paths.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
    expect(await m.refresh()).toBe(false);
    const bundle = readFileSync(pkiPaths(pki.dir).bundleJson, "utf8");
    try {
      replace(pkiPaths(pki.dir).bundleJson, bundle.slice(0, bundle.length / 2)); // truncated write
      expect(await m.refresh()).toBe(false);
    } finally {
      replace(pkiPaths(pki.dir).bundleJson, bundle);
    }
    expect(pairOf(m)).toEqual(p0);
    expect(errors.map((e) => e.message)).toEqual([expect.stringContaining("not a PEM certificate"), expect.stringContaining("not valid JSON")]);
  });

  it("two changes within the debounce become one reload, of the latest files", async () => {
    const gates: Array<() => void> = [];
    const delays: number[] = [];
    const delay = (ms: number) => {
      delays.push(ms);
      return new Promise<void>((resolve) => gates.push(resolve));
    };
    const m = await source({ debounceMs: 250, delay });
    const changes: string[] = [];
    m.onChange((next) => changes.push(next.workload.certPem));

    writePair(p1);
    const reload = m.refresh();
    await until(() => gates.length === 1, "the reload waits out the debounce");
    writePair(p2); // second change inside the debounce window
    gates.shift()!();
    await until(() => gates.length === 1, "files changed again: it waits once more");
    gates.shift()!();
    expect(await reload).toBe(true);
    expect(delays).toEqual([250, 250]);
    expect(changes).toEqual([p2.cert]); // one reload, never the intermediate pair
    expect(pairOf(m)).toEqual(p2);
  });

  it("runs one reload at a time: concurrent refreshes share it, and a change seen during a reload triggers one more pass", async () => {
    const m = await source();
    const seenPairs: Pair[] = [];
    let inListener = 0;
    let overlapped = false;
    const joined: Array<Promise<boolean>> = [];
    m.onChange((next) => {
      inListener++;
      if (inListener > 1) overlapped = true;
      seenPairs.push({ cert: next.workload.certPem, key: next.workload.keyPem });
      if (seenPairs.length === 1) {
        writePair(p2); // a rotation lands while the first reload is still finishing
        joined.push(m.refresh());
      }
      inListener--;
    });

    writePair(p1);
    const first = m.refresh();
    const second = m.refresh();
    expect(second).toBe(first); // joined, not a second concurrent reload
    expect(await first).toBe(true);
    expect(joined).toHaveLength(1);
    expect(await joined[0]).toBe(true);
    expect(seenPairs).toEqual([p1, p2]);
    expect(overlapped).toBe(false);
    expect(pairOf(m)).toEqual(p2);
    expect(await m.refresh()).toBe(false); // nothing left to do
  });

  it("timer-driven failures are logged by default and never escape, even when the hook or a listener throws", async () => {
    const { lines, logger } = captureLogs();
    let hookCalls = 0;
    const throwingHook = await source({
      pollMs: 10,
      logger,
      onReloadError: () => {
        hookCalls++;
        throw new Error("hook bug");
      },
    });
    const defaultLogging = await source({ pollMs: 10, logger, onReloadError: undefined });
    replace(paths.cert, "garbage");
    await until(() => hookCalls >= 1 && lines.some((l) => l.includes("reload failed")), "both sources noticed the bad file");
    await until(() => lines.some((l) => l.includes("onReloadError threw")), "the throwing hook was logged");
    expect(pairOf(throwingHook)).toEqual(p0);
    expect(pairOf(defaultLogging)).toEqual(p0);

    // A throwing listener is logged too; other listeners still get the new material.
    const got: string[] = [];
    defaultLogging.onChange(() => {
      throw new Error("listener bug");
    });
    defaultLogging.onChange((next) => got.push(next.workload.certPem));
    writePair(p1);
    await until(() => got.length === 1, "the fixed files were reloaded by the timer");
    expect(got).toEqual([p1.cert]);
    await until(() => lines.some((l) => l.includes("identity material listener failed")), "the listener failure was logged");
    expect(unhandled).toEqual([]);
  });
});
