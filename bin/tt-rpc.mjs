#!/usr/bin/env node
// tt-rpc launcher: loads the TypeScript sources through tsx.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const code = await main(process.argv.slice(2));
if (code !== -1) process.exitCode = code;
