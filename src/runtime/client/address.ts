/**
 * Where a service lives, as a grpc-js target. One target may stand for many
 * replicas; the channel balances round-robin over them (grpc-js-transport.ts).
 *
 * `<NAME>_RPC_ADDRESS` accepts:
 *   host:port                 a name (every address it resolves to is a replica) or an IP ([v6] in brackets)
 *   dns:///host:port          the same, spelled as a gRPC target (a Kubernetes headless service)
 *   ipv4:IP:port[,IP:port]    a static list (grpc-js' own ipv4/ipv6 resolvers take IP literals only)
 *   ipv6:[IP]:port[,...]
 *   IP:port,IP:port           shorthand for the ipv4:/ipv6: list
 * Today's `*_SERVICE_URL` variables keep working: their host is reused with
 * the service's RPC port.
 */
import { isIPv4, isIPv6 } from "node:net";

const FORMS = "host:port, dns:///host:port, ipv4:IP:port[,IP:port...] or ipv6:[IP]:port[,[IP]:port...]";

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** The environment variable holding a service's address, e.g. TICKET_RPC_ADDRESS for ticket-service. */
export function addressVariable(service: string): string {
  return `${addressEnvKey(service)}_RPC_ADDRESS`;
}

export function resolveAddress(service: string, defaultPort: number, env: NodeJS.ProcessEnv): string {
  const key = addressEnvKey(service);
  const explicit = env[`${key}_RPC_ADDRESS`];
  if (explicit) return parseRpcAddress(explicit, `${key}_RPC_ADDRESS`);
  const legacy = env[`${key}_SERVICE_URL`];
  if (legacy) return `${parseServiceUrl(legacy, `${key}_SERVICE_URL`)}:${defaultPort}`;
  return `localhost:${defaultPort}`;
}

/** The host of a legacy `<NAME>_SERVICE_URL`; the error names `variable`, never the value (a URL may carry credentials). */
export function parseServiceUrl(value: string, variable: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`${variable} must be a URL such as http://ticket-service:3004 (its host is used with the RPC port)`);
  }
  if (url.hostname === "") throw new Error(`${variable} must be a URL with a host, such as http://ticket-service:3004`);
  return url.hostname;
}

/** An RFC 1123 host name (not an IP literal). */
export function isHostName(value: string): boolean {
  return HOST_NAME.test(value);
}

/**
 * Checks `value` against the accepted forms and returns the grpc-js target
 * for it; the error names `variable` and the forms expected.
 */
export function parseRpcAddress(value: string, variable: string): string {
  const fail = (why: string): never => {
    throw new Error(`${variable} must be ${FORMS}; got ${JSON.stringify(value)} (${why})`);
  };
  const v = value.trim();
  if (v.startsWith("dns:")) {
    // grpc-js ignores a DNS server authority (dns://8.8.8.8/...): refuse it rather than silently use the system resolver.
    const rest = /^dns:(?:\/\/\/)?(.*)$/.exec(v)![1]!;
    if (rest.startsWith("/")) fail("a DNS server authority is not supported: use dns:///host:port");
    const { host, port } = splitHostPort(rest, fail);
    if (!HOST_NAME.test(host) && !isIPv4(host) && !isIPv6(host.slice(1, -1))) fail(`"${host}" is not a host name`);
    checkPort(port, fail);
    return `dns:///${rest}`;
  }
  const scheme = /^(ipv4|ipv6):(.*)$/.exec(v);
  if (scheme) return `${scheme[1]}:${ipList(scheme[2]!, scheme[1] as "ipv4" | "ipv6", fail).join(",")}`;
  // URLs and grpc-js' other schemes (unix sockets, xDS) are not service addresses here.
  const other = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v) ?? /^(unix|unix-abstract|vsock|xds|passthrough):/i.exec(v);
  if (other) fail(`unsupported scheme "${other[1]}"`);
  if (v.includes(",")) {
    // A bare list is the static-list shorthand: IP literals only (there is no static resolver for names).
    const first = splitHostPort(v.split(",")[0]!, fail).host;
    const family = first.startsWith("[") ? "ipv6" : "ipv4";
    return `${family}:${ipList(v, family, fail).join(",")}`;
  }
  const { host, port } = splitHostPort(v, fail);
  if (host.startsWith("[")) {
    if (!isIPv6(host.slice(1, -1))) fail(`"${host}" is not an IPv6 address`);
  } else if (!HOST_NAME.test(host)) fail(`"${host}" is not a host name or IPv4 address`);
  checkPort(port, fail);
  return v;
}

function ipList(list: string, family: "ipv4" | "ipv6", fail: (why: string) => never): string[] {
  const entries = list.split(",").map((s) => s.trim());
  if (entries.some((e) => e === "")) fail("empty entry in the list");
  return entries.map((entry) => {
    const { host, port } = splitHostPort(entry, fail);
    if (family === "ipv4" && !isIPv4(host)) fail(`"${host}" is not an IPv4 address (a list takes IP addresses; use dns:///name:port for a name)`);
    if (family === "ipv6" && !(host.startsWith("[") && isIPv6(host.slice(1, -1)))) fail(`"${host}" is not a bracketed IPv6 address`);
    checkPort(port, fail);
    return `${host}:${port}`;
  });
}

function splitHostPort(s: string, fail: (why: string) => never): { host: string; port: string } {
  const m = /^(\[[^\]]*\]|[^:[\]]+):([^:]*)$/.exec(s);
  if (!m) fail(`"${s}" is not host:port`);
  return { host: m![1]!, port: m![2]! };
}

function checkPort(port: string, fail: (why: string) => never): void {
  const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65535)) fail(`port ${JSON.stringify(port)} is not 1-65535`);
}

/** The variable prefix of a service's address: "ticket-service" -> "TICKET" (TICKET_RPC_ADDRESS, TICKET_SERVICE_URL). */
export function addressEnvKey(service: string): string {
  return service.replace(/-service$/, "").replace(/-/g, "_").toUpperCase();
}
