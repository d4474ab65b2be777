/**
 * Where the server keeps the responses of calls made with an idempotency key.
 * The interface is async-capable so a shared backend (Redis) can sit behind it
 * for many instances; the default is a bounded in-memory store per process.
 */

/** What `begin` found for a scope (caller, tenant, method, key). */
export type DedupeBegin =
  /** Nobody holds the scope: this call owns it and must `complete` or `release` it with the token. */
  | { readonly state: "claimed"; readonly token: string }
  /** A call with this scope finished: its request fingerprint and encoded response. */
  | { readonly state: "completed"; readonly fingerprint: string; readonly response: Uint8Array }
  /** A call with this scope is running; `settled` resolves when it completes or is released. */
  | { readonly state: "in_flight"; readonly fingerprint: string; readonly settled: Promise<void> }
  /** Every slot holds a call in flight: nothing can be claimed now. */
  | { readonly state: "full" };

export interface DedupeStore {
  /** Atomically claims `scope` for a request with this fingerprint, or reports what already holds it. */
  begin(scope: string, fingerprint: string): DedupeBegin | Promise<DedupeBegin>;
  /** Stores the claimed call's response; it is answered for the same scope until it expires. */
  complete(scope: string, token: string, response: Uint8Array): void | Promise<void>;
  /** Drops the claim without a response (the call failed), so a retry runs the handler again. */
  release(scope: string, token: string): void | Promise<void>;
}

export interface MemoryDedupeStoreOptions {
  /** How long a stored response answers repeats (default 24 h, like the payment processors' keys). */
  readonly ttlMs?: number;
  /** Stored responses plus calls in flight (default 10,000). */
  readonly maxEntries?: number;
  /** Approximate bytes of stored responses and their scopes (default 64 MiB). */
  readonly maxBytes?: number;
  /** Clock (epoch ms); injected by tests. */
  readonly now?: () => number;
}

interface Entry {
  readonly fingerprint: string;
  readonly token: string;
  response?: Uint8Array;
  expiresAt: number;
  /** Created only when a duplicate waits, so an uncontended call allocates no promise. */
  settled?: Promise<void>;
  settle?: () => void;
}

/** Per-entry bookkeeping we charge on top of the response bytes (map slot, fingerprint, token). */
const ENTRY_OVERHEAD_BYTES = 128;

/**
 * In-memory store: a Map in completion order. Every stored response lives the
 * same TTL, so the oldest completed entry is always the next to expire and
 * the first to evict when a bound is hit; expiry is swept lazily on writes.
 */
export function createMemoryDedupeStore(options: MemoryDedupeStoreOptions = {}): DedupeStore & { readonly size: number; readonly bytes: number } {
  const ttlMs = options.ttlMs ?? 24 * 60 * 60 * 1000;
  const maxEntries = options.maxEntries ?? 10_000;
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  let bytes = 0;
  let nextToken = 0;

  const sizeOf = (scope: string, e: Entry) => (e.response ? e.response.byteLength : 0) + scope.length + ENTRY_OVERHEAD_BYTES;

  function remove(scope: string, e: Entry): void {
    entries.delete(scope);
    if (e.response) bytes -= sizeOf(scope, e);
  }

  /** Drops the oldest stored response (calls in flight are never evicted); false if there is none. */
  function evictOldest(expiredOnly: boolean): boolean {
    for (const [scope, e] of entries) {
      if (!e.response) continue;
      if (expiredOnly && e.expiresAt > now()) return false;
      remove(scope, e);
      return true;
    }
    return false;
  }

  function settle(e: Entry): void {
    e.settle?.();
  }

  return {
    get size() {
      return entries.size;
    },
    get bytes() {
      return bytes;
    },
    begin(scope, fingerprint) {
      const e = entries.get(scope);
      if (e?.response && e.expiresAt <= now()) remove(scope, e);
      else if (e?.response) return { state: "completed", fingerprint: e.fingerprint, response: e.response };
      else if (e) {
        e.settled ??= new Promise<void>((resolve) => (e.settle = resolve));
        return { state: "in_flight", fingerprint: e.fingerprint, settled: e.settled };
      }
      while (evictOldest(true));
      while (entries.size >= maxEntries && evictOldest(false));
      if (entries.size >= maxEntries) return { state: "full" };
      const token = String(++nextToken);
      entries.set(scope, { fingerprint, token, expiresAt: Number.POSITIVE_INFINITY });
      return { state: "claimed", token };
    },
    complete(scope, token, response) {
      const e = entries.get(scope);
      if (!e || e.token !== token || e.response) return;
      // Re-inserted so the map stays in completion (= expiry) order.
      entries.delete(scope);
      e.response = response;
      e.expiresAt = now() + ttlMs;
      const size = sizeOf(scope, e);
      // A response larger than the whole store is not kept: its waiters then claim the key and run again.
      if (size <= maxBytes) {
        entries.set(scope, e);
        bytes += size;
        while (bytes > maxBytes && evictOldest(false));
      }
      settle(e);
    },
    release(scope, token) {
      const e = entries.get(scope);
      if (!e || e.token !== token || e.response) return;
      entries.delete(scope);
      settle(e);
    },
  };
}
