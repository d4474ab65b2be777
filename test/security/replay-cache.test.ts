import { describe, expect, it } from "vitest";
import { createReplayCache } from "../../src/auth/replay-cache.ts";

const T0 = 1_800_000_000; // epoch seconds

function clockAt(seconds: number) {
  const clock = { ms: seconds * 1000, now: () => clock.ms, set: (s: number) => (clock.ms = s * 1000) };
  return clock;
}

describe("replay cache", () => {
  it("answers fresh, then replayed", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now });
    expect(cache.check("jti-1", T0 + 65)).toBe("fresh");
    expect(cache.check("jti-1", T0 + 65)).toBe("replayed");
    expect(cache.check("jti-2", T0 + 65)).toBe("fresh");
    expect(cache.size()).toBe(2);
  });

  it("finds a replay even when presented with another expiry", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now });
    expect(cache.check("jti-1", T0 + 10)).toBe("fresh");
    expect(cache.check("jti-1", T0 + 60)).toBe("replayed");
  });

  it("keeps an entry until its keepUntil has passed, then forgets it", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, bucketSeconds: 5 });
    expect(cache.check("jti-1", T0 + 12)).toBe("fresh");
    for (const t of [T0 + 1, T0 + 11, T0 + 12]) {
      c.set(t);
      expect(cache.check("jti-1", T0 + 12), `at +${t - T0}s`).toBe("replayed");
    }
    c.set(T0 + 15); // bucket [T0+10, T0+15) has ended
    expect(cache.size()).toBe(0);
    expect(cache.check("jti-1", T0 + 12)).toBe("fresh");
  });

  it("drops whole buckets and keeps later ones", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, bucketSeconds: 5 });
    for (let i = 0; i < 50; i++) cache.check(`early-${i}`, T0 + 3);
    for (let i = 0; i < 30; i++) cache.check(`late-${i}`, T0 + 40);
    expect(cache.size()).toBe(80);
    c.set(T0 + 5);
    expect(cache.size()).toBe(30);
    expect(cache.check("late-7", T0 + 40)).toBe("replayed");
    expect(cache.check("early-7", T0 + 3)).toBe("fresh"); // forgotten: the verifier rejects it as expired anyway
    c.set(T0 + 45);
    expect(cache.size()).toBe(0);
  });

  it("answers full at maxEntries, without evicting live entries, and recovers as buckets expire", () => {
    const c = clockAt(T0);
    const cache = createReplayCache({ now: c.now, maxEntries: 3 });
    expect(cache.check("a", T0 + 2)).toBe("fresh");
    expect(cache.check("b", T0 + 60)).toBe("fresh");
    expect(cache.check("c", T0 + 60)).toBe("fresh");
    expect(cache.check("d", T0 + 60)).toBe("full");
    expect(cache.check("a", T0 + 2)).toBe("replayed"); // replays are still detected when full
    expect(cache.size()).toBe(3);
    c.set(T0 + 5); // "a"'s bucket ends
    expect(cache.check("d", T0 + 60)).toBe("fresh");
    expect(cache.check("e", T0 + 60)).toBe("full");
  });

  it("needs no timers (an idle cache does not keep the process alive) and rejects bad input", () => {
    const cache = createReplayCache();
    expect(cache.check("x", Date.now() / 1000 + 60)).toBe("fresh");
    expect(() => cache.check("", 1)).toThrow(TypeError);
    expect(() => cache.check("y", Number.NaN)).toThrow(TypeError);
    expect(() => createReplayCache({ maxEntries: 0 })).toThrow(RangeError);
  });
});
