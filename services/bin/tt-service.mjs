#!/usr/bin/env node
// tt-service <service> [options]: runs one TicketToken service, as a container does
// (compiled, from dist/; the same command as `tt-rpc serve`, without the dev tools).
let serve;
try {
  serve = await import("../dist/host/serve.js");
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes("/dist/")) throw err;
  console.error("tt-service: the services are not built yet (no dist/): run `npm run build` (npm install does it).");
  process.exit(1);
}
const code = await serve.runServe(process.argv.slice(2));
if (code !== -1) process.exitCode = code;
