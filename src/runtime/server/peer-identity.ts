/**
 * The caller's workload identity from its verified client certificate. The
 * SPIFFE leaf checks (CA flag, key usage, exactly one URI SAN, strict grammar,
 * trust domain) run on the certificate's DER once per distinct certificate,
 * then come from a bounded cache keyed by the certificate fingerprint, which
 * is as good as the certificate itself: identity is a function of its bytes.
 */
import { createHash } from "node:crypto";
import { inspectPeerLeaf, type PeerIdentity } from "../identity/leaf-checks.ts";
import { isWorkloadName } from "../identity/workloads.ts";
import { unauthenticated } from "../auth/errors.ts";
import type { CallerIdentity } from "../auth/call-context.ts";
import type { PeerInfo } from "../contract/call.ts";

type Entry = { ok: CallerIdentity } | { reason: string };

export interface PeerIdentityResolver {
  /** Throws AuthError(unauthenticated) if the peer has no acceptable certificate. */
  identify(peer: PeerInfo | undefined): CallerIdentity;
}

export function createPeerIdentityResolver(opts: { trustDomain: string; env: string; maxEntries?: number }): PeerIdentityResolver {
  const max = opts.maxEntries ?? 4096;
  const cache = new Map<string, Entry>();

  function inspect(der: Uint8Array): Entry {
    let id: PeerIdentity;
    try {
      id = inspectPeerLeaf(der, { trustDomain: opts.trustDomain });
    } catch (err) {
      return { reason: `client certificate rejected: ${(err as Error).message}` };
    }
    if (id.env !== opts.env) return { reason: `client ${id.spiffeId} is from env ${id.env}, this server runs in ${opts.env}` };
    if (!isWorkloadName(id.workload)) return { reason: `client ${id.spiffeId} is not a known workload` };
    return { ok: { spiffeId: id.spiffeId, workload: id.workload, env: id.env } };
  }

  return {
    identify(peer) {
      const cert = peer?.certificate();
      if (!cert) throw unauthenticated("no verified client certificate on the connection");
      const key = cert.fingerprint256 ?? createHash("sha256").update(cert.raw).digest("hex");
      let entry = cache.get(key);
      if (!entry) {
        entry = inspect(cert.raw);
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(key, entry);
      }
      if ("reason" in entry) throw unauthenticated(entry.reason);
      return entry.ok;
    },
  };
}
