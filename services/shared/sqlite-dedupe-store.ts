/**
 * A DedupeStore whose completed responses live in the service's own SQLite
 * database, so a keyed retry that arrives after a restart still gets the
 * first answer. Claims of calls in flight stay in memory: a crash forgets
 * them, which is right (the handler did not answer, so a retry must run it).
 *
 * Same contract as the in-memory store (src/runtime/resilience/dedupe-store.ts): one
 * TTL for every response (so expiry order = completion order), bounded by
 * entries and bytes with oldest-first eviction, calls in flight never evicted.
 */
import type { DedupeBegin, DedupeStore } from "@tickettoken/rpc";
import type { Database } from "./database.ts";

export interface SqliteDedupeStoreOptions {
  /** How long a stored response answers repeats (default 24 h). */
  readonly ttlMs?: number;
  /** Stored responses kept in the database (default 100,000). */
  readonly maxEntries?: number;
  /** Approximate bytes of stored responses and their scopes (default 256 MiB). */
  readonly maxBytes?: number;
  /** Calls in flight held in memory (default 10,000); beyond it `begin` answers "full". */
  readonly maxInFlight?: number;
  /** Clock (epoch ms); injected by tests. */
  readonly now?: () => number;
}

interface Claim {
  readonly fingerprint: string;
  readonly token: string;
  /** Created only when a duplicate waits, so an uncontended call allocates no promise. */
  settled?: Promise<void>;
  settle?: () => void;
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS rpc_dedupe (
  scope TEXT PRIMARY KEY,
  fingerprint TEXT NOT NULL,
  response BLOB NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rpc_dedupe_expires ON rpc_dedupe (expires_at)`;

/** Bytes a row is charged: what the memory store charges, so the two bounds mean the same. */
const SIZE = "length(scope) + length(response) + 128";

/** The store answers synchronously (node:sqlite is synchronous): no promise per keyed call. */
export interface SqliteDedupeStore extends DedupeStore {
  begin(scope: string, fingerprint: string): DedupeBegin;
  complete(scope: string, token: string, response: Uint8Array): void;
  release(scope: string, token: string): void;
  /** Stored responses plus calls in flight. */
  readonly size: number;
  /** Approximate bytes of stored responses. */
  readonly bytes: number;
}

export function createSqliteDedupeStore(db: Database, options: SqliteDedupeStoreOptions = {}): SqliteDedupeStore {
  const ttlMs = options.ttlMs ?? 24 * 60 * 60 * 1000;
  const maxEntries = options.maxEntries ?? 100_000;
  const maxBytes = options.maxBytes ?? 256 * 1024 * 1024;
  const maxInFlight = options.maxInFlight ?? 10_000;
  const now = options.now ?? Date.now;

  db.exec(SCHEMA);
  const select = db.prepare("SELECT fingerprint, response, expires_at FROM rpc_dedupe WHERE scope = ?");
  const removeScope = db.prepare(`DELETE FROM rpc_dedupe WHERE scope = ? RETURNING ${SIZE} AS size`);
  const insert = db.prepare("INSERT INTO rpc_dedupe (scope, fingerprint, response, expires_at) VALUES (?, ?, ?, ?)");
  const removeExpired = db.prepare(`DELETE FROM rpc_dedupe WHERE expires_at <= ? RETURNING ${SIZE} AS size`);
  const removeOldest = db.prepare(
    `DELETE FROM rpc_dedupe WHERE scope = (SELECT scope FROM rpc_dedupe ORDER BY expires_at, rowid LIMIT 1) RETURNING ${SIZE} AS size`,
  );
  const totals = db.prepare(`SELECT COUNT(*) AS n, COALESCE(SUM(${SIZE}), 0) AS bytes FROM rpc_dedupe`).get() as { n: number; bytes: number };
  let stored = Number(totals.n);
  let bytes = Number(totals.bytes);
  const inFlight = new Map<string, Claim>();
  let nextToken = 0;

  const forget = (rows: unknown[]) => {
    for (const r of rows) {
      stored--;
      bytes -= Number((r as { size: number }).size);
    }
  };

  function take(scope: string, token: string): Claim | undefined {
    const c = inFlight.get(scope);
    if (!c || c.token !== token) return undefined;
    inFlight.delete(scope);
    return c;
  }

  return {
    get size() {
      return stored + inFlight.size;
    },
    get bytes() {
      return bytes;
    },
    begin(scope, fingerprint): DedupeBegin {
      const claim = inFlight.get(scope);
      if (claim) {
        claim.settled ??= new Promise<void>((resolve) => (claim.settle = resolve));
        return { state: "in_flight", fingerprint: claim.fingerprint, settled: claim.settled };
      }
      const row = select.get(scope) as { fingerprint: string; response: Uint8Array; expires_at: number } | undefined;
      if (row && Number(row.expires_at) > now()) return { state: "completed", fingerprint: row.fingerprint, response: row.response };
      if (row) forget(removeScope.all(scope));
      if (inFlight.size >= maxInFlight) return { state: "full" };
      const token = String(++nextToken);
      inFlight.set(scope, { fingerprint, token });
      return { state: "claimed", token };
    },
    complete(scope, token, response) {
      const claim = take(scope, token);
      if (!claim) return;
      try {
        const t = now();
        forget(removeExpired.all(t));
        const size = scope.length + response.byteLength + 128;
        // A response larger than the whole store is not kept: its waiters then claim the key and run again.
        if (size <= maxBytes) {
          forget(removeScope.all(scope));
          insert.run(scope, claim.fingerprint, response, t + ttlMs);
          stored++;
          bytes += size;
          while ((stored > maxEntries || bytes > maxBytes) && stored > 0) {
            const evicted = removeOldest.all();
            if (evicted.length === 0) break;
            forget(evicted);
          }
        }
      } finally {
        claim.settle?.();
      }
    },
    release(scope, token) {
      take(scope, token)?.settle?.();
    },
  };
}
