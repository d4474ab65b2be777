/**
 * OpenTelemetry spans across two hops with an SDK registered (in-memory
 * exporter, AsyncLocalStorage context manager), as an application would:
 * an edge client (order-service) calls ticket-service, whose handler calls
 * order-service. One trace, parents linked client -> server -> client ->
 * server under the edge's own traceparent, RPC attributes on every span, the
 * traceparent each hop receives naming the calling client span, and status
 * codes right when the second hop fails.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createMetrics } from "../../src/runtime/telemetry/metrics.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { TicketServiceContract, createTicketServiceClient, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { OrderServiceContract, createOrderServiceClient, type OrderServiceClient } from "../../src/contracts/gen/tickettoken/order/v1/order_service_rpc.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "tenant-trace";
const EDGE_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const EDGE_SPAN = "00f067aa0ba902b7";
const exporter = new InMemorySpanExporter();
const contextManager = new AsyncLocalStorageContextManager().enable();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

let pki: TestPki;
let order: RpcServer;
let ticket: RpcServer;
let orders: OrderServiceClient;
let edge: TicketServiceClient;
/** traceparent each handler received, by service. */
const received: Record<string, string | null> = {};

function record(service: string, ctx: HandlerContext): void {
  received[service] = ctx.requestHeader.get("traceparent");
}

beforeAll(async () => {
  // Before servers and clients are built: that is when the framework asks whether an SDK is there.
  context.setGlobalContextManager(contextManager);
  trace.setGlobalTracerProvider(provider);
  pki = await createTestPki();
  const options = { port: 0, logger: silentLogger(), metrics: createMetrics() };
  order = await createServer({
    ...options,
    identity: await pki.material("order-service"),
    services: [
      implement(OrderServiceContract, {
        getOrder(req, ctx) {
          record("order", ctx);
          if (req.orderId === "o-missing") throw new ConnectError("order not found", Code.NotFound);
          return { order: { id: req.orderId, tenantId: req.tenantId } };
        },
      }),
    ],
  });
  const client = { env: {}, metrics: createMetrics(), resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }) } };
  orders = createOrderServiceClient({ ...client, identity: await pki.material("ticket-service"), address: `127.0.0.1:${order.port}` });
  ticket = await createServer({
    ...options,
    identity: await pki.material("ticket-service"),
    services: [
      implement(TicketServiceContract, {
        async countOrderTickets(req, ctx) {
          record("ticket", ctx);
          const res = await orders.getOrder({ tenantId: req.tenantId, orderId: req.orderId });
          return { orderId: res.order!.id, count: 1, hasTickets: true };
        },
      }),
    ],
  });
  edge = createTicketServiceClient({ ...client, identity: await pki.material("order-service"), address: `127.0.0.1:${ticket.port}` });
});

afterAll(async () => {
  closeClient(orders);
  closeClient(edge);
  await Promise.all([ticket?.stop(1000), order?.stop(1000)]);
  pki?.cleanup();
  await provider.shutdown();
  trace.disable();
  context.disable();
});

/** The four spans of one call, outermost first: edge client, ticket server, ticket's client, order server. */
async function traceOf(orderId: string): Promise<ReadableSpan[]> {
  exporter.reset();
  const headers = { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }), traceparent: `00-${EDGE_TRACE}-${EDGE_SPAN}-01` };
  await edge.countOrderTickets({ tenantId: TENANT, orderId }, { headers, timeoutMs: 5000 }).catch(() => undefined);
  const spans = exporter.getFinishedSpans();
  const find = (name: string, kind: SpanKind) => {
    const found = spans.filter((s) => s.name === name && s.kind === kind);
    expect(found, `${name} ${SpanKind[kind]}`).toHaveLength(1);
    return found[0]!;
  };
  expect(spans).toHaveLength(4);
  return [
    find("tickettoken.ticket.v1.TicketService/CountOrderTickets", SpanKind.CLIENT),
    find("tickettoken.ticket.v1.TicketService/CountOrderTickets", SpanKind.SERVER),
    find("tickettoken.order.v1.OrderService/GetOrder", SpanKind.CLIENT),
    find("tickettoken.order.v1.OrderService/GetOrder", SpanKind.SERVER),
  ];
}

const id = (s: ReadableSpan) => s.spanContext().spanId;
const parent = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe("OpenTelemetry spans across two hops", () => {
  it("one trace under the edge's traceparent, each span the child of the one before it", async () => {
    const [edgeClient, ticketServer, ticketClient, orderServer] = await traceOf("o-1");
    for (const s of [edgeClient, ticketServer, ticketClient, orderServer]) expect(s!.spanContext().traceId).toBe(EDGE_TRACE);
    expect(parent(edgeClient!)).toBe(EDGE_SPAN);
    expect(parent(ticketServer!)).toBe(id(edgeClient!));
    expect(ticketServer!.parentSpanContext?.isRemote).toBe(true);
    expect(parent(ticketClient!)).toBe(id(ticketServer!));
    expect(parent(orderServer!)).toBe(id(ticketClient!));
    // What went over the wire: each hop's traceparent names the client span that called it.
    expect(received.ticket).toBe(`00-${EDGE_TRACE}-${id(edgeClient!)}-01`);
    expect(received.order).toBe(`00-${EDGE_TRACE}-${id(ticketClient!)}-01`);
  });

  it("RPC semantic-convention attributes and OK status codes", async () => {
    const spans = await traceOf("o-2");
    for (const s of spans) {
      const [service, method] = s.name.split("/");
      expect(s.attributes).toEqual({ "rpc.system": "grpc", "rpc.service": service, "rpc.method": method, "rpc.grpc.status_code": 0 });
      expect(s.status.code).toBe(SpanStatusCode.UNSET);
    }
  });

  it("an error: NOT_FOUND on the second hop, INTERNAL on the first (a dependency's error is never relayed)", async () => {
    const [edgeClient, ticketServer, ticketClient, orderServer] = await traceOf("o-missing");
    expect(orderServer!.attributes["rpc.grpc.status_code"]).toBe(Code.NotFound);
    // NOT_FOUND is the caller's problem, not the server's: no error status on the server span ...
    expect(orderServer!.status.code).toBe(SpanStatusCode.UNSET);
    // ... but an error for the client that got it.
    expect(ticketClient!.attributes["rpc.grpc.status_code"]).toBe(Code.NotFound);
    expect(ticketClient!.status).toEqual({ code: SpanStatusCode.ERROR, message: "NotFound" });
    expect(ticketServer!.attributes["rpc.grpc.status_code"]).toBe(Code.Internal);
    expect(ticketServer!.status).toEqual({ code: SpanStatusCode.ERROR, message: "Internal" });
    expect(edgeClient!.attributes["rpc.grpc.status_code"]).toBe(Code.Internal);
    expect(edgeClient!.status.code).toBe(SpanStatusCode.ERROR);
    expect(new Set([edgeClient, ticketServer, ticketClient, orderServer].map((s) => s!.spanContext().traceId))).toEqual(new Set([EDGE_TRACE]));
  });

  it("without a traceparent from the caller, the edge client span starts a new trace that every hop joins", async () => {
    exporter.reset();
    await edge.countOrderTickets({ tenantId: TENANT, orderId: "o-3" }, { headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 5000 });
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(4);
    const root = spans.find((s) => s.kind === SpanKind.CLIENT && s.name.endsWith("/CountOrderTickets"))!;
    expect(root.parentSpanContext).toBeUndefined();
    expect(new Set(spans.map((s) => s.spanContext().traceId))).toEqual(new Set([root.spanContext().traceId]));
  });
});
