import { describe, expect, it } from "vitest";
import { CONTEXT_ENTRY_OVERHEAD_BYTES, contextEntryBytes, createContextCache } from "../../src/runtime/auth/context-cache.ts";
import type { CallContext } from "../../src/runtime/auth/context-token.ts";

const NOW = 1_800_000_000;
const KID = "kid-1";
const published = [{ kid: KID }];

function context(over: Partial<CallContext> = {}): CallContext {
  return { tenantId: "t-1", userId: "u-1", scopes: ["events:read"], txn: "txn-1", issuer: "spiffe://x/ns/dev/sa/api-gateway", expiresAt: NOW + 300, ...over };
}
/** A token-shaped string of `n` chars, distinct per `i`. */
const token = (i: number, n = 600) => `${i}.`.padEnd(n, "x");

describe("context cache", () => {
  it("serves an entry until it expires", () => {
    const cache = createContextCache();
    const ctx = context({ expiresAt: NOW + 10 });
    cache.set(token(1), ctx, KID);
    expect(cache.get(token(1), NOW, published)).toBe(ctx);
    expect(cache.get(token(1), NOW + 9, published)).toBe(ctx);
    expect(cache.get(token(1), NOW + 10, published)).toBeUndefined();
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0 });
  });

  it("serves an entry only while the key that verified it is still published", () => {
    const cache = createContextCache();
    const ctx = context();
    cache.set(token(1), ctx, KID);
    expect(cache.get(token(1), NOW, [{ kid: "new" }, { kid: KID }])).toBe(ctx);
    expect(cache.get(token(1), NOW, [{ kid: "new" }])).toBeUndefined();
    // Dropped, not just hidden: publishing the kid again does not bring it back unverified.
    expect(cache.get(token(1), NOW, published)).toBeUndefined();
    expect(cache.stats().entries).toBe(0);
  });

  it("is bounded in bytes: large tokens evict the oldest entries", () => {
    const perEntry = contextEntryBytes(token(0, 4096), context());
    const maxBytes = perEntry * 10 + perEntry / 2;
    const cache = createContextCache({ maxBytes, maxEntries: 1000 });
    for (let i = 0; i < 100; i++) {
      cache.set(token(i, 4096), context(), KID);
      expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    }
    expect(cache.stats().entries).toBe(10);
    expect(cache.get(token(99, 4096), NOW, published)).toBeDefined();
    expect(cache.get(token(89, 4096), NOW, published)).toBeUndefined();
    // Small tokens fit many more in the same bytes.
    const small = createContextCache({ maxBytes, maxEntries: 1000 });
    for (let i = 0; i < 100; i++) small.set(token(i, 200), context(), KID);
    expect(small.stats().entries).toBeGreaterThan(30);
  });

  it("is bounded in entries", () => {
    const cache = createContextCache({ maxEntries: 3 });
    for (let i = 0; i < 5; i++) cache.set(token(i), context(), KID);
    expect(cache.stats().entries).toBe(3);
    expect(cache.get(token(1), NOW, published)).toBeUndefined();
    expect(cache.get(token(4), NOW, published)).toBeDefined();
  });

  it("counts bytes for the token, every claim string (two bytes a char) and a fixed overhead", () => {
    const ctx = context({ tenantId: "ténant", scopes: ["a", "bb"] });
    const t = token(1, 1000);
    const chars = "ténant".length + "u-1".length + "txn-1".length + ctx.issuer.length + 1 + 16 + 2 + 16;
    expect(contextEntryBytes(t, ctx)).toBe(1000 + 2 * chars + CONTEXT_ENTRY_OVERHEAD_BYTES);
    const cache = createContextCache();
    cache.set(t, ctx, KID);
    cache.set(t, ctx, KID); // re-set replaces, never double counts
    expect(cache.stats()).toEqual({ entries: 1, bytes: contextEntryBytes(t, ctx) });
  });

  it("rejects bad bounds", () => {
    expect(() => createContextCache({ maxBytes: 0 })).toThrow(RangeError);
    expect(() => createContextCache({ maxEntries: 1.5 })).toThrow(RangeError);
  });
});
