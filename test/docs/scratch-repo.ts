/**
 * A scratch copy of this repository for the docs tests, so README commands
 * run exactly as printed (default paths like `.tt-rpc/certs` are the
 * scratch's own) and the tutorial can edit protos and regenerate without
 * touching the working tree. Copied: every file git knows or would add
 * (tracked and untracked, not ignored), plus the packages' built `dist/`
 * (the `tt-rpc` bin runs it). `node_modules` is a directory of symlinks to
 * the installed packages, except `@tickettoken/*`, which point at the
 * scratch's own workspace folders, as `npm install` would link them.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../support/exec.ts";

const WORKSPACES: Record<string, string> = {
  rpc: "src/runtime",
  contracts: "src/contracts",
  services: "services",
  "rpc-devtools": "src/devtools",
};

export interface ScratchRepo {
  readonly dir: string;
  /** Environment for commands run in the scratch: its node_modules/.bin and our Node first on PATH. */
  env(extra?: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
  remove(): void;
}

export function createScratchRepo(opts: { withDist?: boolean } = {}): ScratchRepo {
  const dir = mkdtempSync(join(tmpdir(), "tt-scratch-repo-"));
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: REPO_ROOT, encoding: "utf8" })
    .split("\0")
    .filter((f) => f !== "" && existsSync(join(REPO_ROOT, f)));
  for (const f of files) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    cpSync(join(REPO_ROOT, f), join(dir, f));
  }
  if (opts.withDist) {
    for (const ws of Object.values(WORKSPACES)) {
      const dist = join(REPO_ROOT, ws, "dist");
      if (existsSync(dist)) cpSync(dist, join(dir, ws, "dist"), { recursive: true });
    }
  }
  const installed = realpathSync(join(REPO_ROOT, "node_modules"));
  const nm = join(dir, "node_modules");
  mkdirSync(join(nm, "@tickettoken"), { recursive: true });
  for (const name of readdirSync(installed)) {
    if (name === "@tickettoken" || name === ".bin") continue;
    symlinkSync(join(installed, name), join(nm, name));
  }
  for (const [name, folder] of Object.entries(WORKSPACES)) symlinkSync(join(dir, folder), join(nm, "@tickettoken", name));
  // Bins: the workspaces' own (tt-rpc, tt-service) from the scratch, every other one the installed file.
  mkdirSync(join(nm, ".bin"));
  const ownBins: Record<string, string> = { "tt-rpc": "src/devtools/bin/tt-rpc.mjs", "tt-service": "services/bin/tt-service.mjs" };
  for (const name of readdirSync(join(installed, ".bin"))) {
    const own = ownBins[name];
    symlinkSync(own ? join(dir, own) : realpathSync(join(installed, ".bin", name)), join(nm, ".bin", name));
  }
  return {
    dir,
    env: (extra = {}) => ({
      ...process.env,
      PATH: `${join(nm, ".bin")}:${dirname(process.execPath)}:${process.env.PATH ?? ""}`,
      // As in a terminal: no source condition inherited from the test runner (npm scripts set their own).
      NODE_OPTIONS: "",
      TT_RPC_DRAIN_DELAY_MS: "0",
      ...extra,
    }),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
