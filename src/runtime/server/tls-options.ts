/**
 * Server TLS settings, one place: TLS 1.3 only, a client certificate required
 * and verified in the handshake. OpenSSL checks the chain against the trust
 * bundle, the validity period and, on a server, the clientAuth purpose
 * (extendedKeyUsage). No certificate: OpenSSL fails the handshake with a
 * certificate_required alert. A certificate that fails verification: Node
 * (whose OpenSSL verify callback defers the verdict to JS) closes the socket
 * as the handshake completes, before any application byte, without an alert.
 * Either way the peer never reaches HTTP/2, gRPC or protobuf. The SPIFFE leaf
 * checks OpenSSL cannot make (CA flag, key usage bits, exactly one URI SAN,
 * trust domain) run after the handshake, in the security interceptor.
 */
import type { SecureContextOptions, TlsOptions } from "node:tls";
import type { IdentityMaterial } from "../identity/material.ts";

export function secureContextOptions(m: IdentityMaterial): SecureContextOptions {
  return { cert: m.workload.certPem, key: m.workload.keyPem, ca: m.bundle.caPem, minVersion: "TLSv1.3" };
}

export function mtlsServerOptions(m: IdentityMaterial, alpn: string[], handshakeTimeoutMs: number): TlsOptions {
  return {
    ...secureContextOptions(m),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: alpn,
    // Node only reports a timed-out handshake (tlsClientError); the listener closes the socket.
    handshakeTimeout: handshakeTimeoutMs,
  };
}
