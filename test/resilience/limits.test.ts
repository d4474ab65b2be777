/**
 * Circuit breaker, retry budget and bulkhead per target, over real HTTP/2 +
 * mTLS. Breaker windows and the 30 s half-open wait move on an injected clock.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { downstreamInfo } from "../../src/runtime/wire/downstream.ts";
import { startHarness, testClient, timed, TENANT, type Harness, type TestClient } from "./harness.ts";

let h: Harness;
const open: TestClient[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterEach(() => {
  open.splice(0).forEach((c) => c.close());
  h.ticket.clear();
});
afterAll(async () => {
  await h?.stop();
});

function client(caller: "payment-service" | "transfer-service", options?: Parameters<typeof testClient>[2]): TestClient {
  const c = testClient(h, caller, options);
  open.push(c);
  return c;
}

/**
 * A client for the breaker tests with retries off (TransferTicket declares an
 * idempotency key, so it would otherwise be retried): one call is one attempt,
 * so breaker counts are exact. Retries through the breaker are covered in retry.test.ts.
 */
const NO_RETRY = { resilience: { retryMaxAttempts: 1 } } as const;
const breakerClient = () => client("transfer-service", NO_RETRY);

const transfer = (c: TestClient) => timed(() => c.client.transferTicket({ tenantId: TENANT, ticketId: "t-1", toUserId: "u-2" }, h.ctx));
const fails = (n: number, code = Code.Unavailable) => Array.from({ length: n }, () => ({ fail: code }));
const breaker = (c: TestClient) => c.registry.list()[0]!;
const codeOf = (e: unknown) => (e instanceof ConnectError ? e.code : undefined);

async function openBreaker(c: TestClient): Promise<void> {
  h.ticket.script("transferTicket", ...fails(5));
  for (let i = 0; i < 5; i++) await transfer(c);
  expect(breaker(c).state).toBe("open");
}

describe("circuit breaker", () => {
  it("opens at the threshold, then fails fast with UNAVAILABLE naming the target, without the network", async () => {
    const c = breakerClient();
    h.ticket.script("transferTicket", ...fails(5));
    for (let i = 0; i < 4; i++) await transfer(c);
    expect(breaker(c)).toMatchObject({ state: "closed", windowCalls: 4, windowFailures: 4 });
    await transfer(c);
    expect(breaker(c).state).toBe("open");
    expect(c.events).toContainEqual({ type: "breaker", target: "ticket-service", method: "TransferTicket", from: "closed", to: "open" });
    expect(c.logs).toContainEqual(expect.objectContaining({ msg: "circuit breaker changed state", resilience: expect.objectContaining({ target: "ticket-service", method: "TransferTicket", to: "open" }) }));

    const r = await transfer(c);
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect((r.error as ConnectError).rawMessage).toContain("ticket-service");
    // A handler failing on this must tell its own caller not to retry.
    expect(downstreamInfo(r.error as ConnectError)).toEqual({ target: "ticket-service", noRetry: true });
    expect(h.ticket.count("transferTicket")).toBe(5);
    expect(r.ms).toBeLessThan(100);
  });

  it("failures older than the window do not open it", async () => {
    const c = breakerClient();
    h.ticket.script("transferTicket", ...fails(5));
    for (let i = 0; i < 4; i++) await transfer(c);
    c.clock.advance(11_000);
    await transfer(c);
    expect(breaker(c)).toMatchObject({ state: "closed", windowCalls: 1, windowFailures: 1 });
  });

  it("client errors never open it (and count as healthy calls)", async () => {
    const c = breakerClient();
    h.ticket.script("transferTicket", ...fails(4, Code.InvalidArgument), ...fails(4, Code.FailedPrecondition), ...fails(4, Code.NotFound));
    for (let i = 0; i < 12; i++) await transfer(c);
    expect(breaker(c)).toMatchObject({ state: "closed", windowCalls: 12, windowFailures: 0 });
  });

  it("half-open after 30 s admits exactly one probe while every other call fails fast; probe success closes", async () => {
    const c = breakerClient();
    await openBreaker(c);
    c.clock.advance(29_000);
    expect(codeOf((await transfer(c)).error)).toBe(Code.Unavailable);
    expect(h.ticket.count("transferTicket")).toBe(5);
    c.clock.advance(1_000);

    h.ticket.script("transferTicket", { delayMs: 300 });
    const probe = transfer(c);
    await new Promise((res) => setTimeout(res, 50));
    expect(breaker(c).state).toBe("half_open");
    const others = await Promise.all([transfer(c), transfer(c), transfer(c)]);
    for (const o of others) {
      expect(codeOf(o.error)).toBe(Code.Unavailable);
      expect(o.ms).toBeLessThan(100);
    }
    const p = await probe;
    expect(p.error).toBeUndefined();
    expect(h.ticket.count("transferTicket")).toBe(6);
    expect(breaker(c).state).toBe("closed");
    expect((await transfer(c)).error).toBeUndefined();
    expect(c.events.filter((e) => e.type === "breaker").map((e) => (e.type === "breaker" ? e.to : ""))).toEqual(["open", "half_open", "closed"]);
  });

  it("probe failure re-opens for another 30 s", async () => {
    const c = breakerClient();
    await openBreaker(c);
    c.clock.advance(30_000);
    h.ticket.script("transferTicket", { fail: Code.Unavailable });
    expect(codeOf((await transfer(c)).error)).toBe(Code.Unavailable);
    expect(breaker(c).state).toBe("open");
    expect(h.ticket.count("transferTicket")).toBe(6);
    await transfer(c);
    expect(h.ticket.count("transferTicket")).toBe(6);
    c.clock.advance(30_000);
    expect((await transfer(c)).error).toBeUndefined();
    expect(breaker(c).state).toBe("closed");
  });

  it("is shared by every client of the target", async () => {
    const first = breakerClient();
    const second = testClient(h, "transfer-service", { resilience: { ...NO_RETRY.resilience, registry: first.registry } });
    open.push(second);
    await openBreaker(first);
    const r = await transfer(second);
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect(h.ticket.count("transferTicket")).toBe(5);
    expect(first.registry.list()).toHaveLength(1);
  });

  it("reset through the admin interface closes it and clears the window", async () => {
    const c = breakerClient();
    await openBreaker(c);
    expect(c.registry.reset("ticket-service")).toBe(true);
    expect(c.registry.reset("no-such-service")).toBe(false);
    expect(breaker(c)).toMatchObject({ state: "closed", windowCalls: 0, windowFailures: 0 });
    expect(c.events.filter((e) => e.type === "breaker").map((e) => (e.type === "breaker" ? `${e.from}->${e.to}` : ""))).toEqual(["closed->open", "open->closed"]);
    expect((await transfer(c)).error).toBeUndefined();
  });
});

describe("retry budget", () => {
  it("holds total attempts / calls near 1.1 under a dependency that always fails", async () => {
    // Breaker out of the way (it would stop the calls first); tiny backoff to keep the test fast.
    const c = client("payment-service", { resilience: { breakerMinCalls: 1_000_000, retryInitialBackoffMs: 1, retryMaxBackoffMs: 1 } });
    const calls = 150;
    h.ticket.script("getTicketStatus", ...fails(calls * 3));
    for (let i = 0; i < calls; i++) {
      const r = await timed(() => c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, h.ctx));
      expect(codeOf(r.error)).toBe(Code.Unavailable);
    }
    const ratio = h.ticket.count("getTicketStatus") / calls;
    // 10% of calls plus a floor of 3 retries per window: 1 + 15/150 + 3/150 = 1.12.
    expect(ratio).toBeGreaterThan(1.05);
    expect(ratio).toBeLessThan(1.15);
    expect(c.events.some((e) => e.type === "budget_exhausted")).toBe(true);
  });
});

describe("bulkhead", () => {
  it("rejects the 65th concurrent call with RESOURCE_EXHAUSTED, at once", async () => {
    const c = client("payment-service");
    h.ticket.script("getTicketStatus", ...Array.from({ length: 64 }, () => ({ hang: true as const })));
    const abort = new AbortController();
    const inFlight = Array.from({ length: 64 }, () =>
      timed(() => c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { ...h.ctx, signal: abort.signal, timeoutMs: 10_000 })),
    );
    try {
      for (let i = 0; i < 300 && h.ticket.count("getTicketStatus") < 64; i++) await new Promise((res) => setTimeout(res, 10));
      expect(h.ticket.count("getTicketStatus")).toBe(64);
      const r = await timed(() => c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, h.ctx));
      expect(codeOf(r.error)).toBe(Code.ResourceExhausted);
      expect(r.ms).toBeLessThan(100);
      expect(h.ticket.count("getTicketStatus")).toBe(64);
      expect(c.events).toContainEqual({ type: "bulkhead_rejected", target: "ticket-service", method: "GetTicketStatus", inFlight: 64 });
    } finally {
      abort.abort();
      await Promise.all(inFlight);
    }
    // The rejection and the callers' cancellations are not the target's failures.
    expect(breaker(c)).toMatchObject({ state: "closed", windowFailures: 0 });
    expect((await timed(() => c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, h.ctx))).error).toBeUndefined();
  });
});
