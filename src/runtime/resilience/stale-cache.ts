/**
 * Last good answers of a read method, kept per tenant so a degraded lookup
 * can still answer. Bounded in age and size; an entry is only ever found by
 * the same tenant, method and request bytes that stored it.
 */
import { createHash } from "node:crypto";
import type { Clock } from "./options.ts";

interface Entry {
  readonly value: unknown;
  readonly storedAt: number;
}

export class StaleCache {
  // Map keeps insertion order: the first key is the oldest entry.
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly maxAgeMs: number,
    private readonly maxEntries: number,
    private readonly clock: Clock,
  ) {}

  set(key: string, value: unknown): void {
    this.entries.delete(key);
    this.entries.set(key, { value, storedAt: this.clock.now() });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
  }

  /** The stored answer and its age, unless it is older than maxAgeMs. */
  get(key: string): { value: unknown; ageMs: number } | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    const ageMs = this.clock.now() - entry.storedAt;
    if (ageMs > this.maxAgeMs) {
      this.entries.delete(key);
      return undefined;
    }
    return { value: entry.value, ageMs };
  }
}

/**
 * Cache key for one request: the verified tenant of the call being served,
 * else a hash of the explicit context token (never stored raw); undefined
 * when neither is known, and then nothing is cached or served.
 */
export function staleCacheKey(tenantId: string | undefined, contextToken: string | null, method: string, request: Uint8Array): string | undefined {
  let tenant: string;
  if (tenantId !== undefined) tenant = `t:${tenantId}`;
  else if (contextToken) tenant = `c:${createHash("sha256").update(contextToken).digest("base64url")}`;
  else return undefined;
  return `${tenant}\n${method}\n${Buffer.from(request).toString("base64")}`;
}
