/**
 * Per-call resources and the served call's signal (issues #7.8, #7.9, #8.3),
 * on real servers over mTLS, on the gRPC port (grpc-js) and the Connect port
 * (connect-node), with raw HTTP/2 requests so the server's own answer is
 * what we see (a client library would report its own deadline first):
 *
 * - a handler's ctx.signal (and the call scope's signal, which outgoing calls
 *   inherit) is not aborted after a successful call; it aborts with
 *   DEADLINE_EXCEEDED when the deadline passes and with CANCELED when the
 *   client cancels; scope.deadline is the absolute deadline; the scope
 *   carries the verified tenant and user;
 * - after a churn of calls with 300 s deadlines, live timers return to the
 *   baseline (process.getActiveResourcesInfo() 'Timeout' entries);
 * - a Health Watch reaching its deadline ends with DEADLINE_EXCEEDED, never OK.
 */
import * as http2 from "node:http2";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { Health, HealthCheckRequestSchema } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { GetTicketStatusRequestSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { currentCallScope, type CallScope } from "../../src/runtime/observability/call-scope.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { CallLifetime } from "../../src/runtime/server/call-lifetime.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { mtlsSession } from "../support/connect-raw.ts";

const TENANT = "tenant-resources";
const USER = "user-resources";
const GET_STATUS = TicketServiceContract.methods.getTicketStatus.path;
const WATCH = `/${Health.typeName}/Watch`;

let pki: TestPki;
let server: RpcServer;
let payment: MaterialSource;
let caPem: string;
let ctxToken: string;
const sessions: http2.ClientHttp2Session[] = [];

interface Seen {
  readonly signal: AbortSignal;
  readonly scope: CallScope | undefined;
  readonly timeoutMs: number | undefined;
  reason?: unknown;
}
const seen = new Map<string, Seen>();
const interceptorSaw: Array<{ protocol: string; request: unknown; encoded: Uint8Array | undefined }> = [];
/** Resolves when the handler for `id` has started (so a cancel reaches a running handler). */
const started = new Map<string, () => void>();

function untilAborted(signal: AbortSignal, boundMs: number): Promise<unknown> {
  if (signal.aborted) return Promise.resolve(signal.reason);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve("handler safety bound reached"), boundMs);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(t);
        resolve(signal.reason);
      },
      { once: true },
    );
  });
}

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  payment = await pki.material("payment-service");
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger: silentLogger(),
    // A user interceptor runs after security: it must see the decoded request, whichever port carried it.
    interceptors: [
      (next) => async (call) => {
        interceptorSaw.push({ protocol: call.protocol, request: call.request, encoded: call.encodedRequest });
        return next(call);
      },
    ],
    services: [
      implement(TicketServiceContract, {
        async getTicketStatus(req, ctx: HandlerContext) {
          const s: Seen = { signal: ctx.signal, scope: currentCallScope(), timeoutMs: ctx.timeoutMs() };
          seen.set(req.ticketId, s);
          started.get(req.ticketId)?.();
          if (req.ticketId.startsWith("wait")) {
            s.reason = await untilAborted(ctx.signal, 10_000);
            throw s.reason;
          }
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
      }),
    ],
  });
  ctxToken = await pki.contextToken({ tenantId: TENANT, userId: USER });
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await server?.stop(500);
  pki?.cleanup();
});

// ---------------------------------------------------------------- raw HTTP/2 calls

type PortKind = "grpc" | "connect";

function session(kind: PortKind): http2.ClientHttp2Session {
  const w = payment.current().workload;
  const s = mtlsSession({ port: kind === "grpc" ? server.port : server.connectPort!, ca: caPem, cert: w.certPem, key: w.keyPem });
  sessions.push(s);
  return s;
}

async function token(path: string): Promise<string> {
  const w = payment.current().workload;
  return createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current }).mint({
    audience: workloadSpiffeId("ticket-service"),
    method: path,
    contextToken: ctxToken,
  });
}

function enveloped(bytes: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + bytes.length);
  out.writeUInt32BE(bytes.length, 1);
  Buffer.from(bytes).copy(out, 5);
  return out;
}

interface RawOutcome {
  /** gRPC status code, or the Connect code mapped to it (0 = OK). */
  readonly code: number | undefined;
  readonly stream: http2.ClientHttp2Stream;
}

/**
 * One call without any client-side deadline: the timeout travels only as a
 * header, so the status we see is the one the server sent.
 */
async function rawCall<I extends DescMessage>(opts: {
  s: http2.ClientHttp2Session;
  kind: PortKind;
  path: string;
  schema: I;
  message: MessageInitShape<I>;
  timeoutMs: number;
  streaming?: boolean;
  onStream?: (stream: http2.ClientHttp2Stream) => void;
}): Promise<number | undefined> {
  const bytes = toBinary(opts.schema, create(opts.schema, opts.message));
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": opts.path,
    authorization: `Bearer ${await token(opts.path)}`,
    "tt-context": ctxToken,
  };
  if (opts.kind === "grpc") {
    Object.assign(headers, { "content-type": "application/grpc", te: "trailers", "grpc-timeout": `${opts.timeoutMs}m` });
  } else {
    Object.assign(headers, {
      "content-type": opts.streaming ? "application/connect+proto" : "application/proto",
      "connect-protocol-version": "1",
      "connect-timeout-ms": String(opts.timeoutMs),
    });
  }
  return new Promise((resolve, reject) => {
    const stream = opts.s.request(headers);
    const chunks: Buffer[] = [];
    let status = 0;
    let grpcStatus: number | undefined;
    const bound = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      reject(new Error(`no end of ${opts.path} within 15 s`));
    }, 15_000);
    stream.on("response", (h) => {
      status = Number(h[":status"]);
      if (h["grpc-status"] !== undefined) grpcStatus = Number(h["grpc-status"]);
    });
    stream.on("trailers", (t) => {
      if (t["grpc-status"] !== undefined) grpcStatus = Number(t["grpc-status"]);
    });
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("close", () => {
      clearTimeout(bound);
      const body = Buffer.concat(chunks);
      if (opts.kind === "grpc") return resolve(grpcStatus);
      if (stream.rstCode === http2.constants.NGHTTP2_CANCEL) return resolve(Code.Canceled);
      if (!opts.streaming) return resolve(status === 200 ? 0 : connectCode(JSON.parse(body.toString()) as { code: string }));
      resolve(endStreamCode(body));
    });
    stream.on("error", () => {});
    opts.onStream?.(stream);
    stream.end(opts.kind === "grpc" || opts.streaming ? enveloped(bytes) : Buffer.from(bytes));
  });
}

function connectCode(err: { code?: string } | undefined): number {
  if (!err?.code) return 0;
  const name = err.code.replace(/(^|_)([a-z])/g, (_m, _s, c: string) => c.toUpperCase()).replace("Canceled", "Canceled");
  return Code[name as keyof typeof Code] as number;
}

/** The Connect end-stream message (flag 0x02) of a streaming response: its error code, or 0. */
function endStreamCode(body: Buffer): number | undefined {
  let at = 0;
  while (at + 5 <= body.length) {
    const flags = body[at]!;
    const len = body.readUInt32BE(at + 1);
    if (flags & 0x02) return connectCode((JSON.parse(body.subarray(at + 5, at + 5 + len).toString()) as { error?: { code: string } }).error);
    at += 5 + len;
  }
  return undefined;
}

const ticketCall = (s: http2.ClientHttp2Session, kind: PortKind, ticketId: string, timeoutMs: number, onStream?: (st: http2.ClientHttp2Stream) => void) =>
  rawCall({ s, kind, path: GET_STATUS, schema: GetTicketStatusRequestSchema, message: { tenantId: TENANT, ticketId }, timeoutMs, ...(onStream ? { onStream } : {}) });

const liveTimers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

// ---------------------------------------------------------------- the handler's signal

describe.each(["grpc", "connect"] as const)("the served call's signal on the %s port", (kind) => {
  it("is not aborted after a successful call; the scope has the absolute deadline, tenant and user", async () => {
    const s = session(kind);
    const id = `ok-${kind}`;
    const before = Date.now();
    expect(await ticketCall(s, kind, id, 300_000)).toBe(0);
    const got = seen.get(id)!;
    // Give the stack time to close the stream and run its end-of-call clean-up (which used to abort the signal).
    await new Promise((r) => setTimeout(r, 300));
    expect(got.signal.aborted, `aborted with ${String(got.signal.reason)}`).toBe(false);
    expect(got.scope?.signal).toBe(got.signal);
    expect(got.scope?.signal.aborted).toBe(false);
    expect([got.scope?.tenantId, got.scope?.userId]).toEqual([TENANT, USER]);
    expect(got.scope?.deadline).toBeGreaterThanOrEqual(before + 300_000 - 5_000);
    expect(got.scope?.deadline).toBeLessThanOrEqual(Date.now() + 300_000);
    expect(got.timeoutMs).toBeGreaterThan(290_000);
  });

  it("aborts with DEADLINE_EXCEEDED when the deadline passes, and the caller gets DEADLINE_EXCEEDED", async () => {
    const s = session(kind);
    const id = `wait-deadline-${kind}`;
    const code = await ticketCall(s, kind, id, 300);
    expect(code).toBe(Code.DeadlineExceeded);
    const got = seen.get(id)!;
    await untilAborted(got.signal, 5_000);
    expect(got.signal.reason).toBeInstanceOf(ConnectError);
    expect(Code[(got.signal.reason as ConnectError).code]).toBe("DeadlineExceeded");
  });

  it("aborts with CANCELED when the client cancels", async () => {
    const s = session(kind);
    const id = `wait-cancel-${kind}`;
    const running = new Promise<void>((resolve) => started.set(id, resolve));
    const call = ticketCall(s, kind, id, 300_000, (stream) => void running.then(() => stream.close(http2.constants.NGHTTP2_CANCEL)));
    await call.catch(() => undefined);
    const got = seen.get(id)!;
    await untilAborted(got.signal, 5_000);
    expect(got.signal.reason).toBeInstanceOf(ConnectError);
    expect(Code[(got.signal.reason as ConnectError).code]).toBe("Canceled");
  });
});

describe("user interceptors", () => {
  it.each(["grpc", "connect"] as const)("see the decoded request on the %s port", async (kind) => {
    interceptorSaw.length = 0;
    expect(await ticketCall(session(kind), kind, `decoded-${kind}`, 300_000)).toBe(0);
    expect(interceptorSaw).toHaveLength(1);
    expect(interceptorSaw[0]).toMatchObject({ protocol: kind, request: { ticketId: `decoded-${kind}`, tenantId: TENANT }, encoded: undefined });
  });
});

// ---------------------------------------------------------------- timers

describe.each(["grpc", "connect"] as const)("per-call resources on the %s port", (kind) => {
  it("live timers return to the baseline after 300 calls with 300 s deadlines", async () => {
    const s = session(kind);
    expect(await ticketCall(s, kind, "warm-up", 300_000)).toBe(0);
    const baseline = liveTimers();
    for (let round = 0; round < 30; round++) {
      const codes = await Promise.all(Array.from({ length: 10 }, (_, i) => ticketCall(s, kind, `churn-${kind}-${round}-${i}`, 300_000)));
      expect(codes.every((c) => c === 0)).toBe(true);
    }
    // Streams close just after their last frame: let the stacks finish their clean-up.
    await new Promise((r) => setTimeout(r, 300));
    // A leak is one timer per call (300 here); a few may belong to unrelated machinery (TLS, keep-alive).
    expect(liveTimers() - baseline).toBeLessThan(20);
  });
});

// ---------------------------------------------------------------- Health Watch at its deadline

describe.each(["grpc", "connect"] as const)("Health Watch on the %s port", (kind) => {
  it("reaching its deadline ends with DEADLINE_EXCEEDED, never OK (10 times)", async () => {
    const s = session(kind);
    const codes = await Promise.all(
      Array.from({ length: 10 }, () =>
        rawCall({ s, kind, path: WATCH, schema: HealthCheckRequestSchema, message: { service: "" }, timeoutMs: 200, streaming: true }),
      ),
    );
    expect(codes).toEqual(Array.from({ length: 10 }, () => Code.DeadlineExceeded));
  });
});

// ---------------------------------------------------------------- CallLifetime rules (injected clock)

describe("CallLifetime", () => {
  const reasonOf = (l: CallLifetime) => (l.signal.aborted ? Code[(l.signal.reason as ConnectError).code] : "not aborted");

  it("a call that ended is never aborted afterwards, whatever the stack reports", () => {
    const upstream = new AbortController();
    const l = new CallLifetime(1_000, upstream.signal, () => 0);
    l.end();
    l.cancelled();
    upstream.abort(new ConnectError("gone", Code.Canceled));
    expect(reasonOf(l)).toBe("not aborted");
  });

  it("the stack's cancel before the deadline is CANCELED, at or after it DEADLINE_EXCEEDED", () => {
    let now = 0;
    const early = new CallLifetime(1_000, undefined, () => now);
    early.cancelled();
    expect(reasonOf(early)).toBe("Canceled");
    now = 1_000;
    const late = new CallLifetime(1_000, undefined, () => now);
    late.cancelled();
    expect(reasonOf(late)).toBe("DeadlineExceeded");
    expect(late.remainingMs()).toBe(0);
  });

  it("an upstream signal's DEADLINE_EXCEEDED reason is kept; any other upstream abort is CANCELED", () => {
    const deadline = new AbortController();
    const a = new CallLifetime(undefined, deadline.signal);
    deadline.abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
    expect(reasonOf(a)).toBe("DeadlineExceeded");
    const shutdown = new AbortController();
    const b = new CallLifetime(undefined, shutdown.signal);
    shutdown.abort();
    expect(reasonOf(b)).toBe("Canceled");
  });
});
