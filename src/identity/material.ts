/**
 * A workload's live identity material: its certificate and key, its JWT
 * signing keys and the trust bundle, loaded and validated from the files the
 * dev PKI (or cert-manager / SPIRE) writes, and reloaded when they change.
 * Start-up fails closed with a message naming the missing or bad file; a bad
 * file seen during a reload is logged and the last good material stays.
 */
import { stat } from "node:fs/promises";
import { loadTrustBundle, loadWorkloadMaterial, pkiPaths, PkiError, type TrustBundle, type WorkloadMaterial } from "./pki.ts";
import { TRUST_DOMAIN } from "./spiffe-id.ts";
import type { WorkloadName } from "./workloads.ts";

export interface IdentityMaterial {
  readonly workload: WorkloadMaterial;
  readonly bundle: TrustBundle;
}

export interface MaterialSource {
  /** The current, validated material. */
  current(): IdentityMaterial;
  /** Called after each successful reload. Returns an unsubscribe function. */
  onChange(listener: (m: IdentityMaterial) => void): () => void;
  /** Re-reads the files now (also done on a timer); resolves true if anything changed. */
  refresh(): Promise<boolean>;
  close(): void;
}

export interface MaterialSourceOptions {
  /** The PKI directory (layout: src/identity/pki.ts). */
  readonly dir: string;
  readonly workload: WorkloadName;
  readonly trustDomain?: string;
  /** How often to look for rotated files; 0 disables the timer. Default 5 s. */
  readonly pollMs?: number;
  readonly onReloadError?: (err: Error) => void;
}

async function load(opts: MaterialSourceOptions): Promise<IdentityMaterial> {
  const trustDomain = opts.trustDomain ?? TRUST_DOMAIN;
  const bundle = await loadTrustBundle(pkiPaths(opts.dir).bundleJson);
  if (bundle.trustDomain !== trustDomain) {
    throw new PkiError(`trust bundle is for ${JSON.stringify(bundle.trustDomain)}, not our trust domain ${trustDomain}`, pkiPaths(opts.dir).bundleJson);
  }
  const workload = await loadWorkloadMaterial(opts.dir, opts.workload, { trustDomain });
  return { workload, bundle };
}

async function fingerprint(opts: MaterialSourceOptions): Promise<string> {
  const p = pkiPaths(opts.dir);
  const w = p.workload(opts.workload);
  const parts = await Promise.all(
    [p.bundleJson, w.cert, w.key, w.jwt].map((f) =>
      stat(f).then(
        (s) => `${s.mtimeMs}:${s.size}:${s.ino}`,
        () => "missing",
      ),
    ),
  );
  return parts.join("|");
}

/** Loads the material (throws PkiError naming the file if anything is missing or wrong) and watches it. */
export async function createMaterialSource(opts: MaterialSourceOptions): Promise<MaterialSource> {
  let material = await load(opts);
  let seen = await fingerprint(opts);
  const listeners = new Set<(m: IdentityMaterial) => void>();

  async function refresh(): Promise<boolean> {
    const now = await fingerprint(opts);
    if (now === seen) return false;
    try {
      material = await load(opts);
      seen = now;
    } catch (err) {
      // Mid-rotation (key renamed before cert) or a bad file: keep serving with what we have.
      opts.onReloadError?.(err as Error);
      return false;
    }
    for (const l of listeners) l(material);
    return true;
  }

  const pollMs = opts.pollMs ?? 5000;
  let running = false;
  const timer =
    pollMs > 0
      ? setInterval(() => {
          if (running) return;
          running = true;
          void refresh().finally(() => (running = false));
        }, pollMs)
      : undefined;
  timer?.unref();

  return {
    current: () => material,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh,
    close() {
      if (timer) clearInterval(timer);
      listeners.clear();
    },
  };
}
