/**
 * A workload's live identity material: its certificate and key, its JWT
 * signing keys and the trust bundle, loaded and validated from the files the
 * dev PKI (or cert-manager / SPIRE) writes, and reloaded when they change.
 * Start-up fails closed with a message naming the missing or bad file.
 *
 * Reloads: one at a time (a change seen meanwhile triggers one more pass,
 * never a second concurrent load); debounced, so a writer that replaces
 * cert, key and bundle one after another is read once it has finished; every
 * file read and validated exactly as at start-up (so a new certificate with
 * the old key is refused), then swapped in as one object. A failed reload
 * (unreadable or removed file, mismatched pair, bad PEM) keeps the last good
 * material, is logged, and never rejects: nothing reaches unhandledRejection.
 */
import { stat } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { createLogger, type Logger } from "../observability/logger.ts";
import { loadTrustBundle, loadWorkloadMaterial, pkiPaths, PkiError, type TrustBundle, type WorkloadMaterial } from "./pki-files.ts";
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
  /**
   * Re-reads the files now (also done on a timer); resolves true if new
   * material was swapped in. Never rejects. Joins a reload already running
   * (which then makes one more pass, so this call's view of the files counts).
   */
  refresh(): Promise<boolean>;
  close(): void;
}

export interface MaterialSourceOptions {
  /** The PKI directory (layout: src/runtime/identity/pki-files.ts). */
  readonly dir: string;
  readonly workload: WorkloadName;
  readonly trustDomain?: string;
  /** How often to look for rotated files; 0 disables the timer. Default 5 s. */
  readonly pollMs?: number;
  /** After a change is seen, wait this long for the files to settle (again while they keep changing). Default 250 ms. */
  readonly debounceMs?: number;
  /** Where failed reloads and failing listeners are logged. Default: a framework logger. */
  readonly logger?: Logger;
  /** Called instead of logging when a reload fails. Must not throw (if it does, that is logged). */
  readonly onReloadError?: (err: Error) => void;
  /** Waits `ms` (tests inject a controllable one). */
  readonly delay?: (ms: number) => Promise<void>;
}

/** Settling rounds before reading anyway; the full validation still guards what is read. */
const MAX_SETTLE_ROUNDS = 10;

async function load(opts: MaterialSourceOptions): Promise<IdentityMaterial> {
  const trustDomain = opts.trustDomain ?? TRUST_DOMAIN;
  const bundle = await loadTrustBundle(pkiPaths(opts.dir).bundleJson);
  if (bundle.trustDomain !== trustDomain) {
    throw new PkiError(`trust bundle is for ${JSON.stringify(bundle.trustDomain)}, not our trust domain ${trustDomain}`, pkiPaths(opts.dir).bundleJson);
  }
  const workload = await loadWorkloadMaterial(opts.dir, opts.workload, { trustDomain });
  return { workload, bundle };
}

/** What the files look like now (never rejects: a missing file is part of the answer). */
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
  const debounceMs = opts.debounceMs ?? 250;
  const delay = opts.delay ?? ((ms: number) => sleep(ms, undefined, { ref: false }));
  let logger = opts.logger;
  const log = (): Logger => (logger ??= createLogger({ service: opts.workload }));
  let closed = false;
  // Last failure reported, so a file that stays bad is retried every poll but logged once.
  let lastFailure: string | undefined;

  function reportFailure(err: unknown, files: string): void {
    const error = err instanceof Error ? err : new Error(String(err));
    const key = `${files}|${error.message}`;
    if (key === lastFailure) return;
    lastFailure = key;
    try {
      if (opts.onReloadError) opts.onReloadError(error);
      // PkiError messages name the file and the problem, never file contents.
      else log().warn({ workload: opts.workload, err: error.message }, "identity material reload failed; keeping the last good material");
    } catch (hookErr) {
      log().error({ workload: opts.workload, err: (hookErr as Error).message }, "onReloadError threw");
    }
  }

  async function reloadOnce(): Promise<boolean> {
    let files = await fingerprint(opts);
    if (files === seen) return false;
    // Debounce: a writer replaces cert, key and bundle one by one; read once they have stopped changing.
    for (let round = 0; round < MAX_SETTLE_ROUNDS && debounceMs > 0; round++) {
      await delay(debounceMs);
      const settled = await fingerprint(opts);
      if (settled === files) break;
      files = settled;
    }
    if (closed) return false;
    let next: IdentityMaterial;
    try {
      // Every file, through the start-up validation: a half-rotated pair fails here.
      next = await load(opts);
    } catch (err) {
      reportFailure(err, files);
      return false;
    }
    if (closed) return false;
    seen = files;
    lastFailure = undefined;
    material = next; // one assignment: readers see the old pair or the new one, never a mix
    for (const listener of listeners) {
      try {
        listener(next);
      } catch (err) {
        log().error({ workload: opts.workload, err: (err as Error).message }, "identity material listener failed");
      }
    }
    return true;
  }

  let running: Promise<boolean> | undefined;
  let again = false;

  async function run(): Promise<boolean> {
    let changed = false;
    try {
      do {
        again = false;
        if (await reloadOnce()) changed = true;
      } while (again && !closed);
    } catch (err) {
      // Not expected (reloadOnce handles load errors), but a reload must never reject.
      reportFailure(err, "unexpected");
    }
    return changed;
  }

  function refresh(): Promise<boolean> {
    if (running !== undefined) {
      again = true;
      return running;
    }
    running = run().finally(() => (running = undefined));
    return running;
  }

  const pollMs = opts.pollMs ?? 5000;
  const timer = pollMs > 0 ? setInterval(() => void refresh(), pollMs) : undefined;
  timer?.unref();

  return {
    current: () => material,
    onChange(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh,
    close() {
      closed = true;
      if (timer) clearInterval(timer);
      listeners.clear();
    },
  };
}
