/**
 * A caller may hand the same ContextValues to many calls; the deadlines the
 * framework keeps per call must not leak from one call into another.
 * Real HTTP/2 + mTLS: the scripted server records the grpc-timeout each
 * attempt arrived with.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { startHarness, testClient, TENANT, type Harness, type TestClient } from "./harness.ts";

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

it("concurrent calls sharing one ContextValues each keep their own deadline", async () => {
  const c = testClient(h, "payment-service", { resilience: { retryMaxAttempts: 1 } });
  open.push(c);
  h.ticket.script("getTicketStatus", { hang: true }, { hang: true });
  const shared = createContextValues();
  const call = (timeoutMs: number) =>
    c.client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { ...h.ctx, timeoutMs, contextValues: shared }).then(
      () => undefined,
      (e: unknown) => e,
    );
  const [short, long] = await Promise.all([call(300), call(1_200)]);
  expect((short as ConnectError).code).toBe(Code.DeadlineExceeded);
  expect((long as ConnectError).code).toBe(Code.DeadlineExceeded);
  const sent = h.ticket.attempts.map((a) => a.timeoutMs!).sort((a, b) => a - b);
  expect(sent).toHaveLength(2);
  expect(sent[0]).toBeLessThanOrEqual(300);
  expect(sent[1]).toBeGreaterThan(600);
  expect(sent[1]).toBeLessThanOrEqual(1_200);
});
