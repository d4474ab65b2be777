import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createReplayCache, REPLAY_CACHE_DEFAULTS, REPLAY_ENTRY_BYTES, type MemoryReplayCache } from "../../src/runtime/auth/replay-cache.ts";
import { CALL_TOKEN_FRESHNESS_SECONDS, CALL_TOKEN_LIFETIME_SECONDS, replayKeepUntil } from "../../src/runtime/auth/call-token.ts";
import { CLOCK_SKEW_SECONDS } from "../../src/runtime/auth/keys.ts";

const T0 = 1_800_000_000; // epoch seconds
const A = "spiffe://tickettoken.internal/ns/dev/sa/api-gateway";
const B = "spiffe://tickettoken.internal/ns/dev/sa/event-service";

function clockAt(seconds: number) {
  const clock = { ms: seconds * 1000, now: () => clock.ms, set: (s: number) => (clock.ms = s * 1000) };
  return clock;
}

/** A jti as the minter makes it: 128 random bits, 22 base64url chars. */
const jti = () => randomBytes(16).toString("base64url");

describe("replay cache", () => {
  it("answers fresh, then replayed", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now });
    const [j1, j2] = [jti(), jti()];
    expect(cache.check(A, j1, T0 + 20)).toBe("fresh");
    expect(cache.check(A, j1, T0 + 20)).toBe("replayed");
    expect(cache.check(A, j2, T0 + 20)).toBe("fresh");
    expect(cache.size()).toBe(2);
    expect(cache.size(A)).toBe(2);
    expect(cache.size(B)).toBe(0);
  });

  it("finds a peer's reused jti even when presented with another keepUntil", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now });
    const j = jti();
    expect(cache.check(A, j, T0 + 3)).toBe("fresh");
    expect(cache.check(A, j, T0 + 24)).toBe("replayed");
  });

  it("keeps jtis per peer: the token's iss is bound to the peer, so another peer can never present it", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now });
    const j = jti();
    expect(cache.check(A, j, T0 + 20)).toBe("fresh");
    expect(cache.check(B, j, T0 + 20)).toBe("fresh");
    expect(cache.check(A, j, T0 + 20)).toBe("replayed");
    expect(cache.check(B, j, T0 + 20)).toBe("replayed");
  });

  it("keeps an entry until its keepUntil has passed, then forgets it", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, generationSeconds: 5 });
    const j = jti();
    expect(cache.check(A, j, T0 + 12)).toBe("fresh");
    for (const t of [T0 + 1, T0 + 11, T0 + 12, T0 + 14.999]) {
      c.set(t);
      expect(cache.check(A, j, T0 + 12), `at +${t - T0}s`).toBe("replayed");
    }
    c.set(T0 + 15); // generation [T0+10, T0+15) has ended
    expect(cache.size()).toBe(0);
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0, peers: 0 });
  });

  it("drops whole generations and keeps later ones", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, generationSeconds: 5 });
    const early = Array.from({ length: 50 }, jti);
    const late = Array.from({ length: 30 }, jti);
    for (const j of early) expect(cache.check(A, j, T0 + 3)).toBe("fresh");
    for (const j of late) expect(cache.check(A, j, T0 + 20)).toBe("fresh");
    expect(cache.size()).toBe(80);
    c.set(T0 + 5);
    expect(cache.size()).toBe(30);
    expect(cache.check(A, late[7]!, T0 + 20)).toBe("replayed");
    c.set(T0 + 25);
    expect(cache.size()).toBe(0);
  });

  it("refuses a peer over its quota alone, still detects its replays, and recovers when its generation ends", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, maxPerGeneration: 4, generationSeconds: 5 });
    const first = Array.from({ length: 4 }, jti);
    for (const j of first) expect(cache.check(A, j, T0 + 2)).toBe("fresh");
    expect(cache.check(A, jti(), T0 + 2)).toBe("over_quota");
    expect(cache.check(A, first[0]!, T0 + 2)).toBe("replayed"); // replays are still detected over quota
    expect(cache.check(B, jti(), T0 + 2)).toBe("fresh"); // another peer is untouched
    expect(cache.check(A, jti(), T0 + 7)).toBe("fresh"); // the quota is per generation
    c.set(T0 + 5); // A's first generation ends
    expect(cache.check(A, jti(), T0 + 9)).toBe("fresh");
  });

  it("stores nothing for a keepUntil already past (the verifier refuses that token as stale from now on)", () => {
    const c = clockAt(T0 + 0.5);
    const cache = createReplayCache({ now: c.now, generationSeconds: 5 });
    const live = jti();
    expect(cache.check(A, live, T0 + 1)).toBe("fresh"); // generation [T0, T0+5) is still live: remembered
    expect(cache.check(A, live, T0 + 1)).toBe("replayed");
    c.set(T0 + 5);
    expect(cache.check(B, jti(), T0 + 4)).toBe("fresh");
    expect(cache.stats()).toEqual({ entries: 0, bytes: 0, peers: 0 });
  });

  it("answers over_quota to a peer beyond maxPeers, and only to it", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, maxPeers: 1 });
    expect(cache.check(A, jti(), T0 + 20)).toBe("fresh");
    expect(cache.check(B, jti(), T0 + 20)).toBe("over_quota");
    expect(cache.check(A, jti(), T0 + 20)).toBe("fresh");
    c.set(T0 + 25); // A's entries expire: its slot is free again
    expect(cache.check(B, jti(), T0 + 40)).toBe("fresh");
  });

  it("stores the decoded 128 bits exactly: one-bit differences, the all-zero jti and growth all hold", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now });
    const zero = "AAAAAAAAAAAAAAAAAAAAAA";
    expect(cache.check(A, zero, T0 + 20)).toBe("fresh");
    expect(cache.check(A, zero, T0 + 20)).toBe("replayed");
    const base = randomBytes(16);
    const variants = [base, ...Array.from({ length: 128 }, (_, bit) => {
      const v = Buffer.from(base);
      v[bit >> 3]! ^= 0x80 >> (bit & 7);
      return v;
    })].map((b) => b.toString("base64url"));
    for (const v of variants) expect(cache.check(A, v, T0 + 20)).toBe("fresh");
    // Several table doublings, then every entry is still found.
    const many = Array.from({ length: 10_000 }, jti);
    for (const j of many) expect(cache.check(A, j, T0 + 20)).toBe("fresh");
    for (const j of [...variants, ...many]) expect(cache.check(A, j, T0 + 20)).toBe("replayed");
    expect(cache.size(A)).toBe(1 + variants.length + many.length);
  });

  it("accepts only the fixed jti format and a keepUntil within maxLiveSeconds; needs no timers", () => {
    const cache = createReplayCache();
    const now = Date.now() / 1000;
    expect(cache.check(A, jti(), now + 20)).toBe("fresh");
    for (const bad of ["", "short", `${jti()}A`, "AAAAAAAAAAAAAAAAAAAA.A", "AAAAAAAAAAAAAAAAAAAAAB"]) {
      expect(() => cache.check(A, bad, now + 20), bad).toThrow(TypeError);
    }
    expect(() => cache.check("", jti(), now + 20)).toThrow(TypeError);
    expect(() => cache.check(A, jti(), Number.NaN)).toThrow(TypeError);
    expect(() => cache.check(A, jti(), now + REPLAY_CACHE_DEFAULTS.maxLiveSeconds + 1)).toThrow(RangeError);
    expect(() => createReplayCache({ maxPerGeneration: 1000 })).toThrow(RangeError);
    expect(() => createReplayCache({ maxPeers: 0 })).toThrow(RangeError);
  });

  it("documents its bound: 16 bytes per entry, 786,432 entries and 24 MiB per peer, 768 MiB in all", () => {
    const cache = createReplayCache();
    const generations = Math.ceil(REPLAY_CACHE_DEFAULTS.maxLiveSeconds / REPLAY_CACHE_DEFAULTS.generationSeconds) + 1;
    expect(REPLAY_ENTRY_BYTES).toBe(16);
    expect(generations * REPLAY_CACHE_DEFAULTS.maxPerGeneration).toBe(786_432);
    expect(generations * REPLAY_CACHE_DEFAULTS.maxPerGeneration * 2 * REPLAY_ENTRY_BYTES).toBe(24 * 2 ** 20);
    expect(cache.maxBytes).toBe(REPLAY_CACHE_DEFAULTS.maxPeers * 24 * 2 ** 20);
    // The verifier never asks to keep a jti longer than the cache is sized for.
    expect(CALL_TOKEN_FRESHNESS_SECONDS + 2 * CLOCK_SKEW_SECONDS).toBeLessThanOrEqual(REPLAY_CACHE_DEFAULTS.maxLiveSeconds);
  });
});

/**
 * Simulated load on an injected clock: `rate` tokens a second per peer, iat
 * as honest clients with up to +-skew clock error would mint them, fed in
 * 50 ms steps. Returns every verdict count and checks replays each second.
 */
function simulate(
  cache: MemoryReplayCache,
  clock: ReturnType<typeof clockAt>,
  peers: ReadonlyArray<{ peer: string; rate: number }>,
  seconds: number,
  onSecond: (second: number) => void,
) {
  const verdicts = new Map<string, Record<string, number>>(peers.map(({ peer }) => [peer, { fresh: 0, replayed: 0, over_quota: 0 }]));
  const steps = 20;
  for (let s = 0; s < seconds; s++) {
    for (let step = 0; step < steps; step++) {
      clock.set(T0 + s + step / steps);
      const nowSec = Math.floor(T0 + s + step / steps);
      for (const { peer, rate } of peers) {
        const n = rate / steps;
        const bytes = randomBytes(16 * n);
        const counts = verdicts.get(peer)!;
        for (let i = 0; i < n; i++) {
          // Client clocks within [-skew, +skew) of ours; the verifier accepts all of these.
          const iat = nowSec + ((i % (2 * CLOCK_SKEW_SECONDS)) - CLOCK_SKEW_SECONDS);
          const verdict = cache.check(peer, bytes.toString("base64url", i * 16, i * 16 + 16), replayKeepUntil(iat, iat + CALL_TOKEN_LIFETIME_SECONDS));
          counts[verdict]!++;
        }
      }
    }
    onSecond(s);
  }
  return verdicts;
}

/** Replays a sample of still-acceptable tokens seen so far: every one must be refused. */
function replaySampler(cache: MemoryReplayCache, clock: ReturnType<typeof clockAt>, peer: string) {
  const seen: Array<{ jti: string; keepUntil: number }> = [];
  return {
    /** Records a token the way a caller would send it once. */
    send(iat: number): void {
      const token = { jti: jti(), keepUntil: replayKeepUntil(iat, iat + CALL_TOKEN_LIFETIME_SECONDS) };
      expect(cache.check(peer, token.jti, token.keepUntil)).toBe("fresh");
      seen.push(token);
    },
    /** Replays each recorded token still inside its window (the verifier rejects the others itself). */
    replayAll(): number {
      const nowSec = clock.now() / 1000;
      let replayed = 0;
      for (const t of seen) {
        if (nowSec >= t.keepUntil) continue;
        expect(cache.check(peer, t.jti, t.keepUntil)).toBe("replayed");
        replayed++;
      }
      return replayed;
    },
  };
}

describe("replay cache under load (injected clock)", () => {
  it("takes 20,000 fresh tokens a second from one peer for 3 simulated minutes: none rejected, within the bound, replays refused throughout", { timeout: 60_000 }, () => {
    const clock = clockAt(T0);
    const cache = createReplayCache({ now: clock.now });
    const perPeerBytes = cache.maxBytes / REPLAY_CACHE_DEFAULTS.maxPeers;
    const sampler = replaySampler(cache, clock, A);
    let maxBytes = 0;
    let maxEntries = 0;
    let replays = 0;
    const verdicts = simulate(cache, clock, [{ peer: A, rate: 20_000 }], 180, () => {
      const nowSec = Math.floor(clock.now() / 1000);
      // Tokens at both ends of the acceptable iat range, then replays of everything still acceptable.
      sampler.send(nowSec + CLOCK_SKEW_SECONDS);
      sampler.send(nowSec - CALL_TOKEN_FRESHNESS_SECONDS - CLOCK_SKEW_SECONDS + 1);
      replays += sampler.replayAll();
      const { bytes, entries } = cache.stats();
      maxBytes = Math.max(maxBytes, bytes);
      maxEntries = Math.max(maxEntries, entries);
    });
    expect(verdicts.get(A)).toEqual({ fresh: 3_600_000, replayed: 0, over_quota: 0 });
    expect(replays).toBeGreaterThan(1000); // ~2 tokens/s stay replayable for ~20 s each
    expect(maxBytes).toBeLessThanOrEqual(perPeerBytes);
    // 20k/s for at most 25 s plus one generation of slack, well under the per-peer entry bound.
    expect(maxEntries).toBeLessThanOrEqual(20_000 * 30 + 400);
    expect(maxEntries).toBeGreaterThan(20_000 * 15);
  });

  it("one peer flooding at 5x its quota cannot cause a single rejection for another peer", () => {
    const clock = clockAt(T0);
    const cache = createReplayCache({ now: clock.now });
    const sampler = replaySampler(cache, clock, B);
    let maxBytes = 0;
    const verdicts = simulate(
      cache,
      clock,
      [
        { peer: A, rate: 120_000 },
        { peer: B, rate: 20_000 },
      ],
      30,
      () => {
        sampler.send(Math.floor(clock.now() / 1000));
        sampler.replayAll();
        maxBytes = Math.max(maxBytes, cache.stats().bytes);
      },
    );
    expect(verdicts.get(B)).toEqual({ fresh: 600_000, replayed: 0, over_quota: 0 });
    const flood = verdicts.get(A)!;
    expect(flood.over_quota).toBeGreaterThan(0);
    expect(flood.replayed).toBe(0);
    // The flooder got at most its own quota: one generation's worth per generation it touched.
    const generations = Math.ceil((30 + REPLAY_CACHE_DEFAULTS.maxLiveSeconds) / REPLAY_CACHE_DEFAULTS.generationSeconds) + 1;
    expect(flood.fresh).toBeLessThanOrEqual(generations * REPLAY_CACHE_DEFAULTS.maxPerGeneration);
    expect(maxBytes).toBeLessThanOrEqual((2 * cache.maxBytes) / REPLAY_CACHE_DEFAULTS.maxPeers);
  }, 60_000);
});
