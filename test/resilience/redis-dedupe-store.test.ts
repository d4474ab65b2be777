/**
 * The Redis dedupe store against a real redis-server, each "replica" on its
 * own connection: one claim wins a race, the holder's token is the only one
 * that completes or releases, a completed entry answers its fingerprint and
 * response, waiters learn when the holder settles, a crashed holder's claim
 * expires, and a Redis that is down makes every method reject.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisDedupeStore } from "../../src/runtime/resilience/redis-dedupe-store.ts";
import type { DedupeBegin, DedupeStore } from "../../src/runtime/resilience/dedupe-store.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";

let redis: TestRedis;
let a: DedupeStore;
let b: DedupeStore;

beforeAll(async () => {
  redis = await startRedis();
  a = createRedisDedupeStore({ redis: await redis.client() });
  b = createRedisDedupeStore({ redis: await redis.client() });
});

afterAll(async () => {
  await redis?.close();
});

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (u: Uint8Array) => new TextDecoder().decode(u);

function expectState<S extends DedupeBegin["state"]>(found: DedupeBegin, state: S): Extract<DedupeBegin, { state: S }> {
  expect(found.state).toBe(state);
  return found as Extract<DedupeBegin, { state: S }>;
}

describe("Redis dedupe store", () => {
  it("exactly one of many concurrent begins on two connections claims the scope", async () => {
    const found = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).begin("race", "fp-1")));
    const claimed = found.filter((f) => f.state === "claimed");
    expect(claimed).toHaveLength(1);
    for (const f of found.filter((f) => f.state !== "claimed")) expect(f).toMatchObject({ state: "in_flight", fingerprint: "fp-1" });
  });

  it("complete stores fingerprint and response; any replica then answers them", async () => {
    const { token } = expectState(await a.begin("done", "fp-done"), "claimed");
    const waiting = expectState(await b.begin("done", "fp-done"), "in_flight");
    await a.complete("done", token, bytes("response \n with newline and \u00e9"));
    await waiting.settled; // resolves once the holder completed
    const found = expectState(await b.begin("done", "fp-other"), "completed");
    expect(found.fingerprint).toBe("fp-done");
    expect(text(found.response)).toBe("response \n with newline and \u00e9");
  });

  it("binary responses come back byte for byte", async () => {
    const response = Uint8Array.from({ length: 256 }, (_, i) => i);
    const { token } = expectState(await a.begin("binary", "fp"), "claimed");
    await a.complete("binary", token, response);
    expect(Array.from(expectState(await b.begin("binary", "fp"), "completed").response)).toEqual(Array.from(response));
  });

  it("release frees the scope for the next claim and settles waiters", async () => {
    const { token } = expectState(await a.begin("released", "fp"), "claimed");
    const waiting = expectState(await b.begin("released", "fp"), "in_flight");
    await a.release("released", token);
    await waiting.settled;
    expectState(await b.begin("released", "fp"), "claimed");
  });

  it("a token that does not hold the claim can neither complete nor release it", async () => {
    const { token } = expectState(await a.begin("cas", "fp"), "claimed");
    await b.complete("cas", "not-the-token", bytes("forged"));
    await b.release("cas", "not-the-token");
    expectState(await b.begin("cas", "fp"), "in_flight");
    await a.complete("cas", token, bytes("real"));
    // A late release of the (now completed) claim leaves the stored response alone.
    await a.release("cas", token);
    expect(text(expectState(await b.begin("cas", "fp"), "completed").response)).toBe("real");
  });

  it("a crashed holder's claim expires: its waiters settle and the next call claims", async () => {
    const short = createRedisDedupeStore({ redis: await redis.client(), claimTtlMs: 300 });
    expectState(await short.begin("crashed", "fp"), "claimed"); // never completed nor released
    const waiting = expectState(await b.begin("crashed", "fp"), "in_flight");
    await waiting.settled;
    expectState(await b.begin("crashed", "fp"), "claimed");
  });

  it("a completed claim keeps its response for ttlMs (PX on the key)", async () => {
    const client = await redis.client();
    const store = createRedisDedupeStore({ redis: client, ttlMs: 90_000, keyPrefix: "px-test:" });
    const { token } = expectState(await store.begin("caller|tenant|method|order-4711", "fp"), "claimed");
    await store.complete("caller|tenant|method|order-4711", token, bytes("x"));
    const [key] = await client.keys("px-test:*");
    const pttl = await client.pttl(key!);
    expect(pttl).toBeGreaterThan(60_000);
    expect(pttl).toBeLessThanOrEqual(90_000);
    // The scope itself never reaches Redis in the clear.
    expect(key).not.toContain("order-4711");
    expect(key!.slice("px-test:".length)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it("a response over maxResponseBytes is not stored: waiters run the call again", async () => {
    const small = createRedisDedupeStore({ redis: await redis.client(), maxResponseBytes: 8 });
    const { token } = expectState(await small.begin("big", "fp"), "claimed");
    await small.complete("big", token, bytes("more than eight bytes"));
    expectState(await small.begin("big", "fp"), "claimed");
  });
});

describe("Redis dedupe store with Redis hung or down", () => {
  it("a hung Redis (SIGSTOP) makes begin reject at the command timeout; it works again once Redis answers", async () => {
    const hung = await startRedis();
    try {
      const store = createRedisDedupeStore({ redis: await hung.client({ commandTimeoutMs: 200 }) });
      expectState(await store.begin("before", "fp"), "claimed");
      hung.pause();
      await expect(store.begin("hung", "fp")).rejects.toThrow(/timed out/i);
      hung.resume();
      expectState(await store.begin("after", "fp"), "claimed");
    } finally {
      hung.resume();
      await hung.close();
    }
  });

  it("every method rejects (bounded by the client's timeouts), so the server can fail closed", async () => {
    const down = await startRedis();
    const client = await down.client();
    const store = createRedisDedupeStore({ redis: client });
    try {
      const { token } = expectState(await store.begin("down", "fp"), "claimed");
      await down.kill();
      await expect(store.begin("down-2", "fp")).rejects.toThrow();
      await expect(store.complete("down", token, bytes("x"))).rejects.toThrow();
      await expect(store.release("down", token)).rejects.toThrow();
    } finally {
      await down.close();
    }
  });
});
