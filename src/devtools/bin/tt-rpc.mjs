#!/usr/bin/env node
// tt-rpc: runs the compiled CLI (dist/, built by `npm run build`, which `npm install` runs).
// In this repository `npm run tt-rpc -- <args>` runs the TypeScript sources through tsx instead.
let cli;
try {
  cli = await import("../dist/cli/main.js");
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes("/dist/")) throw err;
  console.error("tt-rpc: the CLI is not built yet (no dist/): run `npm run build` in the repository (npm install does it).");
  process.exit(1);
}
const code = await cli.main(process.argv.slice(2));
if (code !== -1) process.exitCode = code;
