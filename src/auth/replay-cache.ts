/**
 * Remembers call-token `jti`s until their tokens can no longer be accepted,
 * so a captured token cannot be played twice against this instance.
 *
 * Entries live in time buckets keyed by expiry: when a bucket's window has
 * passed, the whole bucket (one Set) is dropped at once. No timers run, so
 * nothing keeps the process alive; eviction happens lazily inside `check`.
 * Bounded: at `maxEntries` live entries it answers "full" and the verifier
 * fails closed rather than forgetting jtis that are still valid.
 */
export type ReplayVerdict = "fresh" | "replayed" | "full";

/**
 * What the call-token verifier needs. `check` may be async so a shared Redis
 * backend (e.g. SET jti NX EXAT keepUntil) can implement it for money-moving
 * methods across instances; the in-memory one answers synchronously.
 */
export interface ReplayCache {
  /**
   * Records `jti` if unseen. `keepUntil` is the epoch second after which the
   * token is rejected anyway (its exp plus the verifier's clock skew).
   */
  check(jti: string, keepUntil: number): ReplayVerdict | Promise<ReplayVerdict>;
}

export interface MemoryReplayCache extends ReplayCache {
  check(jti: string, keepUntil: number): ReplayVerdict;
  /** Live entries (expired buckets are dropped first). */
  size(): number;
}

export interface ReplayCacheOptions {
  maxEntries?: number;
  bucketSeconds?: number;
  /** Clock in epoch milliseconds (tests inject one). */
  now?: () => number;
}

export function createReplayCache({
  maxEntries = 100_000,
  bucketSeconds = 5,
  now = Date.now,
}: ReplayCacheOptions = {}): MemoryReplayCache {
  if (!(Number.isSafeInteger(maxEntries) && maxEntries > 0)) throw new RangeError("maxEntries must be a positive integer");
  if (!(bucketSeconds > 0)) throw new RangeError("bucketSeconds must be positive");

  // bucket index = floor(keepUntil / bucketSeconds); a bucket can go once now >= its end.
  const buckets = new Map<number, Set<string>>();
  let count = 0;
  // End of the earliest bucket: the common call compares one number and skips the scan.
  let nextExpiry = Infinity;

  function evict(nowSeconds: number): void {
    if (nowSeconds < nextExpiry) return;
    nextExpiry = Infinity;
    // Only a handful of buckets are ever live (token lifetime / bucketSeconds).
    for (const [index, jtis] of buckets) {
      const end = (index + 1) * bucketSeconds;
      if (end <= nowSeconds) {
        count -= jtis.size;
        buckets.delete(index);
      } else if (end < nextExpiry) {
        nextExpiry = end;
      }
    }
  }

  return {
    check(jti, keepUntil) {
      if (typeof jti !== "string" || jti.length === 0) throw new TypeError("jti must be a non-empty string");
      if (!Number.isFinite(keepUntil)) throw new TypeError("keepUntil must be a finite number");
      evict(now() / 1000);
      // A replay carries the same signed exp, so it lands in the same bucket;
      // looking in all live buckets also matches Redis's global-jti semantics.
      for (const jtis of buckets.values()) if (jtis.has(jti)) return "replayed";
      if (count >= maxEntries) return "full";
      const index = Math.floor(keepUntil / bucketSeconds);
      let jtis = buckets.get(index);
      if (jtis === undefined) {
        jtis = new Set();
        buckets.set(index, jtis);
        nextExpiry = Math.min(nextExpiry, (index + 1) * bucketSeconds);
      }
      jtis.add(jti);
      count++;
      return "fresh";
    },
    size() {
      evict(now() / 1000);
      return count;
    },
  };
}
