/**
 * Channel credentials for mTLS: our certificate and trust roots come from the
 * live material (new connections pick up rotated files), and the server must
 * present the SPIFFE identity we meant to call. That check replaces hostname
 * verification: a workload's identity is its SPIFFE ID, not a DNS name.
 */
import * as grpc from "@grpc/grpc-js";
import type { PeerCertificate } from "node:tls";
import type { MaterialSource } from "../identity/material.ts";
import { inspectPeerLeaf } from "../identity/leaf-checks.ts";

type CertificateProvider = Parameters<typeof grpc.experimental.createCertificateProviderChannelCredentials>[0];
type CaListener = Parameters<CertificateProvider["addCaCertificateListener"]>[0];
type IdentityListener = Parameters<CertificateProvider["addIdentityCertificateListener"]>[0];

/** Marks server-identity failures so the transport can report them as such. */
export const SERVER_IDENTITY_ERROR = "tt-rpc: server identity check failed";

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
  const provider = materialProvider(material);
  const trustDomain = material.current().bundle.trustDomain;
  const credentials = grpc.experimental.createCertificateProviderChannelCredentials(provider, provider, {
    checkServerIdentity(_host: string, cert: PeerCertificate): Error | undefined {
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
