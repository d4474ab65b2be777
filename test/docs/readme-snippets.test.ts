/**
 * Every ```ts block of README.md type-checks. Each block becomes a file in
 * test/.readme-snippets/ (inside the repo, so `@tickettoken/*` imports resolve
 * as they do for a service), prefixed only by the context the README itself
 * declares right above the block (`<!-- snippet-context: ... -->`), and
 * `tsc --noEmit` runs over them with the repository's compiler settings.
 * The tutorial's blocks (`<!-- tutorial-file: ... -->`) name a method that
 * exists only after the tutorial's proto edit: test/docs/tutorial.test.ts
 * type-checks and runs them after generating code on a scratch copy.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BIN, REPO_ROOT, run } from "../support/exec.ts";
import { fencedBlocks, readReadme, snippetSource } from "./readme-blocks.ts";

const DIR = join(REPO_ROOT, "test", ".readme-snippets");
const blocks = fencedBlocks(readReadme()).filter((b) => b.lang === "ts" || b.lang === "typescript");
const tutorial = blocks.filter((b) => b.directives.has("tutorial-file"));
const standalone = blocks.filter((b) => !b.directives.has("tutorial-file"));

afterAll(() => rmSync(DIR, { recursive: true, force: true }));

describe("README TypeScript snippets", () => {
  it("finds the README's snippets: the tutorial's in Adding an RPC, the others standalone", () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    expect(standalone.length).toBeGreaterThanOrEqual(2);
    expect(tutorial.map((b) => b.section)).toEqual(tutorial.map(() => "Adding an RPC"));
    expect(tutorial.map((b) => b.directives.get("tutorial-file"))).toEqual(["services/ticket/handlers/seats.ts", "services/ticket/handlers.ts", "tutorial-call.ts"]);
  });

  it("every standalone snippet type-checks with the repository's compiler settings", async () => {
    rmSync(DIR, { recursive: true, force: true });
    mkdirSync(DIR, { recursive: true });
    const files = standalone.map((b) => {
      const name = `readme-line-${b.line}.ts`;
      writeFileSync(join(DIR, name), snippetSource(b));
      return name;
    });
    writeFileSync(
      join(DIR, "tsconfig.json"),
      JSON.stringify({ extends: "../../tsconfig.json", include: files }, null, 2),
    );
    const r = await run(BIN("tsc"), ["--noEmit", "-p", join(DIR, "tsconfig.json")], { timeoutMs: 120_000 });
    // tsc names each failing file (readme-line-<N>.ts: the README line of the block's fence).
    expect(r.stdout + r.stderr, "tsc on the README's snippets").toBe("");
    expect(r.code).toBe(0);
  }, 150_000);

  it("a snippet with an error does fail the check (the harness is not vacuous)", async () => {
    mkdirSync(DIR, { recursive: true });
    writeFileSync(join(DIR, "broken.ts"), snippetSource({ ...standalone[0]!, text: `${standalone[0]!.text}\nconst n: number = "not a number";` }));
    writeFileSync(join(DIR, "tsconfig.broken.json"), JSON.stringify({ extends: "../../tsconfig.json", include: ["broken.ts"] }));
    const r = await run(BIN("tsc"), ["--noEmit", "-p", join(DIR, "tsconfig.broken.json")], { timeoutMs: 120_000 });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toMatch(/broken\.ts\(\d+,\d+\): error TS2322/);
  }, 150_000);
});
