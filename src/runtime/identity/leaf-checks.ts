/**
 * X509-SVID leaf checks that OpenSSL's chain verification does not make.
 * Run on the peer's leaf after the TLS handshake has verified the chain
 * against the trust bundle (and so the validity period). Parses the DER with
 * @peculiar/x509: Node's `subjectaltname` string is ambiguous (a URI may
 * itself contain ", URI:") and must never be used to derive identity.
 */
import { createHash } from "node:crypto";
import * as x509 from "./x509.ts";
import { TRUST_DOMAIN, parseSpiffeId, parseWorkloadId } from "./spiffe-id.ts";

export interface PeerIdentity {
  spiffeId: string;
  env: string;
  workload: string;
  notAfter: Date;
  /** SHA-256 of the DER, formatted like Node's `fingerprint256` ("AB:CD:..."). */
  fingerprint256: string;
}

/** Machine-readable reason, so tests and metrics need not match on text. */
export type LeafCheckCode =
  | "no-certificate"
  | "unparsable"
  | "duplicate-extension"
  | "is-ca"
  | "key-usage"
  | "uri-san-count"
  | "bad-spiffe-id"
  | "trust-domain"
  | "id-shape";

/** Details for logs only; callers answer UNAUTHENTICATED with a generic message. */
export class LeafCheckError extends Error {
  override name = "LeafCheckError";
  constructor(
    readonly code: LeafCheckCode,
    message: string,
  ) {
    super(message);
  }
}

export function inspectPeerLeaf(der: Uint8Array, opts: { trustDomain: string }): PeerIdentity {
  const cert = parseCert(der);
  checkNoDuplicateExtensions(cert);
  checkNotCa(cert);
  checkKeyUsage(cert);
  const uri = singleUriSan(cert);

  let id;
  try {
    id = parseSpiffeId(uri);
  } catch (err) {
    throw new LeafCheckError("bad-spiffe-id", `URI SAN is not a valid SPIFFE ID: ${reason(err)}`);
  }
  if (id.trustDomain !== opts.trustDomain) {
    throw new LeafCheckError(
      "trust-domain",
      `SPIFFE ID trust domain "${id.trustDomain}" is not "${opts.trustDomain}"`,
    );
  }
  let wl;
  try {
    wl = parseWorkloadId(uri, opts.trustDomain);
  } catch (err) {
    throw new LeafCheckError("id-shape", `SPIFFE ID ${uri}: ${reason(err)}`);
  }
  return { ...wl, notAfter: cert.notAfter, fingerprint256: fingerprint256(der) };
}

export interface PeerIdentityCache {
  /** Identity of the connection's peer; throws the same LeafCheckError reason on every call if it failed. */
  get(socket: object, der: () => Uint8Array | undefined): PeerIdentity;
}

type Cached = { ok: true; id: PeerIdentity } | { ok: false; code: LeafCheckCode; message: string };

/**
 * One parse per connection: keyed weakly by the socket (or HTTP/2 session),
 * so entries die with the connection. Failures are cached too, so a peer
 * with a bad leaf cannot make us re-parse on every request.
 */
export function createPeerIdentityCache(opts: { trustDomain: string } = { trustDomain: TRUST_DOMAIN }): PeerIdentityCache {
  const cache = new WeakMap<object, Cached>();
  return {
    get(socket, der) {
      let entry = cache.get(socket);
      if (!entry) {
        entry = evaluate(der, opts);
        cache.set(socket, entry);
      }
      if (entry.ok) return entry.id;
      // A fresh error per call: a shared instance's stack would mislead.
      throw new LeafCheckError(entry.code, entry.message);
    },
  };
}

function evaluate(der: () => Uint8Array | undefined, opts: { trustDomain: string }): Cached {
  try {
    const raw = der();
    if (!raw || raw.length === 0) {
      throw new LeafCheckError("no-certificate", "peer presented no certificate");
    }
    return { ok: true, id: inspectPeerLeaf(raw, opts) };
  } catch (err) {
    if (err instanceof LeafCheckError) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: "no-certificate", message: `could not read peer certificate: ${reason(err)}` };
  }
}

function parseCert(der: Uint8Array): x509.X509Certificate {
  try {
    const cert = new x509.X509Certificate(der);
    // Fields decode lazily; force it here so malformed ones fail as "unparsable".
    void cert.extensions;
    void cert.notAfter;
    return cert;
  } catch (err) {
    throw new LeafCheckError("unparsable", `certificate DER does not parse: ${reason(err)}`);
  }
}

// RFC 5280 forbids repeating an extension; a second basicConstraints or SAN
// could otherwise be read differently by OpenSSL and by us.
function checkNoDuplicateExtensions(cert: x509.X509Certificate): void {
  const seen = new Set<string>();
  for (const ext of cert.extensions) {
    if (seen.has(ext.type)) throw new LeafCheckError("duplicate-extension", `extension ${ext.type} appears twice`);
    seen.add(ext.type);
  }
}

function checkNotCa(cert: x509.X509Certificate): void {
  const bc = typedExtension(cert, x509.BasicConstraintsExtension, "basicConstraints");
  if (bc?.ca) throw new LeafCheckError("is-ca", "leaf has basicConstraints CA:TRUE");
}

function checkKeyUsage(cert: x509.X509Certificate): void {
  const ku = typedExtension(cert, x509.KeyUsagesExtension, "keyUsage");
  if (!ku) return;
  const F = x509.KeyUsageFlags;
  if (!(ku.usages & F.digitalSignature)) throw new LeafCheckError("key-usage", "keyUsage lacks digitalSignature");
  if (ku.usages & F.keyCertSign) throw new LeafCheckError("key-usage", "leaf keyUsage includes keyCertSign");
  if (ku.usages & F.cRLSign) throw new LeafCheckError("key-usage", "leaf keyUsage includes cRLSign");
}

function singleUriSan(cert: x509.X509Certificate): string {
  const san = typedExtension(cert, x509.SubjectAlternativeNameExtension, "subjectAltName");
  const uris = san ? san.names.items.filter((n) => n.type === "url").map((n) => n.value) : [];
  if (uris.length !== 1) {
    throw new LeafCheckError("uri-san-count", `leaf has ${uris.length} URI SANs; exactly one is required`);
  }
  return uris[0]!;
}

// Belt and braces: any decoding surprise must still be a LeafCheckError.
function typedExtension<T extends x509.Extension>(
  cert: x509.X509Certificate,
  type: new (raw: ArrayBuffer) => T,
  label: string,
): T | null {
  try {
    return cert.getExtension(type);
  } catch (err) {
    throw new LeafCheckError("unparsable", `${label} extension does not parse: ${reason(err)}`);
  }
}

function fingerprint256(der: Uint8Array): string {
  const hex = createHash("sha256").update(der).digest("hex").toUpperCase();
  return hex.match(/../g)!.join(":");
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
