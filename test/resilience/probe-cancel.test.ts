/**
 * A half-open probe that its caller cancels says nothing about the target's
 * health: the breaker must not close on it (cockatiel alone would count the
 * unhandled cancellation as a successful probe). It opens again, and the next
 * probe, after another half-open wait, decides. Real HTTP/2 + mTLS; the
 * breaker's 30 s wait moves on the client's injected clock.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
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

const codeOf = (e: unknown) => (e instanceof ConnectError ? e.code : undefined);
// One attempt per call, so the breaker's counts are exact.
const status = (c: TestClient, signal?: AbortSignal) =>
  timed(() => c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { ...h.ctx, ...(signal ? { signal } : {}) }));

it("a caller-cancelled half-open probe re-opens the breaker instead of closing it", async () => {
  const c = testClient(h, "payment-service", { resilience: { retryMaxAttempts: 1 } });
  open.push(c);
  h.ticket.script("getTicketStatus", ...Array.from({ length: 5 }, () => ({ fail: Code.Unavailable })));
  for (let i = 0; i < 5; i++) expect(codeOf((await status(c)).error)).toBe(Code.Unavailable);
  expect(c.registry.list()[0]!.state).toBe("open");

  c.clock.advance(30_000);
  h.ticket.script("getTicketStatus", { delayMs: 2_000 });
  const abort = new AbortController();
  const probe = status(c, abort.signal);
  await new Promise((res) => setTimeout(res, 100));
  expect(c.registry.list()[0]!.state).toBe("half_open");
  abort.abort();
  const p = await probe;
  expect(codeOf(p.error)).toBe(Code.Canceled);
  expect(c.registry.list()[0]!.state).toBe("open");

  // Still open: fails fast without the network until the next half-open wait is over.
  const before = h.ticket.count("getTicketStatus");
  expect(codeOf((await status(c)).error)).toBe(Code.Unavailable);
  expect(h.ticket.count("getTicketStatus")).toBe(before);

  // The next probe succeeds and closes it.
  c.clock.advance(30_000);
  expect((await status(c)).error).toBeUndefined();
  expect(c.registry.list()[0]!.state).toBe("closed");
  expect(c.events.filter((e) => e.type === "breaker").map((e) => (e.type === "breaker" ? e.to : ""))).toEqual([
    "open",
    "half_open",
    "open",
    "half_open",
    "closed",
  ]);
});
