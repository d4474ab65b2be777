/**
 * createStateBackends: TT_RPC_REDIS_URL selects Redis for both stores (keys
 * namespaced by service), its absence the in-memory defaults; a bad URL or
 * timeout stops start-up with an error naming the variable and the expected
 * form, never echoing a password; an unreachable Redis does not stop the
 * start but shows in status() and makes keyed dedupe fail.
 */
import { createServer as createTcpServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { createStateBackends, parseRedisUrl, REDIS_URL_VARIABLE } from "../../src/runtime/server/state-backends.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.close();
});

describe("parseRedisUrl", () => {
  it("reads host, port, db, TLS and credentials", () => {
    expect(parseRedisUrl("redis://cache.internal:6380/2")).toEqual({ host: "cache.internal", port: 6380, db: 2, tls: false });
    expect(parseRedisUrl("rediss://user:p%40ss@cache.internal")).toEqual({
      host: "cache.internal",
      port: 6379,
      db: 0,
      tls: true,
      username: "user",
      password: "p@ss",
    });
    expect(parseRedisUrl("redis://[::1]:7000")).toMatchObject({ host: "::1", port: 7000 });
  });

  it.each([
    ["not a url", /TT_RPC_REDIS_URL is not a URL/],
    ["http://cache:6379", /TT_RPC_REDIS_URL has scheme "http:"/],
    ["redis://:secret-pw@cache/x", /TT_RPC_REDIS_URL has a database that is not a number/],
    ["redis://cache:6379/0?password=secret-pw", /TT_RPC_REDIS_URL has a query or fragment/],
  ])("refuses %s with the variable's name and the expected form", (value, message) => {
    expect(() => parseRedisUrl(value)).toThrow(message);
    expect(() => parseRedisUrl(value)).toThrow(/expected redis:\/\/\[user:password@\]host\[:port\]\[\/db\] or rediss:\/\//);
    try {
      parseRedisUrl(value);
    } catch (err) {
      expect(String(err)).not.toContain("secret-pw");
    }
  });
});

describe("createStateBackends", () => {
  it("without TT_RPC_REDIS_URL: the in-memory stores", async () => {
    const backends = await createStateBackends({ service: "ticket-service", env: {} });
    expect(backends.status()).toEqual({ backend: "memory", reachable: true });
    const found = await backends.dedupeStore.begin("scope", "fp");
    expect(found.state).toBe("claimed");
    const jti = randomBytes(16).toString("base64url");
    const keepUntil = Math.floor(Date.now() / 1000) + 20;
    expect(await backends.replayCache.check(workloadSpiffeId("payment-service"), jti, keepUntil)).toBe("fresh");
    expect(await backends.replayCache.check(workloadSpiffeId("payment-service"), jti, keepUntil)).toBe("replayed");
    await backends.close();
  });

  it("with TT_RPC_REDIS_URL: both stores in Redis, keys namespaced by service", async () => {
    const backends = await createStateBackends({ service: "ticket-service", env: { [REDIS_URL_VARIABLE]: `${redis.url}/3` } });
    const inspect = await redis.client();
    try {
      expect(backends.status()).toMatchObject({ backend: "redis", reachable: true, replay: { degraded: false } });
      const found = await backends.dedupeStore.begin("scope", "fp");
      expect(found.state).toBe("claimed");
      const peer = workloadSpiffeId("payment-service");
      expect(await backends.replayCache.check(peer, randomBytes(16).toString("base64url"), Math.floor(Date.now() / 1000) + 20)).toBe("fresh");
      await inspect.select(3);
      const keys = (await inspect.keys("*")).sort();
      expect(keys).toHaveLength(3);
      expect(keys[0]).toMatch(/^tt-rpc:ticket-service:dedupe:/);
      expect(keys[1]).toMatch(new RegExp(`^tt-rpc:ticket-service:replay:\\{${peer}\\}:j:`));
      expect(keys[2]).toMatch(new RegExp(`^tt-rpc:ticket-service:replay:\\{${peer}\\}:q:`));
    } finally {
      await backends.close();
    }
  });

  it("refuses a bad URL or timeout at start-up, naming the variable", async () => {
    await expect(createStateBackends({ service: "ticket-service", env: { [REDIS_URL_VARIABLE]: "memcached://x" } })).rejects.toThrow(/TT_RPC_REDIS_URL/);
    await expect(
      createStateBackends({ service: "ticket-service", env: { [REDIS_URL_VARIABLE]: redis.url, TT_RPC_REDIS_COMMAND_TIMEOUT_MS: "0" } }),
    ).rejects.toThrow(/TT_RPC_REDIS_COMMAND_TIMEOUT_MS must be an integer number of milliseconds from 10 to 60000/);
  });

  it("Redis unreachable at start: starts anyway, reports it, and keyed dedupe fails (it never runs without the store)", async () => {
    const port = await closedPort();
    const backends = await createStateBackends({ service: "ticket-service", redisUrl: `redis://127.0.0.1:${port}`, env: {} });
    try {
      expect(backends.status()).toMatchObject({ backend: "redis", reachable: false });
      await expect(backends.dedupeStore.begin("scope", "fp")).rejects.toThrow();
    } finally {
      await backends.close();
    }
  });
});

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createTcpServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
