/**
 * Over a real mTLS server: a peer that uses up its replay-cache quota gets
 * RESOURCE_EXHAUSTED (generic message, reason logged), never UNAUTHENTICATED,
 * and another peer calling the same server at the same time is unaffected.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { createLogger } from "../../src/runtime/observability/logger.ts";
import { createReplayCache } from "../../src/runtime/auth/replay-cache.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-quota";
const logLines: string[] = [];
let pki: TestPki;
let server: RpcServer;
let payment: ReturnType<typeof createTicketServiceClient>;
let ops: ReturnType<typeof createTicketServiceClient>;
let ctx: string;

beforeAll(async () => {
  pki = await createTestPki();
  ctx = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: createLogger({ destination: { write: (s: string) => void logLines.push(s) } }),
    // A tiny quota, so a handful of real calls exhausts it: 2 jtis per peer per 5 s generation.
    replayCache: createReplayCache({ maxPerGeneration: 2 }),
    services: [implement(TicketServiceContract, { getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD }) })],
  });
  const address = `127.0.0.1:${server.port}`;
  payment = createTicketServiceClient({ identity: await pki.material("payment-service"), address });
  ops = createTicketServiceClient({ identity: await pki.material("ops"), address });
});

afterAll(async () => {
  if (payment) closeClient(payment);
  if (ops) closeClient(ops);
  await server?.stop(1000);
  pki?.cleanup();
});

const call = (client: typeof payment) =>
  client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctx }, timeoutMs: 5000 }).then(
    () => "ok" as const,
    (err: unknown) => err as ConnectError,
  );

describe("replay-cache quota over a real server", () => {
  it("refuses only the peer over its quota, with RESOURCE_EXHAUSTED", async () => {
    const outcomes: Array<"ok" | ConnectError> = [];
    // Bounded: within one 5 s generation the third call is refused; at most one generation boundary can fall in between.
    for (let i = 0; i < 10 && !outcomes.some((o) => o !== "ok"); i++) outcomes.push(await call(payment));
    const refusal = outcomes.at(-1);
    expect(refusal).toBeInstanceOf(ConnectError);
    expect((refusal as ConnectError).code).toBe(8); // RESOURCE_EXHAUSTED
    expect((refusal as ConnectError).rawMessage).toBe("resource exhausted");
    expect(outcomes.filter((o) => o === "ok").length).toBeGreaterThanOrEqual(2);
    expect(outcomes.filter((o) => o === "ok").length).toBeLessThanOrEqual(4);

    // Another peer, same server, same moment: served.
    expect(await call(ops)).toBe("ok");

    const rejected = logLines.map((l) => JSON.parse(l)).find((l) => l.kind === "resource_exhausted");
    expect(rejected).toMatchObject({ msg: "call rejected", reason: expect.stringContaining("payment-service") });
    // The line carries the caller's request id, so the caller's side can find it.
    expect(rejected.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});
