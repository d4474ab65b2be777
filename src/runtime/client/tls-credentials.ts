/**
 * Channel credentials for mTLS: our certificate and trust roots come from the
 * live material (new connections pick up rotated files), and the server must
 * present the SPIFFE identity we meant to call. That check replaces hostname
 * verification: a workload's identity is its SPIFFE ID, not a DNS name.
 *
 * grpc.experimental: certificate-provider credentials are the only grpc-js
 * credentials whose certificate and roots can change under a live channel.
 * The public alternative (createFromSecureContext) is fixed per channel, so
 * rotation would mean rebuilding every channel on every material change; we
 * keep the experimental API and check at creation that it is still there.
 */
import { X509Certificate } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import type { IdentityMaterial, MaterialSource } from "../identity/material.ts";
import { inspectPeerLeaf } from "../identity/leaf-checks.ts";

type CertificateProvider = Parameters<typeof grpc.experimental.createCertificateProviderChannelCredentials>[0];
type CaListener = Parameters<CertificateProvider["addCaCertificateListener"]>[0];
type IdentityListener = Parameters<CertificateProvider["addIdentityCertificateListener"]>[0];

/** Marks server-identity failures so the transport can report them as such. */
export const SERVER_IDENTITY_ERROR = "tt-rpc: server identity check failed";
/** Marks a connection we did not attempt because the server would refuse our own certificate. */
export const CLIENT_CERTIFICATE_ERROR = "tt-rpc: client certificate unusable";

const CLIENT_AUTH_OID = "1.3.6.1.5.5.7.3.2";
const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const pemCerts = (pem: string) => (pem.match(PEM_CERT) ?? []).map((p) => new X509Certificate(p));

/**
 * Why a server would refuse our certificate in its handshake, as far as we can
 * tell from our own trust bundle: not chaining to it, no clientAuth purpose.
 * A server refuses a bad certificate by just closing the connection (Node
 * verifies after OpenSSL's handshake and sends no alert), which grpc-js can
 * only report as a retryable "Failed to connect"; checking first lets the
 * caller see UNAUTHENTICATED with the real reason. The time-independent part
 * is computed once per material; the validity period on every connection.
 */
const structuralProblem = new WeakMap<IdentityMaterial, { leaf: X509Certificate; problem: string | undefined }>();

function ownCertificateProblem(m: IdentityMaterial, now: number): string | undefined {
  let entry = structuralProblem.get(m);
  if (!entry) {
    const [leaf, ...chain] = pemCerts(m.workload.certPem);
    if (!leaf) return "no certificate";
    entry = { leaf, problem: chainProblem(leaf, chain, pemCerts(m.bundle.caPem)) };
    structuralProblem.set(m, entry);
  }
  if (entry.problem) return entry.problem;
  if (now < entry.leaf.validFromDate.getTime()) return `not valid before ${entry.leaf.validFromDate.toISOString()}`;
  if (now > entry.leaf.validToDate.getTime()) return `expired at ${entry.leaf.validToDate.toISOString()}`;
  return undefined;
}

function chainProblem(leaf: X509Certificate, chain: X509Certificate[], roots: X509Certificate[]): string | undefined {
  const eku = leaf.keyUsage; // Node's name for the extended key usage OIDs; undefined: no EKU extension (any purpose)
  if (eku && !eku.includes(CLIENT_AUTH_OID)) return "extendedKeyUsage lacks clientAuth";
  let current = leaf;
  for (let depth = 0; depth <= chain.length; depth++) {
    if (roots.some((r) => current.checkIssued(r) && current.verify(r.publicKey))) return undefined;
    const next = chain.find((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (!next) break;
    current = next;
  }
  return current === leaf && leaf.issuer === leaf.subject && leaf.verify(leaf.publicKey) ? "self-signed, not issued by the trust bundle" : "does not chain to the trust bundle";
}

function materialProvider(material: MaterialSource): CertificateProvider & { dispose(): void } {
  const ca = new Set<CaListener>();
  const identity = new Set<IdentityListener>();
  const publish = () => {
    const m = material.current();
    for (const l of ca) l({ caCertificate: Buffer.from(m.bundle.caPem) });
    for (const l of identity) l({ certificate: Buffer.from(m.workload.certPem), privateKey: Buffer.from(m.workload.keyPem) });
  };
  const unsubscribe = material.onChange(publish);
  return {
    dispose: () => {
      unsubscribe();
      ca.clear();
      identity.clear();
    },
    addCaCertificateListener(l) {
      ca.add(l);
      l({ caCertificate: Buffer.from(material.current().bundle.caPem) });
    },
    removeCaCertificateListener: (l) => void ca.delete(l),
    addIdentityCertificateListener(l) {
      identity.add(l);
      const m = material.current();
      l({ certificate: Buffer.from(m.workload.certPem), privateKey: Buffer.from(m.workload.keyPem) });
    },
    removeIdentityCertificateListener: (l) => void identity.delete(l),
  };
}

/** mTLS credentials that follow the live material; `dispose` stops following it (on channel close). */
export function mtlsChannelCredentials(
  material: MaterialSource,
  expectedServer: string,
): { credentials: grpc.ChannelCredentials; dispose(): void } {
  if (typeof grpc.experimental?.createCertificateProviderChannelCredentials !== "function") {
    throw new Error("grpc-js internals changed: certificate-provider channel credentials are gone; refusing to connect");
  }
  const provider = materialProvider(material);
  const trustDomain = material.current().bundle.trustDomain;
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity(_host: string, cert: PeerCertificate): Error | undefined {
      // Runs once per connection, in our handshake: the natural place to stop one the server would refuse.
      const own = ownCertificateProblem(material.current(), Date.now());
      if (own) return new Error(`${CLIENT_CERTIFICATE_ERROR}: ${own}`);
      try {
        const id = inspectPeerLeaf(cert.raw, { trustDomain });
        if (id.spiffeId === expectedServer) return undefined;
        return new Error(`${SERVER_IDENTITY_ERROR}: expected ${expectedServer}, server presented ${id.spiffeId}`);
      } catch (err) {
        return new Error(`${SERVER_IDENTITY_ERROR}: expected ${expectedServer}: ${(err as Error).message}`);
      }
    },
  });
  return { credentials, dispose: () => provider.dispose() };
}
