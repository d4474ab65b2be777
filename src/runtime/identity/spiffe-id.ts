/**
 * SPIFFE IDs: the strict grammar from the SPIFFE ID specification, plus the
 * Istio-style workload shape we use, `spiffe://<td>/ns/<env>/sa/<workload>`.
 *
 * We hand-parse instead of using `new URL()`: WHATWG URL parsing normalises
 * (lowercases hosts, resolves dot segments, decodes percent escapes), and an
 * identity check must reject such inputs, not quietly rewrite them.
 */

export const TRUST_DOMAIN = "tickettoken.internal";

const SCHEME_PREFIX = "spiffe://";
const MAX_ID_BYTES = 2048;
const MAX_TRUST_DOMAIN_BYTES = 255;
const TRUST_DOMAIN_CHAR = /^[a-z0-9._-]$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

export class SpiffeIdError extends Error {
  override name = "SpiffeIdError";
}

export interface SpiffeId {
  readonly trustDomain: string;
  /** "" or "/seg/seg...", never with a trailing slash. */
  readonly path: string;
  toString(): string;
}

export interface WorkloadId {
  spiffeId: string;
  env: string;
  workload: string;
}

export function parseSpiffeId(uri: string): SpiffeId {
  if (typeof uri !== "string" || uri.length === 0) fail("SPIFFE ID is empty");
  if (Buffer.byteLength(uri, "utf8") > MAX_ID_BYTES) {
    fail(`SPIFFE ID is longer than ${MAX_ID_BYTES} bytes`);
  }
  if (!uri.startsWith(SCHEME_PREFIX)) {
    const lower = uri.toLowerCase();
    if (lower.startsWith("spiffe:") && !uri.startsWith("spiffe:")) fail('scheme must be lowercase "spiffe"');
    if (lower.startsWith("spiffe:")) fail('scheme "spiffe:" must be followed by "//"');
    fail('scheme must be "spiffe"');
  }
  const rest = uri.slice(SCHEME_PREFIX.length);
  // Query and fragment are checked first so their message is not masked by
  // the character checks below.
  if (rest.includes("?")) fail("SPIFFE ID must not have a query");
  if (rest.includes("#")) fail("SPIFFE ID must not have a fragment");

  const slash = rest.indexOf("/");
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? "" : rest.slice(slash);
  checkTrustDomain(trustDomain);
  checkPath(path);
  return makeId(trustDomain, path);
}

/** The SPIFFE ID of one of our workloads. Throws SpiffeIdError on bad parts. */
export function workloadSpiffeId(workload: string, env = "dev", trustDomain = TRUST_DOMAIN): string {
  checkTrustDomain(trustDomain);
  checkSegment(env, "env");
  checkSegment(workload, "workload name");
  return `${SCHEME_PREFIX}${trustDomain}/ns/${env}/sa/${workload}`;
}

/** Parse and require exactly `/ns/<env>/sa/<workload>` in `trustDomain`. */
export function parseWorkloadId(uri: string, trustDomain = TRUST_DOMAIN): WorkloadId {
  const id = parseSpiffeId(uri);
  if (id.trustDomain !== trustDomain) {
    fail(`trust domain "${id.trustDomain}" is not "${trustDomain}"`);
  }
  const segs = id.path.split("/").slice(1);
  const [ns, env, sa, workload] = segs;
  if (segs.length !== 4 || ns !== "ns" || sa !== "sa" || env === undefined || workload === undefined) {
    fail(`path "${id.path}" is not of the form /ns/<env>/sa/<workload>`);
  }
  return { spiffeId: id.toString(), env, workload };
}

function checkTrustDomain(td: string): void {
  if (td.length === 0) fail("SPIFFE ID is missing its trust domain");
  if (td.includes("@")) fail("trust domain must not contain userinfo (@)");
  if (td.includes(":")) fail("trust domain must not contain a port (:)");
  if (td.includes("%")) fail("trust domain must not contain percent-encoding");
  if (td.length > MAX_TRUST_DOMAIN_BYTES) {
    fail(`trust domain is longer than ${MAX_TRUST_DOMAIN_BYTES} bytes`);
  }
  for (const ch of td) {
    if (TRUST_DOMAIN_CHAR.test(ch)) continue;
    if (/^[A-Z]$/.test(ch)) fail("trust domain must be lowercase");
    fail(`trust domain contains invalid character ${JSON.stringify(ch)}`);
  }
}

function checkPath(path: string): void {
  if (path === "") return;
  const segs = path.split("/").slice(1);
  segs.forEach((seg, i) => {
    if (seg === "") {
      fail(i === segs.length - 1 ? "path must not end with a slash" : "path must not contain empty segments");
    }
    checkSegment(seg, "path segment");
  });
}

function checkSegment(seg: string, what: string): void {
  if (seg === "") fail(`${what} is empty`);
  if (seg === "." || seg === "..") fail(`${what} must not be "." or ".."`);
  if (PATH_SEGMENT.test(seg)) return;
  if (seg.includes("%")) fail(`${what} must not contain percent-encoding`);
  const bad = [...seg].find((c) => !PATH_SEGMENT.test(c));
  fail(`${what} contains invalid character ${JSON.stringify(bad)}`);
}

function makeId(trustDomain: string, path: string): SpiffeId {
  const text = `${SCHEME_PREFIX}${trustDomain}${path}`;
  return Object.freeze({ trustDomain, path, toString: () => text });
}

function fail(message: string): never {
  throw new SpiffeIdError(message);
}
