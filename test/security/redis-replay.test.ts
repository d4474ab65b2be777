/**
 * The Redis replay cache against a real redis-server: a jti recorded by one
 * replica is "replayed" on every other; the per-peer quota holds over all
 * replicas and refuses only that peer; entries live the token's remaining
 * lifetime; with Redis down each replica still catches its own replays, says
 * so once in the log and in status(), and recovers by itself. Then over real
 * servers: a call token accepted by replica A and replayed to replica B is
 * UNAUTHENTICATED and B's handler never runs.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisReplayCache, type RedisReplayCache } from "../../src/runtime/auth/redis-replay-cache.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createStateBackends, type StateBackends } from "../../src/runtime/server/state-backends.ts";
import { captureLogs, type CapturedLogs } from "../support/log-capture.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";

const PEER = workloadSpiffeId("payment-service");
const OTHER_PEER = workloadSpiffeId("order-service");
const newJti = () => randomBytes(16).toString("base64url");
const inSeconds = (s: number) => Math.floor(Date.now() / 1000) + s;

let redis: TestRedis;

beforeAll(async () => {
  redis = await startRedis();
});

afterAll(async () => {
  await redis?.close();
});

describe("Redis replay cache", () => {
  let a: RedisReplayCache;
  let b: RedisReplayCache;

  beforeAll(async () => {
    a = createRedisReplayCache({ redis: await redis.client(), keyPrefix: "unit:" });
    b = createRedisReplayCache({ redis: await redis.client(), keyPrefix: "unit:" });
  });

  it("a jti seen on one replica is replayed on any other, and on itself", async () => {
    const jti = newJti();
    const keepUntil = inSeconds(20);
    expect(await a.check(PEER, jti, keepUntil)).toBe("fresh");
    expect(await b.check(PEER, jti, keepUntil)).toBe("replayed");
    expect(await a.check(PEER, jti, keepUntil)).toBe("replayed");
    // Keyed by peer too: another identity's token with the same jti is its own.
    expect(await b.check(OTHER_PEER, jti, keepUntil)).toBe("fresh");
  });

  it("remembers a jti for the token's remaining lifetime, and not at all once it is past", async () => {
    const client = await redis.client();
    const cache = createRedisReplayCache({ redis: client, keyPrefix: "ttl:" });
    const jti = newJti();
    expect(await cache.check(PEER, jti, inSeconds(20))).toBe("fresh");
    const pttl = await client.pttl(`ttl:{${PEER}}:j:${jti}`);
    expect(pttl).toBeGreaterThan(15_000);
    expect(pttl).toBeLessThanOrEqual(21_000);
    const stale = newJti();
    expect(await cache.check(PEER, stale, inSeconds(-1))).toBe("fresh");
    expect(await client.exists(`ttl:{${PEER}}:j:${stale}`)).toBe(0);
  });

  it("rejects malformed input like the memory cache", async () => {
    await expect(a.check(PEER, "short", inSeconds(20))).rejects.toThrow(TypeError);
    await expect(a.check(PEER, newJti(), inSeconds(3600))).rejects.toThrow(RangeError);
  });

  it("the per-peer quota holds over all replicas and refuses that peer only", async () => {
    const prefix = "quota:";
    const q1 = createRedisReplayCache({ redis: await redis.client(), keyPrefix: prefix, maxPerGeneration: 3 });
    const q2 = createRedisReplayCache({ redis: await redis.client(), keyPrefix: prefix, maxPerGeneration: 3 });
    // One keepUntil, so all land in one generation.
    const keepUntil = inSeconds(20);
    expect(await q1.check(PEER, newJti(), keepUntil)).toBe("fresh");
    expect(await q2.check(PEER, newJti(), keepUntil)).toBe("fresh");
    expect(await q1.check(PEER, newJti(), keepUntil)).toBe("fresh");
    expect(await q2.check(PEER, newJti(), keepUntil)).toBe("over_quota");
    expect(await q1.check(PEER, newJti(), keepUntil)).toBe("over_quota");
    // Another peer, same replicas, same moment: unaffected.
    expect(await q2.check(OTHER_PEER, newJti(), keepUntil)).toBe("fresh");
  });

  it("Redis down: each replica still catches its own replays, logs once, reports degraded, and recovers", async () => {
    const down = await startRedis();
    const logs = captureLogs("info");
    const cache = createRedisReplayCache({ redis: await down.client(), logger: logs.logger });
    try {
      expect(await cache.check(PEER, newJti(), inSeconds(20))).toBe("fresh");
      expect(cache.status()).toMatchObject({ backend: "redis", degraded: false });
      await down.kill();
      const jti = newJti();
      expect(await cache.check(PEER, jti, inSeconds(20))).toBe("fresh");
      expect(await cache.check(PEER, jti, inSeconds(20))).toBe("replayed");
      for (let i = 0; i < 5; i++) expect(await cache.check(PEER, newJti(), inSeconds(20))).toBe("fresh");
      expect(cache.status().degraded).toBe(true);
      expect(cache.status().degradedSince).toBeTypeOf("number");
      const warnings = logs.lines.filter((l) => l.includes("replay cache: Redis unreachable"));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!).level).toBe(40);

      await down.start();
      const giveUp = Date.now() + 15_000;
      let verdict = await cache.check(PEER, newJti(), inSeconds(20));
      while (cache.status().degraded && Date.now() < giveUp) {
        await new Promise((r) => setTimeout(r, 50));
        verdict = await cache.check(PEER, newJti(), inSeconds(20));
      }
      expect(verdict).toBe("fresh");
      expect(cache.status()).toMatchObject({ degraded: false, degradedSince: undefined });
      expect(logs.lines.some((l) => l.includes("replay cache: Redis reachable again"))).toBe(true);
    } finally {
      await down.close();
    }
  });
});

describe("Redis replay cache with a hung Redis", () => {
  it("costs one command timeout, then skips Redis for retryAfterMs (local verdicts only), then asks again", async () => {
    const hung = await startRedis();
    const client = await hung.client({ commandTimeoutMs: 200 });
    let t = Date.now();
    const cache = createRedisReplayCache({ redis: client, keyPrefix: "hung:", retryAfterMs: 1_000, now: () => t });
    const keepUntil = Math.floor(t / 1000) + 20;
    const inRedis = async (jti: string) => (await client.exists(`hung:{${PEER}}:j:${jti}`)) === 1;
    try {
      const first = newJti();
      expect(await cache.check(PEER, first, keepUntil)).toBe("fresh");
      expect(await inRedis(first)).toBe(true);
      hung.pause();
      expect(await cache.check(PEER, newJti(), keepUntil)).toBe("fresh"); // after the 200 ms timeout
      expect(cache.status().degraded).toBe(true);
      hung.resume();
      // Within retryAfterMs: not asked (nothing recorded in Redis), still degraded, local replays still caught.
      const skipped = newJti();
      expect(await cache.check(PEER, skipped, keepUntil)).toBe("fresh");
      expect(await cache.check(PEER, skipped, keepUntil)).toBe("replayed");
      expect(await inRedis(skipped)).toBe(false);
      expect(cache.status().degraded).toBe(true);
      t += 1_001;
      const asked = newJti();
      expect(await cache.check(PEER, asked, keepUntil)).toBe("fresh");
      expect(await inRedis(asked)).toBe(true);
      expect(cache.status().degraded).toBe(false);
    } finally {
      hung.resume();
      await hung.close();
    }
  });
});

describe("a call token replayed to another replica", () => {
  const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
  const PATH = TicketServiceContract.methods.getTicketStatus.path;
  let pki: TestPki;
  const replicas: { server: RpcServer; backends: StateBackends; logs: CapturedLogs; handled: number }[] = [];
  const raw: grpc.Client[] = [];

  beforeAll(async () => {
    pki = await createTestPki();
    for (let i = 0; i < 2; i++) {
      const logs = captureLogs("info");
      const backends = await createStateBackends({ service: "ticket-service", redisUrl: redis.url, env: {}, logger: logs.logger });
      const replica = { backends, logs, handled: 0, server: undefined as unknown as RpcServer };
      replica.server = await createServer({
        identity: await pki.material("ticket-service"),
        port: 0,
        logger: logs.logger,
        dedupeStore: backends.dedupeStore,
        replayCache: backends.replayCache,
        services: [
          implement(TicketServiceContract, {
            getTicketStatus: (req) => {
              replica.handled++;
              return { ticketId: req.ticketId, status: TicketStatus.SOLD };
            },
          }),
        ],
      });
      replicas.push(replica);
    }
  });

  afterAll(async () => {
    raw.forEach((c) => c.close());
    await Promise.all(replicas.map((r) => r.server.stop(1000)));
    await Promise.all(replicas.map((r) => r.backends.close()));
    pki?.cleanup();
  });

  /** A raw grpc-js call presenting payment-service's certificate and exactly this token. */
  async function call(port: number, token: string, contextToken: string): Promise<{ code: number; details: string }> {
    const payment = (await pki.material("payment-service")).current().workload;
    const creds = grpc.credentials.createSsl(
      readFileSync(pkiPaths(pki.dir).caCert),
      Buffer.from(payment.keyPem),
      Buffer.from(payment.certPem),
      { checkServerIdentity: () => undefined },
    );
    const client = new grpc.Client(`127.0.0.1:${port}`, creds, { "grpc.ssl_target_name_override": "ticket-service" });
    raw.push(client);
    const md = new grpc.Metadata();
    md.add("authorization", `Bearer ${token}`);
    md.add("tt-context", contextToken);
    return new Promise((resolve) => {
      client.makeUnaryRequest(
        PATH,
        (msg: unknown) => Buffer.from(toBinary(GetTicketStatusRequestSchema, msg as never)),
        (buf: Buffer) => fromBinary(GetTicketStatusResponseSchema, buf),
        create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "t-1" }),
        md,
        { deadline: Date.now() + 5_000 },
        (err) => resolve(err ? { code: err.code, details: err.details } : { code: 0, details: "" }),
      );
    });
  }

  it("is UNAUTHENTICATED on replica B after replica A accepted it, and B's handler never runs", async () => {
    const contextToken = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
    const payment = (await pki.material("payment-service")).current().workload;
    const token = await createCallTokenMinter({ identity: payment.spiffeId, key: payment.jwt.current }).mint({
      audience: workloadSpiffeId("ticket-service"),
      method: PATH,
      contextToken,
    });
    const [a, b] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    expect(await call(a.server.port, token, contextToken)).toEqual({ code: 0, details: "" });
    expect(a.handled).toBe(1);
    expect(await call(b.server.port, token, contextToken)).toEqual({ code: grpc.status.UNAUTHENTICATED, details: "unauthenticated" });
    expect(b.handled).toBe(0);
    const rejected = b.logs.lines.map((l) => JSON.parse(l)).find((l) => l.msg === "call rejected");
    expect(rejected?.reason).toMatch(/jti \S+ replayed/);
    // The token itself never reaches a log.
    expect([...a.logs.lines, ...b.logs.lines].join("")).not.toContain(token);
    // A fresh token for B is served: the refusal was the replay, nothing else.
    const fresh = await createCallTokenMinter({ identity: payment.spiffeId, key: payment.jwt.current }).mint({
      audience: workloadSpiffeId("ticket-service"),
      method: PATH,
      contextToken,
    });
    expect(await call(b.server.port, fresh, contextToken)).toEqual({ code: 0, details: "" });
    expect(b.handled).toBe(1);
  });
});
