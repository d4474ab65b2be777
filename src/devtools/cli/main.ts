/**
 * tt-rpc: the TicketToken RPC command line.
 */
import { pathToFileURL } from "node:url";
import { stdio } from "@tickettoken/services/host/cli-io";

const USAGE = `usage: tt-rpc <command> [options]
  certs init|rotate|rotate-jwt|show   manage the dev PKI (CA, service certificates, JWT keys, trust bundle)
  token                               mint a single-use call token for grpcurl / buf curl
  token inspect <token>               say whether a server would accept a token, and if not, why
  context-token                       mint a signed tenant/user context token (development edge)
  mesh                                run every service locally, one process each, over mTLS (creates the dev PKI on first run)
  serve <service>                     run one service from existing certificates, as in a container (fails closed without them)
  demo <flow>                         run a platform flow against the running mesh, one line per hop (purchase, refund, scan, event-create, cross-tenant)
Run \`tt-rpc <command> --help\` for a command's options.`;

// Each command loads only its own modules: `tt-rpc token`, run once per grpcurl call,
// must not pay for the mesh, the services and their databases.
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "certs":
      return (await import("./certs.ts")).runCerts(rest);
    case "token":
      return rest[0] === "inspect"
        ? (await import("./token-inspect.ts")).runTokenInspect(rest.slice(1))
        : (await import("./token.ts")).runToken(rest);
    case "context-token":
      return (await import("./context-token.ts")).runContextToken(rest);
    case "mesh":
      return (await import("./mesh.ts")).runMesh(rest);
    case "serve":
      return (await import("@tickettoken/services/host/serve")).runServe(rest);
    case "demo":
      return (await import("./demo/command.ts")).runDemo(rest);
    case "help":
    case "--help":
    case "-h":
      stdio.out(USAGE);
      return 0;
    default:
      stdio.err(command === undefined ? USAGE : `unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href;
if (isEntry) {
  main(process.argv.slice(2)).then(
    (code) => {
      // The mesh keeps running until a signal; other commands exit when done.
      if (code !== -1) process.exitCode = code;
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
