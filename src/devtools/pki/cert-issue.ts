/**
 * Certificate issuance for the dev PKI: P-256 keys, a root CA and leaves.
 * Pure (no files). `issueCertificate` takes every knob explicitly so the
 * security tests can mint deliberately wrong certificates with the same code
 * that mints the right ones.
 */
import { KeyObject, randomBytes, type webcrypto } from "node:crypto";
import * as x509 from "@tickettoken/rpc/internal/identity/x509";
import { workloadSpiffeId, TRUST_DOMAIN } from "@tickettoken/rpc/internal/identity/spiffe-id";
import { isServiceName } from "@tickettoken/rpc/internal/identity/workloads";

// tsconfig has no DOM lib; Node's webcrypto types are the same objects.
export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;

export const EC_P256_SHA256 = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

const HOUR_MS = 3_600_000;
/** Leaves start a little in the past so small clock skew between hosts does not reject them. */
const BACKDATE_MS = 5 * 60_000;
const CA_VALIDITY_DAYS = 365;

export interface CaMaterial {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

export interface IssuedCert {
  cert: x509.X509Certificate;
  certPem: string;
  /** PKCS#8 PEM of the certified key. */
  keyPem: string;
}

export interface CertSpec {
  subject?: string;
  uris?: string[];
  dnsNames?: string[];
  ips?: string[];
  isCa?: boolean;
  /** KeyUsageFlags bitmask; null omits the extension. */
  keyUsage?: number | null;
  /** EKU OIDs; null omits the extension. */
  extKeyUsage?: string[] | null;
  notBefore: Date;
  notAfter: Date;
  extraExtensions?: x509.Extension[];
}

export function generateEcKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(EC_P256_SHA256, true, ["sign", "verify"]);
}

/** Positive 128-bit serial; first byte 0x01-0x7f keeps the DER INTEGER minimal and positive. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! % 0x7f) + 1;
  return b.toString("hex");
}

export function certToPem(cert: x509.X509Certificate): string {
  return cert.toString("pem").trimEnd() + "\n";
}

export function privateKeyToPem(key: CryptoKey): string {
  return KeyObject.from(key).export({ type: "pkcs8", format: "pem" }).toString();
}

export { importPrivateKeyPem, keyMatchesCert } from "@tickettoken/rpc/internal/identity/key-pem";

/** X.509 has one-second resolution; rounding keeps our comparisons exact. */
export function toSecond(d: Date): Date {
  return new Date(Math.floor(d.getTime() / 1000) * 1000);
}

export async function createRootCa(
  opts: { commonName?: string; now?: Date; validityDays?: number } = {},
): Promise<CaMaterial & { certPem: string; keyPem: string }> {
  const now = opts.now ?? new Date();
  const keys = await generateEcKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${opts.commonName ?? "TicketToken dev root CA"}, O=TicketToken`,
    keys,
    signingAlgorithm: EC_P256_SHA256,
    notBefore: toSecond(new Date(now.getTime() - BACKDATE_MS)),
    notAfter: toSecond(new Date(now.getTime() + (opts.validityDays ?? CA_VALIDITY_DAYS) * 24 * HOUR_MS)),
    extensions: [
      // pathLen 0: this root signs leaves only, never intermediates.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, privateKey: keys.privateKey, certPem: certToPem(cert), keyPem: privateKeyToPem(keys.privateKey) };
}

/** Issue a certificate signed by `ca` exactly as `spec` says (no policy of its own). */
export async function issueCertificate(ca: CaMaterial, spec: CertSpec, keys?: CryptoKeyPair): Promise<IssuedCert> {
  const pair = keys ?? (await generateEcKeyPair());
  const names: x509.JsonGeneralName[] = [
    ...(spec.uris ?? []).map((value) => ({ type: "url" as const, value })),
    ...(spec.dnsNames ?? []).map((value) => ({ type: "dns" as const, value })),
    ...(spec.ips ?? []).map((value) => ({ type: "ip" as const, value })),
  ];
  const subject = spec.subject ?? "";
  const extensions: x509.Extension[] = [new x509.BasicConstraintsExtension(spec.isCa ?? false, undefined, true)];
  if (spec.keyUsage !== null) {
    extensions.push(new x509.KeyUsagesExtension(spec.keyUsage ?? x509.KeyUsageFlags.digitalSignature, true));
  }
  if (spec.extKeyUsage !== null) {
    extensions.push(
      new x509.ExtendedKeyUsageExtension(
        spec.extKeyUsage ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
      ),
    );
  }
  // RFC 5280: SAN must be critical when the subject is empty.
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names, subject === ""));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(pair.publicKey));
  extensions.push(await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey));
  extensions.push(...(spec.extraExtensions ?? []));

  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: ca.cert.subjectName,
    publicKey: pair.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: EC_P256_SHA256,
    notBefore: toSecond(spec.notBefore),
    notAfter: toSecond(spec.notAfter),
    extensions,
  });
  return { cert, certPem: certToPem(cert), keyPem: privateKeyToPem(pair.privateKey) };
}

export interface WorkloadLeafOptions {
  workload: string;
  env?: string;
  trustDomain?: string;
  validityHours?: number;
  now?: Date;
}

/**
 * The X509-SVID we issue: one URI SAN (the workload's SPIFFE ID), CA:FALSE,
 * KU digitalSignature, EKU server+client. Services also get DNS/IP SANs so
 * grpcurl, buf curl and curl can verify the host name; "ops" never serves.
 * Never outlives the CA.
 */
export function issueWorkloadLeaf(ca: CaMaterial, opts: WorkloadLeafOptions): Promise<IssuedCert> {
  const now = opts.now ?? new Date();
  const uri = workloadSpiffeId(opts.workload, opts.env ?? "dev", opts.trustDomain ?? TRUST_DOMAIN);
  const wanted = now.getTime() + (opts.validityHours ?? 24 * 7) * HOUR_MS;
  const service = isServiceName(opts.workload);
  return issueCertificate(ca, {
    subject: `CN=${opts.workload}, O=TicketToken`,
    uris: [uri],
    dnsNames: service ? [opts.workload, "localhost"] : [],
    ips: service ? ["127.0.0.1"] : [],
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(Math.min(wanted, ca.cert.notAfter.getTime())),
  });
}
