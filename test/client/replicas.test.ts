/**
 * Many replicas behind one target, with real processes: three ticket-service
 * replicas (test/support/replica.ts, each its own Node process with the real
 * server and certificates from the test PKI) and one client whose
 * TICKET_RPC_ADDRESS lists them. grpc-js' round_robin spreads the calls; a
 * replica SIGKILLed mid-load costs no failed idempotent call (the attempts in
 * flight on it fail UNAVAILABLE and the framework's retry sends them to
 * another replica); restarted on its port, it takes traffic again.
 */
import { fork, type ChildProcess } from "node:child_process";
import { createServer as createNetServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { TicketServiceContract, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import type { ResilienceEvent } from "../../src/runtime/resilience/events.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { REPO_ROOT } from "../support/exec.ts";

const TENANT = "tenant-replicas";
const START_TIMEOUT_MS = 30_000;

interface Replica {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly port: number;
  readonly exited: Promise<void>;
  /** Calls this replica's handler served (asked over IPC). */
  count(): Promise<number>;
}

const children = new Set<ChildProcess>();

function startReplica(pkiDir: string, port: number): Promise<Replica> {
  const child = fork(`${REPO_ROOT}test/support/replica.ts`, [pkiDir, String(port)], {
    execArgv: ["--import", "tsx"],
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => children.delete(child));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`replica on port ${port} not ready within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
    child.once("exit", (code, signal) => reject(new Error(`replica on port ${port} exited before ready (${code ?? signal})`)));
    child.on("message", function onReady(m: { ready?: boolean; pid: number; port: number }) {
      if (!m.ready) return;
      child.off("message", onReady);
      clearTimeout(timer);
      resolve({
        child,
        pid: m.pid,
        port: m.port,
        exited,
        count: () =>
          new Promise<number>((ok, fail) => {
            const t = setTimeout(() => fail(new Error(`replica ${m.pid} did not report its count`)), 5_000);
            child.on("message", function onCount(r: { count?: number }) {
              if (r.count === undefined) return;
              child.off("message", onCount);
              clearTimeout(t);
              ok(r.count);
            });
            child.send("count");
          }),
      });
    });
  });
}

/** Which replica (pid) answered. */
async function callOnce(client: TicketServiceClient, headers: Record<string, string>, i: number): Promise<number> {
  const res = await client.getTicketStatus({ tenantId: TENANT, ticketId: `t-${i}` }, { headers });
  return Number(res.userId.slice("pid:".length));
}

describe("many replicas behind one target", () => {
  let pki: TestPki;
  let replicas: Replica[] = [];
  let client: TicketServiceClient;
  let registry: ResilienceRegistry;
  const events: ResilienceEvent[] = [];
  let headers: Record<string, string>;

  beforeAll(async () => {
    pki = await createTestPki();
    replicas = await Promise.all([0, 1, 2].map(() => startReplica(pki.dir, 0)));
    headers = { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "user-1", ttlSeconds: 300 }) };
    registry = new ResilienceRegistry({ logger: silentLogger(), observe: (e) => events.push(e) });
    // The address form a deployment would use: a static list in the environment variable.
    const env = { TICKET_RPC_ADDRESS: replicas.map((r) => `127.0.0.1:${r.port}`).join(",") };
    client = createServiceClient(TicketServiceContract, { identity: await pki.material("payment-service"), env, resilience: { registry } });
    // round_robin only picks connected replicas: let all three connect before measuring.
    const seen = new Set<number>();
    for (let i = 0; i < 300 && seen.size < 3; i++) seen.add(await callOnce(client, headers, i));
    expect(seen.size).toBe(3);
  }, 90_000);

  afterAll(async () => {
    if (client) closeClient(client);
    for (const child of children) child.kill("SIGKILL");
    await Promise.all(replicas.map((r) => r.exited));
    pki?.cleanup();
  });

  it("spreads 2,000 calls from one client within 20% of even", async () => {
    const before = await Promise.all(replicas.map((r) => r.count()));
    const answeredBy = new Map<number, number>();
    let next = 0;
    const CALLS = 2_000;
    // 16 calls in flight at a time, as a busy caller would have.
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < CALLS) {
          const pid = await callOnce(client, headers, next++);
          answeredBy.set(pid, (answeredBy.get(pid) ?? 0) + 1);
        }
      }),
    );
    const served = (await Promise.all(replicas.map((r) => r.count()))).map((n, i) => n - before[i]!);
    const even = CALLS / 3;
    for (const [i, r] of replicas.entries()) {
      // What the client saw and what each server counted agree: no call went elsewhere or twice.
      expect(answeredBy.get(r.pid)).toBe(served[i]);
      expect(served[i]).toBeGreaterThanOrEqual(even * 0.8);
      expect(served[i]).toBeLessThanOrEqual(even * 1.2);
    }
    expect(served.reduce((a, b) => a + b, 0)).toBe(CALLS);
  }, 60_000);

  it("loses no idempotent call when a replica is SIGKILLed mid-load, and the restarted replica takes traffic again", async () => {
    const victim = replicas[1]!;
    const failures: unknown[] = [];
    const answers: { pid: number; startedAt: number }[] = [];
    let stop = false;
    let i = 0;
    const load = Promise.all(
      Array.from({ length: 12 }, async () => {
        // Bounded: the test stops the load explicitly; the cap is a safety net.
        while (!stop && i < 200_000) {
          const startedAt = performance.now();
          try {
            answers.push({ pid: await callOnce(client, headers, i++), startedAt });
          } catch (e) {
            failures.push(e);
          }
        }
      }),
    );
    const waitForAnswers = async (n: number, timeoutMs: number) => {
      const target = answers.length + n;
      const end = performance.now() + timeoutMs;
      while (answers.length < target && failures.length === 0 && performance.now() < end) await new Promise((r) => setTimeout(r, 10));
    };
    try {
      await waitForAnswers(300, 20_000);
      const retriesBefore = events.filter((e) => e.type === "retry").length;
      victim.child.kill("SIGKILL");
      await victim.exited;
      const killedAt = performance.now();
      await waitForAnswers(600, 20_000);
      const retriesAfterKill = events.filter((e) => e.type === "retry").length - retriesBefore;

      // Restart on the same port: the channel reconnects to it (bounded reconnect backoff, 10 s cap).
      const reborn = await startReplica(pki.dir, victim.port);
      replicas[1] = reborn;
      const restartedAt = performance.now();
      const rejoinDeadline = restartedAt + 25_000;
      while (!answers.some((a) => a.pid === reborn.pid) && failures.length === 0 && performance.now() < rejoinDeadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const rejoinMs = performance.now() - restartedAt;
      const firstBack = answers.findIndex((a) => a.pid === reborn.pid);
      await waitForAnswers(900, 20_000);
      stop = true;
      await load;

      expect(failures.map((e) => (e instanceof ConnectError ? `${e.code} ${e.rawMessage}` : String(e)))).toEqual([]);
      // The attempts in flight on the killed replica failed UNAVAILABLE and were retried on another one.
      expect(retriesAfterKill).toBeGreaterThan(0);
      expect(events.filter((e) => e.type === "retry").every((e) => e.type === "retry" && e.code === "Unavailable")).toBe(true);
      // Calls started after the kill was seen never reached the dead process.
      expect(answers.filter((a) => a.startedAt > killedAt && a.pid === victim.pid)).toEqual([]);
      expect(firstBack, `restarted replica got no call within ${Math.round(rejoinMs)} ms`).toBeGreaterThanOrEqual(0);
      // Once back, it takes its share again (round_robin over three): well over a sixth of the later calls.
      const after = answers.slice(firstBack);
      const share = after.filter((a) => a.pid === reborn.pid).length / after.length;
      expect(share).toBeGreaterThan(1 / 6);
      // One breaker for the target (not per replica): it saw a few failed attempts and stayed closed.
      expect(registry.list()).toEqual([expect.objectContaining({ target: "ticket-service", state: "closed" })]);
    } finally {
      stop = true;
      await load;
    }
  }, 90_000);

  it("leaves an address that refuses connections out of rotation: no call fails, the live replicas answer", async () => {
    // A port nothing listens on: bound, then closed.
    const dead = await new Promise<number>((resolve) => {
      const probe = createNetServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const live = [replicas[0]!, replicas[2]!];
    const seen: ResilienceEvent[] = [];
    const partial = createServiceClient(TicketServiceContract, {
      identity: await pki.material("payment-service"),
      env: { TICKET_RPC_ADDRESS: `ipv4:127.0.0.1:${live[0]!.port},127.0.0.1:${dead},127.0.0.1:${live[1]!.port}` },
      resilience: { registry: new ResilienceRegistry({ logger: silentLogger(), observe: (e) => seen.push(e) }) },
    });
    try {
      const answeredBy: number[] = [];
      for (let i = 0; i < 200; i++) answeredBy.push(await callOnce(partial, headers, i));
      expect(new Set(answeredBy)).toEqual(new Set(live.map((r) => r.pid)));
      // Both live replicas share the calls (round robin over the connected ones).
      for (const r of live) expect(answeredBy.filter((pid) => pid === r.pid).length).toBeGreaterThan(50);
      // Not rescued by retries: no attempt was ever sent to the dead address.
      expect(seen.filter((e) => e.type === "retry")).toEqual([]);
    } finally {
      closeClient(partial);
    }
  });

  it("accepts the dns:/// form (a headless service name) for the same replicas", async () => {
    const viaDns = createServiceClient(TicketServiceContract, {
      identity: await pki.material("payment-service"),
      env: { TICKET_RPC_ADDRESS: `dns:///localhost:${replicas[0]!.port}` },
      resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }) },
    });
    try {
      expect(await callOnce(viaDns, headers, 0)).toBe(replicas[0]!.pid);
    } finally {
      closeClient(viaDns);
    }
  });
});
