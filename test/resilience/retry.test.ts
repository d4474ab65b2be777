/**
 * Retry, deadline and cancellation scenarios over real HTTP/2 + mTLS on
 * 127.0.0.1: each test scripts the server, calls through a generated client,
 * and asserts what the server saw (attempts, keys, cancellations) and when.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { downstreamInfo } from "../../src/runtime/wire/downstream.ts";
import { startHarness, testClient, timed, TENANT, UndeclaredTransferContract, type Harness, type TestClient } from "./harness.ts";
import { createTestPki } from "../support/pki.ts";
import { createFaultProxy } from "../support/fault-proxy.ts";
import { createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";

let h: Harness;
const open: TestClient[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterEach(() => {
  open.splice(0).forEach((c) => c.close());
  h.ticket.clear();
  h.proxy.mode = "pass";
  h.proxy.delayMs = 0;
});
afterAll(async () => {
  await h?.stop();
});

function client(caller: "payment-service" | "transfer-service" = "payment-service", options?: Parameters<typeof testClient>[2]): TestClient {
  const c = testClient(h, caller, options);
  open.push(c);
  return c;
}

const status = (c: TestClient, opts: { timeoutMs?: number; signal?: AbortSignal } = {}) =>
  c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { ...h.ctx, ...opts });

const transfer = (c: TestClient) => c.client.transferTicket({ tenantId: TENANT, ticketId: "t-1", toUserId: "u-2" }, h.ctx);

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function codeOf(e: unknown): Code | undefined {
  return e instanceof ConnectError ? e.code : undefined;
}

describe("retry", () => {
  it("UNAVAILABLE twice then OK: 3 attempts, success", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable }, { fail: Code.Unavailable });
    const r = await timed(() => status(c, { timeoutMs: 1500 }));
    expect(r.error).toBeUndefined();
    expect(r.value?.ticketId).toBe("t-1");
    expect(h.ticket.count("getTicketStatus")).toBe(3);
    // The timeout on the wire is the time left, rewritten for every attempt.
    const sent = h.ticket.attempts.map((a) => a.timeoutMs!);
    expect(sent[0]).toBeLessThanOrEqual(1500);
    expect(sent[0]).toBeGreaterThan(1000);
    expect(sent[1]).toBeLessThan(sent[0]! - 40);
    expect(sent[2]).toBeLessThan(sent[1]! - 90);
    // Backoff with equal jitter: at least 50 ms then 100 ms between attempts.
    const [a, b, d] = h.ticket.attempts;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(45);
    expect(d!.at - b!.at).toBeGreaterThanOrEqual(95);
    expect(r.ms).toBeLessThan(2000);
    expect(c.events.filter((e) => e.type === "retry").map((e) => (e.type === "retry" ? e.attempt : 0))).toEqual([2, 3]);
    expect(c.logs.filter((l) => l.msg === "retrying call")).toHaveLength(2);
    // Each retry says which attempt it is, for the server's call log.
    expect(h.ticket.attempts.map((a) => a.attemptHeader)).toEqual([null, "2", "3"]);
  });

  it("UNAVAILABLE three times: 3 attempts, the last error returned as is", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable }, { fail: Code.Unavailable }, { fail: Code.Unavailable, pushbackMs: 5 });
    const r = await timed(() => status(c));
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect((r.error as ConnectError).rawMessage).toBe("scripted Unavailable");
    expect((r.error as ConnectError).metadata.get("grpc-retry-pushback-ms")).toBe("5");
    expect(downstreamInfo(r.error as ConnectError)?.target).toBe("ticket-service");
    expect(h.ticket.count("getTicketStatus")).toBe(3);
  });

  it.each([
    Code.InvalidArgument,
    Code.NotFound,
    Code.AlreadyExists,
    Code.PermissionDenied,
    Code.Unauthenticated,
    Code.FailedPrecondition,
    Code.OutOfRange,
    Code.Unimplemented,
    Code.Internal,
    Code.ResourceExhausted,
  ])("non-retryable code %s: 1 attempt", async (code) => {
    const c = client();
    h.ticket.script("getTicketStatus", { fail: code });
    const r = await timed(() => status(c));
    expect(codeOf(r.error)).toBe(code);
    expect(h.ticket.count("getTicketStatus")).toBe(1);
    expect(c.events.filter((e) => e.type === "retry")).toHaveLength(0);
  });

  it("TLS failure (server not in our trust bundle): UNAUTHENTICATED, never retried", async () => {
    const strangers = await createTestPki();
    try {
      const events: unknown[] = [];
      const registry = new ResilienceRegistry({ logger: silentLogger(), observe: (e) => events.push(e) });
      const c = createTicketServiceClient({ identity: await strangers.material("payment-service"), address: h.proxy.address, env: {}, resilience: { registry } });
      try {
        const r = await timed(() => c.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, h.ctx));
        expect(codeOf(r.error)).toBe(Code.Unauthenticated);
        expect(events).toEqual([]);
        expect(h.ticket.count("getTicketStatus")).toBe(0);
      } finally {
        closeClient(c);
      }
    } finally {
      strangers.cleanup();
    }
  });

  // Codegen refuses a mutating method that declares neither IDEMPOTENT nor a key (TransferTicket now declares a key),
  // but a client built on an older or hand-written contract still meets one: UndeclaredTransferContract.
  it("non-idempotent method without key + UNAVAILABLE: 1 attempt", async () => {
    const c = client("transfer-service", { contract: UndeclaredTransferContract });
    h.ticket.script("transferTicket", { fail: Code.Unavailable });
    const r = await timed(() => transfer(c));
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect((r.error as ConnectError).rawMessage).toBe("scripted Unavailable");
    expect(h.ticket.count("transferTicket")).toBe(1);
    // The client still puts a key on a mutating call, but only a key the contract declares makes a retry safe.
    expect(h.ticket.attempts[0]!.idempotencyKey).toMatch(UUID);
    expect(c.events.filter((e) => e.type === "retry")).toHaveLength(0);
  });

  it("the same method declaring an idempotency key (the generated TransferTicket) + UNAVAILABLE: retried with the client's own key", async () => {
    const c = client("transfer-service");
    h.ticket.script("transferTicket", { fail: Code.Unavailable });
    const res = await transfer(c);
    expect(res.ticket?.id).toBe("t-1");
    const keys = h.ticket.attempts.map((a) => a.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(UUID);
    expect(keys[1]).toBe(keys[0]);
  });

  it("IDEMPOTENT method + UNAVAILABLE then OK: retried", async () => {
    const c = client();
    h.ticket.script("cancelTicketsBatch", { fail: Code.Unavailable });
    const res = await c.client.cancelTicketsBatch({ tenantId: TENANT, ticketIds: ["t-1"] }, h.ctx);
    expect(res.results).toHaveLength(1);
    expect(h.ticket.count("cancelTicketsBatch")).toBe(2);
  });

  it("connection refused on a non-idempotent method: at most one retry, never reached the server", async () => {
    const refusing = await createFaultProxy(h.ticket.port);
    await refusing.refuse();
    try {
      // A method declaring neither IDEMPOTENT nor a key (see UndeclaredTransferContract): only "never sent" makes it retryable.
      const c = client("transfer-service", { address: refusing.address, contract: UndeclaredTransferContract });
      const r = await timed(() => transfer(c));
      expect(codeOf(r.error)).toBe(Code.Unavailable);
      expect((r.error as ConnectError).rawMessage).toMatch(/ECONNREFUSED/);
      expect(c.events.filter((e) => e.type === "retry")).toHaveLength(1);
      // Both attempts reached the breaker (refused connections are counted), the third was never made.
      expect(c.registry.list()[0]).toMatchObject({ windowCalls: 2, windowFailures: 2 });
      expect(h.ticket.count("transferTicket")).toBe(0);
      expect(refusing.accepted).toBe(0);
    } finally {
      await refusing.close();
    }
  });

  it("mutating call with a key: the same key on every attempt, one effect on the server", async () => {
    const c = client();
    // The first attempt takes effect but its answer is lost.
    h.ticket.script("handlePaymentSucceeded", { fail: Code.Unavailable, afterEffect: true });
    const res = await c.client.handlePaymentSucceeded({ tenantId: TENANT, orderId: "o-1", paymentId: "p-1" }, h.ctx);
    const keys = h.ticket.attempts.map((a) => a.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect([...h.ticket.effects.values()]).toEqual([1]);
    expect(res.duplicate).toBe(true);
  });

  it("a caller's own idempotency key (e.g. from the payment outbox) is sent unchanged on every attempt", async () => {
    const c = client();
    h.ticket.script("handlePaymentSucceeded", { fail: Code.Unavailable });
    await c.client.handlePaymentSucceeded(
      { tenantId: TENANT, orderId: "o-2", paymentId: "p-2" },
      { headers: { ...h.ctx.headers, "idempotency-key": "payment-o-2-p-2" } },
    );
    expect(h.ticket.attempts.map((a) => a.idempotencyKey)).toEqual(["payment-o-2-p-2", "payment-o-2-p-2"]);
  });

  it("read methods carry no idempotency key", async () => {
    const c = client();
    await status(c);
    expect(h.ticket.attempts[0]!.idempotencyKey).toBeNull();
  });

  it("connection reset mid-call: a safe method is retried on a new connection", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { during: () => h.proxy.resetAll() });
    const r = await timed(() => status(c));
    expect(r.error).toBeUndefined();
    expect(h.ticket.count("getTicketStatus")).toBe(2);
    expect(h.proxy.accepted).toBeGreaterThanOrEqual(2);
  });

  it("RESOURCE_EXHAUSTED with RetryInfo 300 ms: next attempt not before 300 ms", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { fail: Code.ResourceExhausted, retryInfoMs: 300 });
    const r = await timed(() => status(c));
    expect(r.error).toBeUndefined();
    const [a, b] = h.ticket.attempts;
    expect(h.ticket.attempts).toHaveLength(2);
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(300);
    expect(b!.at - a!.at).toBeLessThan(1500);
  });

  it("grpc-retry-pushback-ms is honoured as the delay", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable, pushbackMs: 250 });
    await status(c);
    const [a, b] = h.ticket.attempts;
    expect(b!.at - a!.at).toBeGreaterThanOrEqual(250);
  });

  it("negative pushback: no retry", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable, pushbackMs: -1 });
    const r = await timed(() => status(c));
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect(h.ticket.count("getTicketStatus")).toBe(1);
  });

  it("the environment overrides the attempt count (TT_RPC_TICKET_SERVICE_RETRY_MAX_ATTEMPTS)", async () => {
    const c = client("payment-service", { env: { TT_RPC_TICKET_SERVICE_RETRY_MAX_ATTEMPTS: "2" } });
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable }, { fail: Code.Unavailable }, { fail: Code.Unavailable });
    const r = await timed(() => status(c));
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect(h.ticket.count("getTicketStatus")).toBe(2);
  });
});

describe("deadlines and cancellation", () => {
  it("a slow connection (proxy delay) still answers within the deadline", async () => {
    h.proxy.delayMs = 300;
    const c = client();
    const r = await timed(() => status(c, { timeoutMs: 3000 }));
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeGreaterThanOrEqual(290);
    expect(h.ticket.count("getTicketStatus")).toBe(1);
  });

  it("a silent peer (proxy drops the connection): each attempt cut at its cap, DEADLINE_EXCEEDED, counted by the breaker", async () => {
    h.proxy.mode = "drop";
    const c = client("payment-service", { resilience: { attemptTimeoutMs: 300 } });
    const r = await timed(() => status(c, { timeoutMs: 800 }));
    expect(codeOf(r.error)).toBe(Code.DeadlineExceeded);
    expect(r.ms).toBeGreaterThanOrEqual(550);
    expect(r.ms).toBeLessThan(1300);
    expect(h.ticket.count("getTicketStatus")).toBe(0);
    expect(c.events.filter((e) => e.type === "retry").length).toBeGreaterThanOrEqual(1);
    expect(c.registry.list()[0]!.windowFailures).toBeGreaterThanOrEqual(2);
  });

  it("deadline 1 s with a hung server: DEADLINE_EXCEEDED at ~1 s, the server sees the cancellation", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { hang: true });
    const r = await timed(() => status(c, { timeoutMs: 1000 }));
    expect(codeOf(r.error)).toBe(Code.DeadlineExceeded);
    expect(r.ms).toBeGreaterThanOrEqual(950);
    expect(r.ms).toBeLessThan(1600);
    expect(h.ticket.count("getTicketStatus")).toBe(1);
    await until(() => h.ticket.attempts[0]!.cancelledAt !== undefined);
    const served = h.ticket.attempts[0]!;
    expect(served.cancelledAt! - served.at).toBeLessThan(1300);
  });

  it("with no caller timeout the target default deadline applies (set to 600 ms here), every attempt capped inside it", async () => {
    const c = client("payment-service", { resilience: { timeoutMs: 600, attemptTimeoutMs: 400 } });
    h.ticket.script("getTicketStatus", { hang: true }, { hang: true });
    const r = await timed(() => status(c));
    expect(codeOf(r.error)).toBe(Code.DeadlineExceeded);
    expect(r.ms).toBeGreaterThanOrEqual(550);
    expect(r.ms).toBeLessThan(1200);
  });

  it("per-attempt cap inside the deadline: a hung attempt is cut at the cap and retried", async () => {
    const c = client("payment-service", { resilience: { attemptTimeoutMs: 300 } });
    h.ticket.script("getTicketStatus", { hang: true });
    const start = Date.now();
    const r = await timed(() => status(c, { timeoutMs: 3000 }));
    expect(r.error).toBeUndefined();
    expect(h.ticket.count("getTicketStatus")).toBe(2);
    const [first, second] = h.ticket.attempts;
    // Each attempt is sent with the cap, not the call's 3 s.
    expect(first!.timeoutMs).toBeLessThanOrEqual(300);
    expect(second!.timeoutMs).toBeLessThanOrEqual(300);
    await until(() => first!.cancelledAt !== undefined);
    expect(first!.cancelledAt! - start).toBeGreaterThanOrEqual(280);
    expect(first!.cancelledAt! - start).toBeLessThan(900);
    expect(r.ms).toBeLessThan(1500);
  });

  it("backoff longer than the time left: no retry, immediate return", async () => {
    const c = client("payment-service", { resilience: { retryInitialBackoffMs: 2000, retryMaxBackoffMs: 2000 } });
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable });
    const r = await timed(() => status(c, { timeoutMs: 800 }));
    expect(codeOf(r.error)).toBe(Code.Unavailable);
    expect(r.ms).toBeLessThan(500);
    expect(h.ticket.count("getTicketStatus")).toBe(1);
  });

  it("caller aborts during backoff: returns at once, no further attempt", async () => {
    const c = client("payment-service", { resilience: { retryInitialBackoffMs: 1000, retryMaxBackoffMs: 1000 } });
    h.ticket.script("getTicketStatus", { fail: Code.Unavailable }, { fail: Code.Unavailable });
    const abort = new AbortController();
    let retryAt = 0;
    c.events.push = function (e) {
      // Abort 50 ms into the (500..1000 ms) backoff.
      if (e.type === "retry") (retryAt = performance.now()), setTimeout(() => abort.abort(), 50);
      return Array.prototype.push.call(this, e);
    };
    const r = await timed(() => status(c, { signal: abort.signal }));
    expect(codeOf(r.error)).toBe(Code.Canceled);
    expect(retryAt).toBeGreaterThan(0);
    expect(performance.now() - retryAt).toBeLessThan(400);
    // Past where the backoff would have ended: still one attempt.
    await new Promise((res) => setTimeout(res, 1100));
    expect(h.ticket.count("getTicketStatus")).toBe(1);
  });

  it("caller aborts mid-flight: CANCELED, the server sees it, breaker unchanged", async () => {
    const c = client();
    h.ticket.script("getTicketStatus", { hang: true });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    const r = await timed(() => status(c, { signal: abort.signal, timeoutMs: 5000 }));
    expect(codeOf(r.error)).toBe(Code.Canceled);
    expect(r.ms).toBeLessThan(1000);
    await until(() => h.ticket.attempts[0]?.cancelledAt !== undefined);
    expect(c.registry.list()).toEqual([{ target: "ticket-service", state: "closed", windowCalls: 0, windowFailures: 0 }]);
  });
});

/** Polls `cond` every 10 ms for up to 2 s. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((res) => setTimeout(res, 10));
  expect(cond()).toBe(true);
}
