/**
 * The README's Configuration table is the schema's: every variable the
 * schema knows is documented, nothing is documented that does not exist, and
 * the rows say what the schema says. Refresh with
 * `npm run docs:config`.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TABLE_END, TABLE_START, documentedNames, renderConfigurationTable } from "../../src/devtools/cli/config-docs.ts";
import { REPO_ROOT } from "../support/exec.ts";

const readme = readFileSync(`${REPO_ROOT}README.md`, "utf8");

function readmeTable(): string {
  const start = readme.indexOf(TABLE_START);
  const end = readme.indexOf(TABLE_END);
  expect(start, "configuration table markers in README.md").toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(start);
  return readme.slice(start + TABLE_START.length, end).trim();
}

describe("README Configuration table", () => {
  it("documents exactly the schema's variables", () => {
    const documented = readmeTable()
      .split("\n")
      .slice(2)
      .map((row) => /^\| `([^`]+)` \|/.exec(row)?.[1] ?? `unparsable row: ${row}`);
    expect([...documented].sort()).toEqual([...documentedNames()].sort());
  });

  it("matches the schema's rendering row for row (types, defaults, forms, docs)", () => {
    expect(readmeTable()).toBe(renderConfigurationTable());
  });

  it("sits in the Configuration section", () => {
    const section = readme.slice(readme.indexOf("\n## Configuration\n"), readme.indexOf("\n## CI\n"));
    expect(section).toContain(TABLE_START);
    expect(section).toContain(TABLE_END);
  });
});
