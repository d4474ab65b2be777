/**
 * Server TLS settings, one place: TLS 1.3 only, client certificate required
 * and verified against the trust bundle. The SPIFFE leaf checks OpenSSL does
 * not do run per call in the security interceptor (cached per certificate).
 */
import type { SecureContextOptions, TlsOptions } from "node:tls";
import type { IdentityMaterial } from "../identity/material.ts";

export function secureContextOptions(m: IdentityMaterial): SecureContextOptions {
  return { cert: m.workload.certPem, key: m.workload.keyPem, ca: m.bundle.caPem, minVersion: "TLSv1.3" };
}

export function mtlsServerOptions(m: IdentityMaterial, alpn: string[]): TlsOptions {
  return { ...secureContextOptions(m), requestCert: true, rejectUnauthorized: true, ALPNProtocols: alpn };
}
