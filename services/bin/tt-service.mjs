#!/usr/bin/env node
// tt-service <service> [options]: runs one TicketToken service, as a container does
// (compiled, from dist/; the same command as `tt-rpc serve`, without the dev tools).
import { runServe } from "../dist/host/serve.js";

const code = await runServe(process.argv.slice(2));
if (code !== -1) process.exitCode = code;
