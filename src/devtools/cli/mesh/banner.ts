/**
 * What the mesh prints once every child answers SERVING: a table (service,
 * gRPC address, Connect address, SPIFFE identity, pid) and commands that work
 * when pasted: grpcurl and its `buf curl` twin. Reflection and health need
 * only mTLS (the ops certificate); a business call mints its single-use call
 * token inline, for the RPC only (grpcurl -rpc-header, buf curl -H).
 */
import { relative, isAbsolute } from "node:path";
import { pkiPaths } from "@tickettoken/rpc/internal/identity/pki-files";
import type { ServiceName } from "@tickettoken/rpc/internal/identity/workloads";
import { ACME } from "@tickettoken/services/shared/demo-data";

export interface BannerRow {
  readonly service: ServiceName;
  readonly grpc: string;
  readonly connect: string | undefined;
  readonly spiffeId: string;
  readonly pid: number;
  readonly note?: string;
}

/** A path as short as it can be and still right from the directory the mesh runs in. */
function shown(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel !== "" && !rel.startsWith("..") && !isAbsolute(rel) ? rel : path;
}

export interface BannerExtras {
  /** The mesh's data directory and port offset, for the demo commands. */
  readonly data?: string;
  readonly offset?: number;
  /** The first row's ops HTTP port. */
  readonly opsPort?: number | undefined;
}

export function bannerLines(rows: readonly BannerRow[], certs: string, cwd: string, startupMs: number, extras: BannerExtras = {}): string[] {
  const head = ["service", "gRPC", "Connect", "identity", "pid"];
  const cells = rows.map((r) => [r.service, r.grpc, r.connect ?? "-", r.spiffeId, String(r.pid)]);
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const fmt = (c: readonly string[]) => `  ${c.map((v, i) => v.padEnd(widths[i]!)).join("  ")}`.trimEnd();
  const lines = [
    "",
    `TicketToken RPC mesh: ${rows.length} service process(es) SERVING over mTLS in ${(startupMs / 1000).toFixed(1)} s (Ctrl-C stops them all)`,
    fmt(head),
    ...cells.map((c, i) => fmt(c) + (rows[i]!.note ? `  ${rows[i]!.note}` : "")),
  ];

  const c = shown(certs, cwd);
  const p = pkiPaths(c);
  const ops = p.workload("ops");
  const target = rows.find((r) => r.service === "venue-service") ?? rows[0]!;
  const addr = target.grpc;
  const grpcurlTls = `-cacert ${p.bundleCa} -cert ${ops.cert} -key ${ops.key}`;
  const bufTls = `--protocol grpc --cacert ${p.bundleCa} --cert ${ops.cert} --key ${ops.key}`;
  // The compiled CLI (npx tt-rpc): a token in well under a second, so inline minting stays quick.
  const tt = `npx tt-rpc`;
  const certsFlag = c === ".tt-rpc/certs" ? "" : ` --certs ${c}`;
  // A call the ops identity may make on demo data: venue-service's GetVenue if it runs, else the admin RPC every server hosts.
  const call =
    target.service === "venue-service"
      ? {
          method: "tickettoken.venue.v1.VenueService/GetVenue",
          context: `$(${tt} context-token${certsFlag} --tenant ${ACME} --user admin-1)`,
          body: JSON.stringify({ tenant_id: ACME, venue_id: "v-1" }),
        }
      : { method: "tickettoken.rpc.v1.AdminService/ListBreakers", context: undefined, body: "{}" };
  const token = `$(${tt} token${certsFlag} --aud ${target.service} --method /${call.method}${call.context ? ' --context "$CTX"' : ""})`;
  lines.push(
    "",
    `Try it (from ${cwd}; the certificate is the ops identity's, logs in <data>/logs/<service>.log):`,
    ...(call.context ? [`  CTX=${call.context}`] : []),
    `  grpcurl ${grpcurlTls} ${addr} list`,
    `  grpcurl ${grpcurlTls} ${addr} grpc.health.v1.Health/Check`,
    `  grpcurl ${grpcurlTls} -rpc-header "authorization: Bearer ${token}"${call.context ? ' -rpc-header "tt-context: $CTX"' : ""} -d '${call.body}' ${addr} ${call.method}`,
    `  npx buf curl ${bufTls} --list-methods https://${addr}`,
    `  npx buf curl ${bufTls} https://${addr}/grpc.health.v1.Health/Check`,
    `  npx buf curl ${bufTls} -H "authorization: Bearer ${token}"${call.context ? ' -H "tt-context: $CTX"' : ""} -d '${call.body}' https://${addr}/${call.method}`,
    `Each call token is single-use and must be used within 15 s: paste each command as it is. More in README.md, "Debugging with grpcurl".`,
  );
  const d = extras.data === undefined ? "" : shown(extras.data, cwd);
  const demoFlags = `${certsFlag}${d === "" || d === ".tt-rpc/data" ? "" : ` --data ${d}`}${extras.offset ? ` --port-offset ${extras.offset}` : ""}`;
  lines.push(
    "",
    "Run a flow (services calling services; one line per hop, read back from the logs):",
    `  ${tt} demo purchase${demoFlags}      # also: refund, scan, event-create, cross-tenant`,
    `  (run ${tt} demo event-create${demoFlags}, then stop venue-service, e.g. kill its pid, then: ${tt} demo event-create --repeat 6${demoFlags}: stale venue, breaker opens)`,
    ...(extras.opsPort ? [`Metrics and probes: curl http://127.0.0.1:${extras.opsPort}/metrics  (/healthz, /readyz; each service's ops port is its gRPC port + 2000)`] : []),
  );
  return lines;
}
