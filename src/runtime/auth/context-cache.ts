/**
 * Verified context tokens, so a fan-out that forwards one token on many calls
 * verifies its signature once. Bounded twice: by entries and by estimated
 * bytes (a 4 KiB token weighs what it weighs). An entry is served only while
 * the token is unexpired AND the key that verified it is still published in
 * the current trust bundle, so a key removed from the bundle stops being
 * accepted at the next reload, not when cached tokens expire.
 */
import type { CallContext } from "./context-token.ts";

export interface ContextCacheOptions {
  maxEntries?: number;
  maxBytes?: number;
}

export const CONTEXT_CACHE_DEFAULTS = { maxEntries: 10_000, maxBytes: 8 * 2 ** 20 } as const;

/**
 * What an entry costs beyond its strings: the Map entry, the entry and
 * CallContext objects, the scopes array and the string headers (V8, 64-bit,
 * rounded up generously).
 */
export const CONTEXT_ENTRY_OVERHEAD_BYTES = 320;

export interface ContextCache {
  /** The cached context for `token`, if unexpired and its verifying kid is among `published`. */
  get(token: string, nowSeconds: number, published: readonly { readonly kid?: string | undefined }[]): CallContext | undefined;
  /** Caches a context just verified with key `kid`. */
  set(token: string, context: CallContext, kid: string): void;
  stats(): { entries: number; bytes: number };
}

interface Entry {
  readonly context: CallContext;
  readonly kid: string;
  readonly bytes: number;
}

/**
 * Estimated bytes of an entry: the token is ASCII (it passed the base64url
 * checks), claim strings may be two-byte in V8, so they count double.
 */
export function contextEntryBytes(token: string, context: CallContext): number {
  let chars = context.tenantId.length + context.userId.length + context.txn.length + context.issuer.length;
  for (const scope of context.scopes) chars += scope.length + 16; // + a string header each
  return token.length + 2 * chars + CONTEXT_ENTRY_OVERHEAD_BYTES;
}

export function createContextCache({
  maxEntries = CONTEXT_CACHE_DEFAULTS.maxEntries,
  maxBytes = CONTEXT_CACHE_DEFAULTS.maxBytes,
}: ContextCacheOptions = {}): ContextCache {
  if (!(Number.isSafeInteger(maxEntries) && maxEntries > 0)) throw new RangeError("maxEntries must be a positive integer");
  if (!(Number.isSafeInteger(maxBytes) && maxBytes > 0)) throw new RangeError("maxBytes must be a positive integer");
  // Insertion order doubles as eviction order: oldest first (tokens expire in roughly that order too).
  const entries = new Map<string, Entry>();
  let bytes = 0;

  function remove(token: string, entry: Entry): void {
    entries.delete(token);
    bytes -= entry.bytes;
  }

  return {
    get(token, nowSeconds, published) {
      const hit = entries.get(token);
      if (hit === undefined) return undefined;
      if (hit.context.expiresAt > nowSeconds) {
        for (const key of published) if (key.kid === hit.kid) return hit.context;
      }
      // Expired, or its key is no longer published: verify afresh (and fail if the key is gone).
      remove(token, hit);
      return undefined;
    },
    set(token, context, kid) {
      const entry: Entry = { context, kid, bytes: contextEntryBytes(token, context) };
      if (entry.bytes > maxBytes) return;
      const old = entries.get(token);
      if (old !== undefined) remove(token, old);
      while (entries.size >= maxEntries || bytes + entry.bytes > maxBytes) {
        const [oldestToken, oldest] = entries.entries().next().value!;
        remove(oldestToken, oldest);
      }
      entries.set(token, entry);
      bytes += entry.bytes;
    },
    stats: () => ({ entries: entries.size, bytes }),
  };
}
