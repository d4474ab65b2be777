/**
 * `npm run check:deps` (run by CI): the layering of src/ and services/.
 * - no import cycle between files, nor between folders (every directory is a node);
 * - the runtime (@tickettoken/rpc) depends on no other workspace package;
 *   the contracts only on the runtime; the services only on the runtime's public
 *   entry points and the contracts; only the dev tools may use everything.
 * Type-only imports count: a cycle through types is still a cycle in the design.
 */
module.exports = {
  forbidden: [
    { name: "no-file-cycles", severity: "error", from: {}, to: { circular: true } },
    { name: "no-folder-cycles", severity: "error", scope: "folder", from: {}, to: { circular: true } },
    {
      name: "runtime-stands-alone",
      comment: "@tickettoken/rpc must not depend on the contracts, the services or the dev tools",
      severity: "error",
      from: { path: "^src/runtime/" },
      to: { path: "^(src/contracts|src/devtools|services)/" },
    },
    {
      name: "contracts-need-only-the-runtime",
      severity: "error",
      from: { path: "^src/contracts/" },
      to: { path: "^(src/devtools|services)/" },
    },
    {
      name: "services-use-public-entry-points",
      comment: "services import @tickettoken/rpc (and /host, /jws, /gen/*) and @tickettoken/contracts, never runtime internals or the dev tools",
      severity: "error",
      from: { path: "^services/" },
      to: { path: "^(src/devtools/|src/runtime/(?!index\\.ts$|host\\.ts$|jws\\.ts$|gen/))" },
    },
    {
      name: "no-dev-ca-in-runtime",
      comment: "the dev CA (certificate issuing) is developer tooling",
      severity: "error",
      from: { path: "^(src/runtime|src/contracts|services)/" },
      to: { path: "^src/devtools/pki/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    exclude: { path: "(^|/)dist/" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["tt-rpc-source", "import", "node", "default"],
      extensions: [".ts", ".js", ".mjs"],
    },
  },
};
