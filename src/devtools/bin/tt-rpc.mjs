#!/usr/bin/env node
// tt-rpc: runs the compiled CLI (dist/, built by `npm run build`, which `npm install` runs).
// In this repository `npm run tt-rpc -- <args>` runs the TypeScript sources through tsx instead.
import { main } from "../dist/cli/main.js";

const code = await main(process.argv.slice(2));
if (code !== -1) process.exitCode = code;
