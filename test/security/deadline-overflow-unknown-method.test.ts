/**
 * Found in the issue #7 acceptance review, from outside with raw HTTP/2:
 *
 * - a valid deadline longer than a Node timer holds (~24.8 days: `grpc-timeout:
 *   1000H`, `connect-timeout-ms: 3000000000`) failed the call at once with
 *   DEADLINE_EXCEEDED (grpc-js multiplies the value out in 32 bits; Node fires
 *   an overflowing timer after 1 ms). It is served, with the longest deadline
 *   a timer can hold;
 * - an unknown method on the gRPC port was answered by grpc-js itself with
 *   "The server does not implement the method <the whole path>", echoing up to
 *   the header-list cap. The guard answers it with a generic message.
 */
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { GetTicketStatusRequestSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { captureLogs } from "../support/log-capture.ts";
import { connectH2, mtlsSessionReady } from "../support/connect-raw.ts";

const { logger, lines: logLines } = captureLogs();

const PATH = TicketServiceContract.methods.getTicketStatus.path;
const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const MESSAGE = toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { ticketId: "t-1", tenantId: TENANT }));
const FRAMED = (() => {
  const f = Buffer.alloc(5 + MESSAGE.length);
  f.writeUInt32BE(MESSAGE.length, 1);
  Buffer.from(MESSAGE).copy(f, 5);
  return f;
})();
const DAY_MS = 86_400_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

let pki: TestPki;
let caPem: string;
let payment: MaterialSource;
let server: RpcServer;
let ctxToken: string;
/** timeoutMs() each served call saw, and whether its signal had aborted by the time it answered. */
const seenTimeouts: Array<number | undefined> = [];
const seenAborted: boolean[] = [];
const sessions: http2.ClientHttp2Session[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  payment = await pki.material("payment-service");
  ctxToken = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger,
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: async (req, ctx) => {
          seenTimeouts.push(ctx.timeoutMs());
          // Long enough that a deadline firing "at once" would end the call first.
          await new Promise((r) => setTimeout(r, 150));
          seenAborted.push(ctx.signal.aborted);
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
      }),
    ],
  });
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await server?.stop(200);
  pki?.cleanup();
});

async function connect(port: number): Promise<http2.ClientHttp2Session> {
  const w = payment.current().workload;
  const session = await mtlsSessionReady({ port, ca: caPem, cert: w.certPem, key: w.keyPem });
  sessions.push(session);
  return session;
}

function grpcCall(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ grpcStatus?: string; grpcMessage?: string }> {
  return new Promise((resolve) => {
    const req = session.request({ ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers", ...headers });
    const out: { grpcStatus?: string; grpcMessage?: string } = {};
    const read = (h: http2.IncomingHttpHeaders) => {
      out.grpcStatus ??= h["grpc-status"] as string | undefined;
      out.grpcMessage ??= h["grpc-message"] as string | undefined;
    };
    req.on("response", read);
    req.on("trailers", read);
    req.on("error", () => {});
    req.on("data", () => {});
    req.on("close", () => resolve(out));
    req.end(FRAMED);
  });
}

const minter = () => {
  const w = payment.current().workload;
  return createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current });
};
const token = (path = PATH) => minter().mint({ audience: workloadSpiffeId("ticket-service"), method: path, contextToken: ctxToken });

describe("a deadline longer than a Node timer holds is served with the longest one it can, not failed at once", () => {
  it("gRPC port: grpc-timeout values that overflow 32-bit milliseconds", async () => {
    const session = await connect(server.port);
    for (const timeout of ["1000H", "99999999H", "2147484S", "99999999S", "35792M"]) {
      seenTimeouts.length = 0;
      const a = await grpcCall(session, { authorization: `Bearer ${await token()}`, "tt-context": ctxToken, "grpc-timeout": timeout });
      expect({ timeout, ...a }).toMatchObject({ timeout, grpcStatus: "0" });
      expect(seenTimeouts).toHaveLength(1);
      expect(seenTimeouts[0]!, timeout).toBeGreaterThan(20 * DAY_MS);
      expect(seenTimeouts[0]!, timeout).toBeLessThanOrEqual(MAX_TIMER_MS);
      expect(seenAborted.at(-1), timeout).toBe(false);
    }
    // Control: an ordinary deadline is passed on as sent.
    seenTimeouts.length = 0;
    const a = await grpcCall(session, { authorization: `Bearer ${await token()}`, "tt-context": ctxToken, "grpc-timeout": "5S" });
    expect(a.grpcStatus).toBe("0");
    expect(seenTimeouts[0]!).toBeGreaterThan(4000);
    expect(seenTimeouts[0]!).toBeLessThanOrEqual(5000);
  });

  it("Connect port: connect-timeout-ms values beyond 2^31 - 1", async () => {
    const w = payment.current().workload;
    const client = connectH2({ port: server.connectPort!, ca: caPem, cert: w.certPem, key: w.keyPem });
    try {
      for (const timeout of ["3000000000", "9999999999"]) {
        seenTimeouts.length = 0;
        const res = await client.call({
          path: PATH,
          headers: [
            ["authorization", `Bearer ${await token()}`],
            ["tt-context", ctxToken],
            ["connect-timeout-ms", timeout],
          ],
          body: MESSAGE,
        });
        expect({ timeout, status: res.status, message: res.message }).toEqual({ timeout, status: 200, message: "" });
        expect(seenTimeouts[0]!, timeout).toBeGreaterThan(20 * DAY_MS);
        expect(seenTimeouts[0]!, timeout).toBeLessThanOrEqual(MAX_TIMER_MS);
        expect(seenAborted.at(-1), timeout).toBe(false);
      }
    } finally {
      client.close();
    }
  });
});

describe("gRPC port: an unknown method", () => {
  it("is UNIMPLEMENTED with a generic message, with or without a token; the path is never echoed", async () => {
    const session = await connect(server.port);
    const mark = logLines.length;
    const unknown = ["/tickettoken.ticket.v1.TicketService/NoSuchMethod", `/a.B/${"C".repeat(4000)}`, "/"];
    for (const path of unknown) {
      for (const auth of [undefined, `Bearer ${await token(path)}`]) {
        const a = await grpcCall(session, { ":path": path, ...(auth ? { authorization: auth } : {}) });
        expect({ path: path.slice(0, 60), auth: auth !== undefined, ...a }).toEqual({
          path: path.slice(0, 60),
          auth: auth !== undefined,
          grpcStatus: "12",
          grpcMessage: "method not implemented",
        });
      }
    }
    expect(logLines.slice(mark).join("")).toMatch(/"reason":"unknown method","msg":"gRPC request refused before grpc-js"/);
    // Control: the served method on the same connection.
    const ok = await grpcCall(session, { authorization: `Bearer ${await token()}`, "tt-context": ctxToken });
    expect(ok.grpcStatus).toBe("0");
  });
});
