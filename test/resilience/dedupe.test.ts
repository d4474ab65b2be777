/**
 * Server-side dedupe of keyed calls, over real HTTP/2 + mTLS with the
 * generated clients: a repeated key answers the stored response without
 * running the handler, a reused key with another request is
 * FAILED_PRECONDITION, concurrent duplicates run the handler once, errors are
 * not stored, keys are scoped per caller; the generated client always sends a
 * key, so the "no key" rule is checked with a raw grpc-js client. Then the in-memory store's TTL and
 * bounds with an injected clock.
 */
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTicketServiceClient, TicketServiceContract, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { createPaymentServiceClient, PaymentServiceContract } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_rpc.ts";
import { PaymentStatus } from "../../src/contracts/gen/tickettoken/payment/v1/payment_service_pb.ts";
import { RecordScanRequestSchema, RecordScanResponseSchema, TicketStatus, type RecordScanRequest } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { callContext } from "../../src/runtime/auth/call-context.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { createMemoryDedupeStore, type DedupeBegin, type DedupeStore } from "../../src/runtime/resilience/dedupe-store.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";

let pki: TestPki;
let server: RpcServer;
let paymentServer: RpcServer;
let scanner: TicketServiceClient;
const clients: object[] = [];
let contextToken: string;

/** Handler invocations per ticket id; each scan answers its running count. */
const scans = new Map<string, number>();
/** The idempotency-key header each handler invocation saw, per ticket id. */
const keysSeen = new Map<string, (string | null)[]>();
/** Set by a test to hold RecordScan until it opens the gate. */
let gate: Promise<void> | undefined;
let failNext: ConnectError | undefined;
const cancels: string[] = [];

/** The real default store, observed: tells the concurrency test when duplicates are parked. */
const store = createMemoryDedupeStore();
let inFlightSeen = 0;
let onInFlight: (() => void) | undefined;
let begins = 0;
/** Server-side end of each call (the CallObserver hook): lets a test wait until the server gave up on a call. */
let onFinished: ((code: Code | 0) => void) | undefined;
const observedStore: DedupeStore = {
  async begin(scope, fingerprint): Promise<DedupeBegin> {
    begins++;
    const found = await store.begin(scope, fingerprint);
    if (found.state === "in_flight") {
      inFlightSeen++;
      onInFlight?.();
    }
    return found;
  },
  complete: (scope, token, response) => store.complete(scope, token, response),
  release: (scope, token) => store.release(scope, token),
};

const headers = (key?: string) => ({ headers: { "tt-context": contextToken, ...(key !== undefined ? { "idempotency-key": key } : {}) } });

beforeAll(async () => {
  pki = await createTestPki();
  contextToken = await pki.contextToken({ tenantId: TENANT, userId: USER });
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    dedupeStore: observedStore,
    observe: ({ code }) => onFinished?.(code),
    services: [
      implement(TicketServiceContract, {
        async recordScan(req, ctx) {
          const count = (scans.get(req.ticketId) ?? 0) + 1;
          scans.set(req.ticketId, count);
          keysSeen.set(req.ticketId, [...(keysSeen.get(req.ticketId) ?? []), ctx.requestHeader.get("idempotency-key")]);
          if (gate) await gate;
          if (failNext) {
            const err = failNext;
            failNext = undefined;
            throw err;
          }
          return { ticketId: req.ticketId, scanCount: count, status: TicketStatus.USED };
        },
      }),
    ],
  });
  // Default (in-memory) store: what a service gets without configuring one.
  paymentServer = await createServer({
    identity: await pki.material("payment-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(PaymentServiceContract, {
        cancelPayment(req, ctx) {
          cancels.push(callContext(ctx).caller.workload);
          return { payment: { id: req.paymentId, tenantId: req.tenantId, status: PaymentStatus.CANCELLED } };
        },
      }),
    ],
  });
  scanner = track(createTicketServiceClient({ identity: await pki.material("scanning-service"), address: `127.0.0.1:${server.port}` }));
});

afterAll(async () => {
  clients.forEach(closeClient);
  await Promise.all([server?.stop(1000), paymentServer?.stop(1000)]);
  pki?.cleanup();
});

function track<T extends object>(c: T): T {
  clients.push(c);
  return c;
}

async function codeOf(p: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

const scan = (ticketId: string, deviceId = "gate-1") => ({ tenantId: TENANT, ticketId, deviceId, scanType: "entry" });

describe("dedupe of keyed calls (generated client, real mTLS)", () => {
  it("a repeated key returns the stored response without running the handler again", async () => {
    const first = await scanner.recordScan(scan("t-repeat"), headers("scan-0001"));
    const second = await scanner.recordScan(scan("t-repeat"), headers("scan-0001"));
    expect(first.scanCount).toBe(1);
    expect(second.scanCount).toBe(1);
    expect(second.status).toBe(TicketStatus.USED);
    expect(scans.get("t-repeat")).toBe(1);
    // A new key is a new scan.
    const third = await scanner.recordScan(scan("t-repeat"), headers("scan-0002"));
    expect(third.scanCount).toBe(2);
    expect(scans.get("t-repeat")).toBe(2);
  });

  it("the same key with a different request is FAILED_PRECONDITION and does not run the handler", async () => {
    await scanner.recordScan(scan("t-conflict"), headers("scan-0100"));
    expect(await codeOf(scanner.recordScan(scan("t-conflict", "gate-2"), headers("scan-0100")))).toBe(Code.FailedPrecondition);
    expect(scans.get("t-conflict")).toBe(1);
  });

  it("concurrent duplicates wait for the first and run the handler once", async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    const parked = new Promise<void>((resolve) => {
      const before = inFlightSeen;
      onInFlight = () => inFlightSeen - before >= 4 && resolve();
    });
    try {
      const calls = Array.from({ length: 5 }, () => scanner.recordScan(scan("t-concurrent"), headers("scan-0200")));
      await parked; // the other four found the first in flight
      expect(scans.get("t-concurrent")).toBe(1);
      open();
      const results = await Promise.all(calls);
      expect(results.map((r) => r.scanCount)).toEqual([1, 1, 1, 1, 1]);
      expect(scans.get("t-concurrent")).toBe(1);
    } finally {
      gate = undefined;
      onInFlight = undefined;
      open();
    }
  });

  it("a waiting duplicate gives up at its own deadline and never runs the handler", async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => (open = resolve));
    const parked = new Promise<void>((resolve) => (onInFlight = resolve));
    try {
      const beginsBefore = begins;
      const first = scanner.recordScan(scan("t-deadline"), headers("scan-0250"));
      const impatient = scanner.recordScan(scan("t-deadline"), { ...headers("scan-0250"), timeoutMs: 1_000 });
      const serverGaveUp = new Promise<Code | 0>((resolve) => (onFinished = resolve));
      await parked;
      expect(await codeOf(impatient)).toBe(Code.DeadlineExceeded);
      // The server ends the waiting duplicate itself (its deadline), before the first call settles.
      expect([Code.DeadlineExceeded, Code.Canceled]).toContain(await serverGaveUp);
      open();
      expect((await first).scanCount).toBe(1);
      expect(scans.get("t-deadline")).toBe(1);
      // The first call's claim and the duplicate's one look: the aborted waiter never came back for the result.
      expect(begins - beginsBefore).toBe(2);
    } finally {
      gate = undefined;
      onInFlight = undefined;
      onFinished = undefined;
      open();
    }
  });

  it("a failed call is not stored: the generated client's own retry of UNAVAILABLE runs the handler again, same key", async () => {
    failNext = new ConnectError("try again", Code.Unavailable);
    // RecordScan declares a key, so the generated client retries UNAVAILABLE by itself; the failure released the key.
    const res = await scanner.recordScan(scan("t-fail"), headers("scan-0300"));
    expect(keysSeen.get("t-fail")).toEqual(["scan-0300", "scan-0300"]);
    expect(scans.get("t-fail")).toBe(2);
    // The second attempt's response, not a stored failure.
    expect(res.scanCount).toBe(2);
    // And that response is now the stored one.
    expect((await scanner.recordScan(scan("t-fail"), headers("scan-0300"))).scanCount).toBe(2);
    expect(scans.get("t-fail")).toBe(2);
  });

  it("a failed call is not stored: after a failure the client does not retry (INTERNAL), the caller's retry with the same key runs the handler again", async () => {
    failNext = new ConnectError("boom", Code.Internal);
    expect(await codeOf(scanner.recordScan(scan("t-fail-internal"), headers("scan-0310")))).toBe(Code.Internal);
    expect(scans.get("t-fail-internal")).toBe(1);
    const retry = await scanner.recordScan(scan("t-fail-internal"), headers("scan-0310"));
    expect(retry.scanCount).toBe(2);
    expect(keysSeen.get("t-fail-internal")).toEqual(["scan-0310", "scan-0310"]);
  });

  it("the generated client attaches a key of its own when the caller passes none, and dedupe uses it", async () => {
    const res = await scanner.recordScan(scan("t-autokey"), headers());
    expect(res.scanCount).toBe(1);
    const [key] = keysSeen.get("t-autokey")!;
    expect(key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    // A fresh call is a fresh key: a new scan, not a replay.
    expect((await scanner.recordScan(scan("t-autokey"), headers())).scanCount).toBe(2);
    expect(new Set(keysSeen.get("t-autokey")).size).toBe(2);
  });

  it("a keyed method without a key (from a foreign client), or with a malformed one, is INVALID_ARGUMENT", async () => {
    // The generated client always sends a key, so "no key" comes from a client that is not ours (raw grpc-js).
    const foreign = await foreignScanner();
    try {
      expect(await foreign.recordScan(scan("t-nokey"), {})).toEqual({ code: grpc.status.INVALID_ARGUMENT, details: "idempotency-key header required" });
      // The same foreign call with a key goes through: the missing key was the only fault.
      expect(await foreign.recordScan(scan("t-foreign"), { "idempotency-key": "scan-0400" })).toEqual({ code: grpc.status.OK, scanCount: 1 });
    } finally {
      foreign.close();
    }
    // A caller's own key is sent as given, malformed or not.
    expect(await codeOf(scanner.recordScan(scan("t-nokey"), headers("has space")))).toBe(Code.InvalidArgument);
    expect(await codeOf(scanner.recordScan(scan("t-nokey"), headers("x".repeat(129))))).toBe(Code.InvalidArgument);
    expect(scans.get("t-nokey")).toBeUndefined();
  });

  it("keys are scoped per caller: another service's identical key runs its own call", async () => {
    const address = `127.0.0.1:${paymentServer.port}`;
    const fromOrder = track(createPaymentServiceClient({ identity: await pki.material("order-service"), address }));
    const fromTicket = track(createPaymentServiceClient({ identity: await pki.material("ticket-service"), address }));
    const req = { tenantId: TENANT, paymentId: "p-1", reason: "order_cancelled" };
    await fromOrder.cancelPayment(req, headers("payment-o-1-p-1"));
    await fromOrder.cancelPayment(req, headers("payment-o-1-p-1"));
    const res = await fromTicket.cancelPayment(req, headers("payment-o-1-p-1"));
    expect(res.payment?.status).toBe(PaymentStatus.CANCELLED);
    expect(cancels).toEqual(["order-service", "ticket-service"]);
  });
});

/**
 * RecordScan from a client that is not the framework's: raw @grpc/grpc-js with
 * the scanner's certificate, a call token and context token it mints itself,
 * and exactly the extra metadata given (so no idempotency key unless passed).
 */
async function foreignScanner() {
  const { workload, bundle } = (await pki.material("scanning-service")).current();
  const audience = workloadSpiffeId("ticket-service", workload.env, bundle.trustDomain);
  const minter = createCallTokenMinter({ identity: workload.spiffeId, key: workload.jwt.signingKey() });
  const client = new grpc.Client(
    `127.0.0.1:${server.port}`,
    // The server's identity is not under test here (the certificate names a SPIFFE ID, not 127.0.0.1).
    grpc.credentials.createSsl(Buffer.from(bundle.caPem), Buffer.from(workload.keyPem), Buffer.from(workload.certPem), { checkServerIdentity: () => undefined }),
    // SNI names the service: an IP as TLS server name is deprecated (DEP0123).
    { "grpc.ssl_target_name_override": "ticket-service" },
  );
  const path = TicketServiceContract.methods.recordScan.path;
  return {
    async recordScan(req: ReturnType<typeof scan>, extra: Record<string, string>): Promise<{ code: grpc.status; details?: string; scanCount?: number }> {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${await minter.mint({ audience, method: path, contextToken })}`);
      md.set("tt-context", contextToken);
      for (const [k, v] of Object.entries(extra)) md.set(k, v);
      return new Promise((resolve) => {
        client.makeUnaryRequest(
          path,
          (msg: RecordScanRequest) => Buffer.from(toBinary(RecordScanRequestSchema, msg)),
          (buf: Buffer) => fromBinary(RecordScanResponseSchema, buf),
          create(RecordScanRequestSchema, req),
          md,
          { deadline: Date.now() + 5_000 },
          (err, value) => resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, scanCount: value!.scanCount }),
        );
      });
    },
    close: () => client.close(),
  };
}

describe("in-memory dedupe store", () => {
  const bytes = (n: number) => new Uint8Array(n);

  async function claim(s: DedupeStore, scope: string, fp = "f"): Promise<string> {
    const found = await s.begin(scope, fp);
    if (found.state !== "claimed") throw new Error(`expected a claim for ${scope}, got ${found.state}`);
    return found.token;
  }

  it("answers a stored response until its TTL, then lets the key be claimed again", async () => {
    let now = 1_000_000;
    const s = createMemoryDedupeStore({ ttlMs: 60_000, now: () => now });
    await s.complete("a", await claim(s, "a"), bytes(3));
    now += 59_999;
    expect((await s.begin("a", "f")).state).toBe("completed");
    now += 1;
    expect((await s.begin("a", "f")).state).toBe("claimed");
  });

  it("keeps at most maxEntries, evicting the oldest stored response", async () => {
    const s = createMemoryDedupeStore({ maxEntries: 3 });
    for (const scope of ["a", "b", "c", "d"]) await s.complete(scope, await claim(s, scope), bytes(1));
    expect(s.size).toBe(3);
    expect((await s.begin("a", "f")).state).toBe("claimed");
    expect((await s.begin("d", "f")).state).toBe("completed");
  });

  it("keeps stored bytes under maxBytes, evicting the oldest", async () => {
    const s = createMemoryDedupeStore({ maxBytes: 3_000 });
    for (const scope of ["a", "b", "c"]) await s.complete(scope, await claim(s, scope), bytes(1_000));
    expect(s.bytes).toBeLessThanOrEqual(3_000);
    expect(s.size).toBe(2);
    expect((await s.begin("a", "f")).state).toBe("claimed");
    expect((await s.begin("c", "f")).state).toBe("completed");
  });

  it("never evicts calls in flight: when every slot is one, begin reports full", async () => {
    const s = createMemoryDedupeStore({ maxEntries: 2 });
    await claim(s, "a");
    await claim(s, "b");
    expect((await s.begin("c", "f")).state).toBe("full");
    expect((await s.begin("a", "f")).state).toBe("in_flight");
  });

  it("release wakes waiters and frees the key; a stale token changes nothing", async () => {
    const s = createMemoryDedupeStore();
    const token = await claim(s, "a");
    const waiting = await s.begin("a", "f");
    if (waiting.state !== "in_flight") throw new Error("expected in_flight");
    await s.complete("a", "not-the-token", bytes(1));
    expect((await s.begin("a", "f")).state).toBe("in_flight");
    await s.release("a", token);
    await waiting.settled;
    expect((await s.begin("a", "f")).state).toBe("claimed");
  });
});
