/**
 * Server TLS settings, one place: TLS 1.3 only, client certificate requested
 * and verified against the trust bundle. A connection whose certificate is
 * missing or fails verification is not dropped silently (Node sends no alert,
 * the client would see a retryable outage): it is accepted without an
 * identity, every call on it is refused with UNAUTHENTICATED, and it is closed
 * after a few seconds (src/server/listeners.ts). The SPIFFE leaf checks
 * OpenSSL does not do run per call in the security interceptor.
 */
import type { SecureContextOptions, TlsOptions } from "node:tls";
import type { IdentityMaterial } from "../identity/material.ts";

export function secureContextOptions(m: IdentityMaterial): SecureContextOptions {
  return { cert: m.workload.certPem, key: m.workload.keyPem, ca: m.bundle.caPem, minVersion: "TLSv1.3" };
}

export function mtlsServerOptions(m: IdentityMaterial, alpn: string[]): TlsOptions {
  return { ...secureContextOptions(m), requestCert: true, rejectUnauthorized: false, ALPNProtocols: alpn };
}
