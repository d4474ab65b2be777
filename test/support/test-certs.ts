/**
 * Deliberately wrong certificates for the security test suite. Lives in src
 * so every package's tests can use it; nothing in production imports it.
 * Each bad kind breaks exactly one rule, so a test can tell which check
 * caught it.
 */
import * as x509 from "../../src/runtime/identity/x509.ts";
import {
  type CaMaterial,
  type IssuedCert,
  EC_P256_SHA256,
  certToPem,
  createRootCa,
  generateEcKeyPair,
  issueCertificate,
  issueWorkloadLeaf,
  privateKeyToPem,
  toSecond,
} from "../../src/devtools/pki/cert-issue.ts";
import { TRUST_DOMAIN, workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";

export type TestLeafKind =
  | "good"
  | "other-ca"
  | "ca-true"
  | "two-uri-sans"
  | "no-uri-san"
  | "other-trust-domain"
  | "expired"
  | "key-cert-sign"
  | "crl-sign"
  | "no-digital-signature"
  | "bad-spiffe-grammar"
  | "bad-shape"
  | "not-yet-valid"
  | "server-auth-only"
  | "self-signed";

export const BAD_LEAF_KINDS: readonly Exclude<TestLeafKind, "good">[] = [
  "other-ca",
  "ca-true",
  "two-uri-sans",
  "no-uri-san",
  "other-trust-domain",
  "expired",
  "key-cert-sign",
  "crl-sign",
  "no-digital-signature",
  "bad-spiffe-grammar",
  "bad-shape",
  "not-yet-valid",
  "server-auth-only",
  "self-signed",
];

/** The kinds OpenSSL (chain, validity period, clientAuth purpose) refuses in the TLS handshake itself. */
export const HANDSHAKE_REFUSED_KINDS = ["other-ca", "self-signed", "expired", "not-yet-valid", "server-auth-only"] as const;

export function createTestCa(name = "TicketToken test CA"): ReturnType<typeof createRootCa> {
  return createRootCa({ commonName: name });
}

const HOUR = 3_600_000;

/**
 * A leaf for `workload` signed by `ca` (or, for "other-ca", by a fresh CA
 * the caller does not trust) that is wrong in the one way `kind` names.
 */
export async function issueTestLeaf(
  ca: CaMaterial,
  kind: TestLeafKind,
  opts: { workload?: string; env?: string; now?: Date } = {},
): Promise<IssuedCert> {
  const workload = opts.workload ?? "ticket-service";
  const env = opts.env ?? "dev";
  const now = opts.now ?? new Date();
  const id = workloadSpiffeId(workload, env);
  const base = {
    subject: `CN=${workload}, O=TicketToken`,
    uris: [id],
    dnsNames: [workload, "localhost"],
    ips: ["127.0.0.1"],
    notBefore: new Date(now.getTime() - HOUR),
    notAfter: new Date(now.getTime() + HOUR),
  };
  const F = x509.KeyUsageFlags;
  switch (kind) {
    case "good":
      return issueWorkloadLeaf(ca, { workload, env, now });
    case "other-ca":
      return issueWorkloadLeaf(await createRootCa({ commonName: "Intruder CA" }), { workload, env, now });
    case "ca-true":
      return issueCertificate(ca, { ...base, isCa: true });
    case "two-uri-sans":
      return issueCertificate(ca, { ...base, uris: [id, workloadSpiffeId("payment-service", env)] });
    case "no-uri-san":
      return issueCertificate(ca, { ...base, uris: [] });
    case "other-trust-domain":
      return issueCertificate(ca, { ...base, uris: [workloadSpiffeId(workload, env, "evil.example")] });
    case "expired":
      return issueCertificate(ca, { ...base, notBefore: new Date(now.getTime() - 48 * HOUR), notAfter: new Date(now.getTime() - HOUR) });
    case "key-cert-sign":
      return issueCertificate(ca, { ...base, keyUsage: F.digitalSignature | F.keyCertSign });
    case "crl-sign":
      return issueCertificate(ca, { ...base, keyUsage: F.digitalSignature | F.cRLSign });
    case "no-digital-signature":
      return issueCertificate(ca, { ...base, keyUsage: F.keyEncipherment });
    case "bad-spiffe-grammar":
      return issueCertificate(ca, { ...base, uris: [`spiffe://${TRUST_DOMAIN}/ns/${env}/sa/../${workload}`] });
    case "bad-shape":
      return issueCertificate(ca, { ...base, uris: [`spiffe://${TRUST_DOMAIN}/${workload}`] });
    case "not-yet-valid":
      return issueCertificate(ca, { ...base, notBefore: new Date(now.getTime() + HOUR), notAfter: new Date(now.getTime() + 48 * HOUR) });
    case "server-auth-only":
      return issueCertificate(ca, { ...base, extKeyUsage: [x509.ExtendedKeyUsage.serverAuth] });
    case "self-signed":
      return selfSignedLeaf(base);
  }
}

/** A leaf that is its own issuer (not a CA), otherwise shaped like a workload certificate. */
async function selfSignedLeaf(spec: { subject: string; uris: string[]; notBefore: Date; notAfter: Date }): Promise<IssuedCert> {
  const keys = await generateEcKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: "01",
    name: spec.subject,
    keys,
    signingAlgorithm: EC_P256_SHA256,
    notBefore: toSecond(spec.notBefore),
    notAfter: toSecond(spec.notAfter),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(spec.uris.map((value) => ({ type: "url" as const, value }))),
    ],
  });
  return { cert, certPem: certToPem(cert), keyPem: privateKeyToPem(keys.privateKey) };
}
