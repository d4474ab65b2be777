/**
 * Every repository path the README names in `code` exists, so a file that
 * moves (as whole folders did when the packages were split) fails a test
 * instead of leaving the README pointing nowhere. `<name>` matches any one
 * path segment and `*` any part of one (code blocks are the commands tests'
 * business; this checks the prose).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../support/exec.ts";
import { readReadme } from "./readme-blocks.ts";

const readme = readReadme();
// Tracked top-level entries only: what a test run leaves behind (e.g. .tt-rpc/) is not the repository.
const TOP = new Set(execFileSync("git", ["ls-tree", "--name-only", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).split("\n").filter(Boolean));

/** Code spans (outside fenced blocks) that start with a top-level entry of the repository. */
function namedPaths(): string[] {
  const outside = readme.replace(/^ *```\w*\n[\s\S]*?^ *```\s*$/gm, "");
  const spans = [...outside.matchAll(/`([^`\s]+)`/g)].map((m) => m[1]!.replace(/[.,:;]$/, ""));
  return [...new Set(spans.filter((s) => (s.includes("/") && TOP.has(s.split("/")[0]!)) || TOP.has(s)))];
}

function segmentMatches(pattern: string, name: string): boolean {
  if (/^<[^>]+>$/.test(pattern)) return true;
  const re = new RegExp(`^${pattern.split(/(<[^>]+>|\*)/).map((p) => (p === "*" ? ".*" : /^<.+>$/.test(p) ? ".+" : p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))).join("")}$`);
  return re.test(name);
}

/** True when some file or folder matches `path` (segments may hold placeholders or `*`). */
function exists(path: string): boolean {
  const segments = path.replace(/\/$/, "").split("/");
  let dirs = [REPO_ROOT];
  for (const seg of segments) {
    const next: string[] = [];
    for (const d of dirs) {
      if (!/[<*]/.test(seg)) {
        if (existsSync(join(d, seg))) next.push(join(d, seg));
        continue;
      }
      if (!statSync(d).isDirectory()) continue;
      for (const n of readdirSync(d)) if (n !== "dist" && n !== "node_modules" && segmentMatches(seg, n)) next.push(join(d, n));
    }
    dirs = next;
    if (dirs.length === 0) return false;
  }
  return true;
}

describe("README paths", () => {
  it("every repository path named in the README exists", () => {
    const named = namedPaths();
    expect(named.length).toBeGreaterThan(40);
    const missing = named.filter((p) => !exists(p));
    expect(missing).toEqual([]);
  });

  it("the matcher is not vacuous: a moved file is reported", () => {
    expect(exists("src/runtime/server/server.ts")).toBe(true);
    expect(exists("src/server/server.ts")).toBe(false);
    expect(exists("services/<name>/index.ts")).toBe(true);
    expect(exists("services/<name>/nothing.ts")).toBe(false);
    expect(exists("services/ticket/handlers/*.ts")).toBe(true);
    expect(exists("services/<name>/handlers*.ts")).toBe(true);
    expect(exists("services/<name>/handlers*.py")).toBe(false);
  });
});

