/**
 * The product logger's output path (src/runtime/observability/logger.ts):
 * asynchronous lines that all arrive (flushLogger, a quiet logger's single
 * line without a flush, process exit), and the flat-line logger of the per-call
 * "rpc" line, which keeps the top-level redaction paths.
 */
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, describe, expect, it } from "vitest";
import { asyncDestination, createLogger, flatLineLogger, flushLogger } from "../../src/runtime/observability/logger.ts";
import { REPO_ROOT, run } from "../support/exec.ts";

const dir = mkdtempSync(join(tmpdir(), "tt-logger-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (file: string) => (existsSync(file) ? readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0).map((l) => JSON.parse(l)) : []);

describe("asynchronous log destination", () => {
  it("flushLogger writes every line logged so far", async () => {
    const file = join(dir, "flush.log");
    const dest = asyncDestination(file);
    await once(dest, "ready");
    const logger = createLogger({ level: "info", destination: dest });
    for (let i = 0; i < 1000; i++) logger.info({ i }, "rpc");
    await flushLogger(logger);
    const got = lines(file);
    expect(got).toHaveLength(1000);
    expect(got.map((l) => l.i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    dest.end();
  });

  it("a quiet logger's line goes out by itself, without a flush", async () => {
    const file = join(dir, "quiet.log");
    const dest = asyncDestination(file);
    await once(dest, "ready");
    createLogger({ level: "info", destination: dest }).info({ quiet: true }, "one line");
    // Bounded wait for the asynchronous write (no flush called).
    for (let i = 0; i < 100 && lines(file).length === 0; i++) await sleep(20);
    expect(lines(file)).toMatchObject([{ quiet: true, msg: "one line" }]);
    dest.end();
  });

  it("lines not yet written when the process exits are written (pino's exit flush)", async () => {
    const file = join(dir, "exit.log");
    const script = `
      const { asyncDestination, createLogger } = await import(${JSON.stringify(join(REPO_ROOT, "src/runtime/observability/logger.ts"))});
      const dest = asyncDestination(${JSON.stringify(file)});
      dest.on("ready", () => {
        const logger = createLogger({ level: "info", destination: dest });
        for (let i = 0; i < 300; i++) logger.info({ i }, "rpc");
        process.exit(0);
      });`;
    const r = await run(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(lines(file)).toHaveLength(300);
  });
});

describe("flat-line logger (the per-call rpc line)", () => {
  it("still redacts the top-level secret fields, and keeps the others", async () => {
    const file = join(dir, "flat.log");
    const dest = asyncDestination(file);
    await once(dest, "ready");
    const logger = flatLineLogger(createLogger({ level: "info", destination: dest }).child({ service: "ticket-service" }));
    logger.info({ method: "/a/B", authorization: "Bearer secret-1", token: "secret-2", contextToken: "secret-3", key: "secret-4", privateKey: "secret-5" }, "rpc");
    await flushLogger(logger);
    const text = readFileSync(file, "utf8");
    expect(text).not.toContain("secret-");
    expect(lines(file)).toMatchObject([
      { service: "ticket-service", method: "/a/B", authorization: "[redacted]", token: "[redacted]", contextToken: "[redacted]", key: "[redacted]", privateKey: "[redacted]" },
    ]);
    dest.end();
  });
});
