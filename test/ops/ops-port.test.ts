/**
 * The ops port as kubelet and Prometheus meet it: plain HTTP on 127.0.0.1 by
 * default, exactly GET /metrics, /healthz and /readyz, 404 for anything else
 * (405 for another method on those three). /readyz is 200 while the server
 * is up, 503 when an extra check fails, throws or hangs past its timeout,
 * and 503 from the moment drain starts (a call held in flight while stop()
 * runs); a dead downstream never makes it unready; stop() closes the port.
 */
import { networkInterfaces } from "node:os";
import { connect, createServer as createNetServer } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { createVenueServiceClient } from "../../src/contracts/gen/tickettoken/venue/v1/venue_service_rpc.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createMetrics } from "../../src/runtime/telemetry/metrics.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { startOpsServer } from "../../src/runtime/server/ops-server.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { httpRequest } from "../support/ops-http.ts";

const TENANT = "tenant-ops";
let pki: TestPki;
let server: RpcServer;
let store: "up" | "down" | "throws" | "hangs" = "up";

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    metrics: createMetrics(),
    services: [implement(TicketServiceContract, { getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }) })],
    ops: {
      port: 0,
      readinessTimeoutMs: 200,
      readiness: [
        {
          name: "store",
          check(signal) {
            if (store === "throws") throw new Error("store at 10.0.0.5:6379 refused password=hunter2");
            if (store === "hangs") return new Promise((resolve) => signal.addEventListener("abort", resolve));
            return store === "up";
          },
        },
      ],
    },
  });
});

afterAll(async () => {
  await server?.stop(500);
  pki?.cleanup();
});

function refused(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host, timeout: 2000 });
    socket.once("connect", () => (socket.destroy(), resolve(false)));
    socket.once("timeout", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(true));
  });
}

describe("the ops port", () => {
  it("binds 127.0.0.1 by default", async () => {
    const ops = await startOpsServer({ port: 0, registry: createMetrics().registry, logger: silentLogger() });
    try {
      expect(ops.host).toBe("127.0.0.1");
    } finally {
      await ops.close();
    }
    // The server's own ops port is not reachable on the machine's other addresses.
    const others = Object.values(networkInterfaces()).flat().filter((a) => a !== undefined && a.family === "IPv4" && !a.internal);
    for (const a of others) expect(await refused(server.opsPort!, a!.address)).toBe(true);
    expect((await httpRequest(server.opsPort!, "/healthz")).status).toBe(200);
  });

  it("GET /healthz answers 200 while the event loop runs", async () => {
    const res = await httpRequest(server.opsPort!, "/healthz");
    expect([res.status, res.body]).toEqual([200, "ok\n"]);
  });

  it("GET /readyz is 200 with every check named", async () => {
    const res = await httpRequest(server.opsPort!, "/readyz");
    expect(res.status).toBe(200);
    expect(res.body).toBe("ready\nlisteners: ok\nidentity: ok\nstore: ok\n");
  });

  it("GET /metrics answers the Prometheus text format", async () => {
    const res = await httpRequest(server.opsPort!, "/metrics");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(res.body).toContain("# TYPE grpc_server_handled_total counter");
  });

  it.each([
    ["down", "store: fail"],
    ["throws", "store: fail"],
    ["hangs", "store: timeout"],
  ] as const)("/readyz is 503 when a readiness check is %s, and says which, never why", async (mode, line) => {
    store = mode;
    try {
      const res = await httpRequest(server.opsPort!, "/readyz");
      expect(res.status).toBe(503);
      expect(res.body).toBe(`not ready\nlisteners: ok\nidentity: ok\n${line}\n`);
      expect(res.body).not.toContain("hunter2");
      expect((await httpRequest(server.opsPort!, "/healthz")).status).toBe(200);
    } finally {
      store = "up";
    }
    expect((await httpRequest(server.opsPort!, "/readyz")).status).toBe(200);
  });

  it("a dead downstream never makes the service unready", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createNetServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const registry = new ResilienceRegistry({ logger: silentLogger() });
    const venues = createVenueServiceClient({
      identity: await pki.material("ticket-service"),
      address: `127.0.0.1:${port}`,
      env: {},
      metrics: createMetrics(),
      resilience: { registry, breakerMinCalls: 1, retryMaxAttempts: 1 },
    });
    try {
      const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 3000 };
      await expect(venues.getVenue({ tenantId: TENANT, venueId: "v-1" }, ctx)).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.Unavailable);
      expect(registry.list().map((b) => [b.target, b.state])).toEqual([["venue-service", "open"]]);
      expect((await httpRequest(server.opsPort!, "/readyz")).status).toBe(200);
    } finally {
      closeClient(venues);
    }
  });

  it.each([
    ["GET", "/", 404],
    ["GET", "/metrics/", 404],
    ["GET", "/healthz/extra", 404],
    ["GET", "/readyz/../metrics", 404],
    ["GET", "/grpc.health.v1.Health/Check", 404],
    ["POST", "/tickettoken.ticket.v1.TicketService/GetTicketStatus", 404],
    ["GET", "/tickettoken.rpc.v1.AdminService/ListBreakers", 404],
    ["GET", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", 404],
    ["GET", "/debug/pprof", 404],
    ["PUT", "/anything", 404],
    ["POST", "/metrics", 405],
    ["DELETE", "/readyz", 405],
    ["HEAD", "/healthz", 405],
  ] as const)("%s %s -> %i", async (method, path, status) => {
    const res = await httpRequest(server.opsPort!, path, method);
    expect(res.status).toBe(status);
    if (status === 405) expect(res.headers.allow).toBe("GET");
  });
});

describe("drain", () => {
  it("/readyz is 503 from the moment stop() starts while a call is still in flight; stop() closes the port", async () => {
    let entered: () => void = () => {};
    let release: () => void = () => {};
    const started = new Promise<void>((resolve) => (entered = resolve));
    const draining = await createServer({
      identity: await pki.material("ticket-service"),
      port: 0,
      logger: silentLogger(),
      metrics: createMetrics(),
      ops: { port: 0 },
      services: [
        implement(TicketServiceContract, {
          async getTicketStatus(req) {
            entered();
            await new Promise<void>((resolve) => (release = resolve));
            return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
          },
        }),
      ],
    });
    const opsPort = draining.opsPort!;
    const client = createTicketServiceClient({ identity: await pki.material("payment-service"), address: `127.0.0.1:${draining.port}`, env: {}, metrics: createMetrics() });
    try {
      expect((await httpRequest(opsPort, "/readyz")).status).toBe(200);
      const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 10_000 };
      const held = client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, ctx);
      await started;
      const stopped = draining.stop(10_000);
      const during = await httpRequest(opsPort, "/readyz");
      expect(during.status).toBe(503);
      expect(during.body).toContain("listeners: fail");
      // Still alive, and still scraped, while it drains.
      expect((await httpRequest(opsPort, "/healthz")).status).toBe(200);
      expect((await httpRequest(opsPort, "/metrics")).status).toBe(200);
      release();
      expect((await held).ticketId).toBe("t-1");
      await stopped;
      expect(await refused(opsPort, "127.0.0.1")).toBe(true);
    } finally {
      release();
      closeClient(client);
      await draining.stop(500);
    }
  });
});
