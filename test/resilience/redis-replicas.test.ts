/**
 * Two replicas of ticket-service (two createServer, same identity, each with
 * its own Redis-backed state from createStateBackends and its own connection)
 * against a real redis-server, called over real HTTP/2 + mTLS by the
 * generated clients:
 * - a keyed call applied on replica A and retried (same key) on replica B is
 *   applied once, and B answers A's stored response;
 * - concurrent duplicates on both replicas run the handler once;
 * - Redis killed: keyed calls answer UNAVAILABLE without running the handler,
 *   unkeyed reads keep working (on both replicas), the outage is logged once
 *   per burst and shows in status();
 * - Redis restarted on the same port (append-only file, as in production):
 *   keyed calls work again, a key completed before the outage still answers
 *   its stored response, and nothing is applied twice.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTicketServiceClient, TicketServiceContract, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { createStateBackends, type StateBackends } from "../../src/runtime/server/state-backends.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs, type CapturedLogs } from "../support/log-capture.ts";
import { startRedis, type TestRedis } from "../support/redis.ts";

const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";

let redis: TestRedis;
let pki: TestPki;
let contextToken: string;
const replicas: { server: RpcServer; backends: StateBackends; logs: CapturedLogs }[] = [];
const clients: object[] = [];
/** scanners[i] / readers[i] call replica i. */
const scanners: TicketServiceClient[] = [];
const readers: TicketServiceClient[] = [];

/** Handler runs per ticket id, over both replicas (the replicas' shared "database"). */
const applied = new Map<string, number>();
let gate: Promise<void> | undefined;

beforeAll(async () => {
  redis = await startRedis({ persistent: true });
  pki = await createTestPki();
  contextToken = await pki.contextToken({ tenantId: TENANT, userId: USER });
  for (let i = 0; i < 2; i++) {
    const logs = captureLogs("info");
    const backends = await createStateBackends({ service: "ticket-service", redisUrl: redis.url, env: {}, logger: logs.logger });
    const server = await createServer({
      identity: await pki.material("ticket-service"),
      port: 0,
      logger: logs.logger,
      dedupeStore: backends.dedupeStore,
      replayCache: backends.replayCache,
      services: [
        implement(TicketServiceContract, {
          async recordScan(req) {
            const count = (applied.get(req.ticketId) ?? 0) + 1;
            applied.set(req.ticketId, count);
            if (gate) await gate;
            return { ticketId: req.ticketId, scanCount: count, status: TicketStatus.USED };
          },
          getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD }),
        }),
      ],
    });
    replicas.push({ server, backends, logs });
    const address = `127.0.0.1:${server.port}`;
    // Own registries: the outage below must not open a breaker shared with other tests or clients.
    const resilience = { registry: new ResilienceRegistry({ logger: silentLogger() }), breakerMinCalls: 1_000_000 };
    scanners.push(track(createTicketServiceClient({ identity: await pki.material("scanning-service"), address, resilience })));
    readers.push(track(createTicketServiceClient({ identity: await pki.material("payment-service"), address, resilience })));
  }
});

afterAll(async () => {
  clients.forEach(closeClient);
  await Promise.all(replicas.map((r) => r.server.stop(1000)));
  await Promise.all(replicas.map((r) => r.backends.close()));
  pki?.cleanup();
  await redis?.close();
});

function track<T extends object>(c: T): T {
  clients.push(c);
  return c;
}

const headers = (key: string) => ({ headers: { "tt-context": contextToken, "idempotency-key": key }, timeoutMs: 5_000 });
const scan = (ticketId: string) => ({ tenantId: TENANT, ticketId, deviceId: "gate-1", scanType: "entry" });
const read = (i: number) => readers[i]!.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": contextToken }, timeoutMs: 5_000 });

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

/** Bounded wait for a condition the system reaches on its own (reconnection). */
async function eventually(what: string, ok: () => boolean, timeoutMs = 15_000): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > giveUp) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("two replicas sharing Redis", () => {
  it("a keyed call applied on replica A and retried on replica B applies once; B answers A's response", async () => {
    const first = await scanners[0]!.recordScan(scan("t-cross"), headers("cross-0001"));
    const retried = await scanners[1]!.recordScan(scan("t-cross"), headers("cross-0001"));
    expect(first.scanCount).toBe(1);
    expect(retried).toEqual(first);
    expect(applied.get("t-cross")).toBe(1);
    // Same key, different request, other replica: the stored state conflicts.
    expect(await codeOf(scanners[1]!.recordScan({ ...scan("t-cross"), deviceId: "gate-9" }, headers("cross-0001")))).toBe(Code.FailedPrecondition);
    expect(applied.get("t-cross")).toBe(1);
  });

  it("concurrent duplicates on both replicas run the handler once", async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    try {
      const calls = [0, 1, 0, 1].map((i) => scanners[i]!.recordScan(scan("t-race"), headers("race-0001")));
      await eventually("the first call reached the handler", () => applied.get("t-race") === 1);
      open();
      const results = await Promise.all(calls);
      expect(results.map((r) => r.scanCount)).toEqual([1, 1, 1, 1]);
      expect(applied.get("t-race")).toBe(1);
    } finally {
      gate = undefined;
      open();
    }
  });

  it("Redis down: keyed calls UNAVAILABLE and not applied, reads keep working; back up: nothing applied twice", async () => {
    await scanners[0]!.recordScan(scan("t-before"), headers("before-0001"));
    expect(applied.get("t-before")).toBe(1);
    const linesBefore = replicas.map((r) => r.logs.lines.length);

    await redis.kill();
    for (const i of [0, 1]) {
      expect(await codeOf(scanners[i]!.recordScan(scan("t-during"), headers("during-0001")))).toBe(Code.Unavailable);
      expect(await codeOf(scanners[i]!.recordScan(scan("t-before"), headers("before-0001")))).toBe(Code.Unavailable);
    }
    expect(applied.get("t-during")).toBeUndefined();
    expect(applied.get("t-before")).toBe(1);
    // Unkeyed reads: served on both replicas (replay checks fall back to each replica's own cache).
    for (const i of [0, 1, 0, 1]) expect((await read(i)).status).toBe(TicketStatus.SOLD);
    for (const r of replicas) {
      expect(r.backends.status()).toMatchObject({ backend: "redis", reachable: false, replay: { degraded: true } });
    }
    // Said in the log, once per burst: several failed keyed calls (each retried by the client), one line per replica.
    for (const [i, r] of replicas.entries()) {
      const outage = r.logs.lines.slice(linesBefore[i]).filter((l) => l.includes("idempotency store unavailable"));
      expect(outage).toHaveLength(1);
      expect(JSON.parse(outage[0]!)).toMatchObject({ level: 40, method: TicketServiceContract.methods.recordScan.path });
      // Keys may be built from business ids: never logged.
      expect(r.logs.lines.join("")).not.toContain("during-0001");
    }

    await redis.start();
    await eventually("both replicas reconnected", () => replicas.every((r) => r.backends.status().reachable));
    // Completed before the outage: still answered from the store, on either replica.
    expect((await scanners[1]!.recordScan(scan("t-before"), headers("before-0001"))).scanCount).toBe(1);
    expect(applied.get("t-before")).toBe(1);
    // Refused during the outage: applies now, once, whichever replica the retries reach.
    expect((await scanners[1]!.recordScan(scan("t-during"), headers("during-0001"))).scanCount).toBe(1);
    expect((await scanners[0]!.recordScan(scan("t-during"), headers("during-0001"))).scanCount).toBe(1);
    expect(applied.get("t-during")).toBe(1);
    // The replay cache is shared again once its pause after the last failure (1 s) is over.
    const giveUp = Date.now() + 15_000;
    while (replicas[0]!.backends.status().replay?.degraded && Date.now() < giveUp) await read(0);
    expect(replicas[0]!.backends.status().replay).toMatchObject({ degraded: false });
  });
});
