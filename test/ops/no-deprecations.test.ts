/**
 * The guard behind a clean test run (test/support/no-deprecations.setup.ts):
 * a DeprecationWarning emitted in a test process is recorded, with its code,
 * for the setup file to fail the test with; other warnings are not. Run in a
 * child process so the warnings it provokes are not printed by this run.
 */
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/exec.ts";

const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const GUARD = pathToFileURL(`${REPO_ROOT}test/support/deprecations.ts`).href;

const SCRIPT = `
const { takeDeprecations, describeDeprecations } = await import(${JSON.stringify(GUARD)});
process.emitWarning("an experimental thing", "ExperimentalWarning");
process.emitWarning("old API used", { type: "DeprecationWarning", code: "TTRPC_TEST_DEP" });
await new Promise((resolve) => setImmediate(resolve));
const found = takeDeprecations();
console.log(JSON.stringify({ codes: found.map((w) => w.code), text: describeDeprecations(found), after: takeDeprecations().length }));
`;

describe("deprecation guard", () => {
  it("records a DeprecationWarning (and only that) with its code, once", async () => {
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ["--import", TSX_LOADER, "--input-type=module", "-e", SCRIPT], { cwd: REPO_ROOT, timeout: 20_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const result = JSON.parse(stdout) as { codes: string[]; text: string; after: number };
    expect(result.codes).toEqual(["TTRPC_TEST_DEP"]);
    expect(result.text).toContain("TTRPC_TEST_DEP: old API used");
    expect(result.after).toBe(0);
  });
});
