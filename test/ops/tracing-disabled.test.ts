/**
 * Without an OpenTelemetry SDK the framework costs nothing for tracing: the
 * API is asked once when a server or client is built, never per call, and no
 * span is started and no context switched; the W3C traceparent still travels
 * (the propagation interceptor writes it, as before). Once an SDK is
 * registered, activeTracer() finds it (the positive control).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { context, ProxyTracer, trace } from "@opentelemetry/api";
import { BasicTracerProvider } from "@opentelemetry/sdk-trace-base";
import type { HandlerContext } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createMetrics } from "../../src/runtime/telemetry/metrics.ts";
import { activeTracer } from "../../src/runtime/telemetry/tracing.ts";
import { OrderServiceContract, createOrderServiceClient, type OrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-notrace";
let pki: TestPki;
let server: RpcServer;
let client: OrderServiceClient;
const traceparents: (string | null)[] = [];
let askedAtBuild = 0;
const getProvider = vi.spyOn(trace, "getTracerProvider");
const startSpan = vi.spyOn(ProxyTracer.prototype, "startSpan");
const contextWith = vi.spyOn(context, "with");

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material("order-service"),
    port: 0,
    logger: silentLogger(),
    metrics: createMetrics(),
    services: [
      implement(OrderServiceContract, {
        getOrder(req, ctx: HandlerContext) {
          traceparents.push(ctx.requestHeader.get("traceparent"));
          return { order: { id: req.orderId, tenantId: req.tenantId } };
        },
      }),
    ],
  });
  client = createOrderServiceClient({ identity: await pki.material("ticket-service"), address: `127.0.0.1:${server.port}`, env: {}, metrics: createMetrics() });
  askedAtBuild = getProvider.mock.calls.length;
});

afterAll(async () => {
  closeClient(client);
  await server?.stop(1000);
  pki?.cleanup();
  trace.disable();
});

describe("tracing without an SDK", () => {
  it("asks the API once per server and client, never per call; no span, no context switch", async () => {
    // The server and the client asked when they were built.
    expect(askedAtBuild).toBe(2);
    expect(activeTracer()).toBeUndefined();
    // (vitest clears spies' call records before each test.)
    const asked = getProvider.mock.calls.length;
    expect(asked).toBe(1);
    const ctx = { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 5000 };
    for (let i = 0; i < 5; i++) expect((await client.getOrder({ tenantId: TENANT, orderId: `o-${i}` }, ctx)).order?.id).toBe(`o-${i}`);
    expect(getProvider.mock.calls.length).toBe(asked);
    expect(startSpan).not.toHaveBeenCalled();
    expect(contextWith).not.toHaveBeenCalled();
    // Trace context still propagates: a valid traceparent, a new span id per call.
    expect(traceparents).toHaveLength(5);
    for (const tp of traceparents) expect(tp).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(new Set(traceparents).size).toBe(5);
  });

  it("finds the SDK once one is registered", () => {
    trace.setGlobalTracerProvider(new BasicTracerProvider());
    expect(activeTracer()).toBeDefined();
  });
});
