/**
 * Every call refused by authentication is reported alike on both ports: one
 * "rpc" log line and one `observe` event, besides the "call rejected" line.
 * (The Connect port authenticates ahead of connect-node reading the body, so
 * the refusal happens before the interceptor chain that logs the gRPC port's calls.)
 */
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { pino } from "pino";
import { GetTicketStatusRequestSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const PATH = TicketServiceContract.methods.getTicketStatus.path;
const MESSAGE = Buffer.from(toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: "t", ticketId: "t-1" })));

const lines: Record<string, unknown>[] = [];
const logger = pino(
  { level: "info" },
  new Writable({
    write(chunk: Buffer | string, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  }),
);
const observed: { method: string; code: number; protocol: string }[] = [];

let pki: TestPki;
let server: RpcServer;
let session: Record<"grpc" | "connect", http2.ClientHttp2Session>;

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger,
    observe: ({ call, code }) => observed.push({ method: call.contract.path, code, protocol: call.protocol }),
    services: [implement(TicketServiceContract, { getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }) })],
  });
  const w = (await pki.material("payment-service")).current().workload;
  const ca = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  const open = (port: number) => {
    const s = http2.connect(`https://127.0.0.1:${port}`, { ca, cert: w.certPem, key: w.keyPem, checkServerIdentity: () => undefined });
    s.on("error", () => {});
    return s;
  };
  session = { grpc: open(server.port), connect: open(server.connectPort!) };
});

afterAll(async () => {
  session?.grpc.destroy();
  session?.connect.destroy();
  await server?.stop(200);
  pki?.cleanup();
});

/** One raw request; resolves when the stream closes, with the gRPC status or Connect HTTP status. */
function send(port: "grpc" | "connect", authorization: string | undefined): Promise<string> {
  const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": PATH, ...(authorization ? { authorization } : {}) };
  let body = MESSAGE;
  if (port === "grpc") {
    Object.assign(headers, { "content-type": "application/grpc", te: "trailers" });
    body = Buffer.concat([Buffer.from([0, 0, 0, 0, MESSAGE.length]), MESSAGE]);
  } else headers["content-type"] = "application/proto";
  return new Promise((resolve) => {
    const req = session[port].request(headers);
    let answer = "none";
    req.on("response", (h) => (answer = port === "grpc" ? String(h["grpc-status"] ?? answer) : String(h[":status"])));
    req.on("trailers", (h) => (answer = String(h["grpc-status"] ?? answer)));
    req.on("error", () => {});
    req.on("data", () => {});
    req.on("close", () => resolve(answer));
    req.end(body);
  });
}

describe("a call refused by authentication is logged and observed once, on both ports", () => {
  it.each([
    ["grpc", undefined, "16"],
    ["grpc", "Bearer not.a.token", "16"],
    ["connect", undefined, "401"],
    ["connect", "Bearer not.a.token", "401"],
  ] as const)("%s port, authorization %s", async (port, authorization, answer) => {
    const linesBefore = lines.length;
    const observedBefore = observed.length;
    expect(await send(port, authorization)).toBe(answer);
    // The rpc line is written when the refusal is answered; wait for it (bounded).
    for (let i = 0; i < 50 && !lines.slice(linesBefore).some((l) => l.msg === "rpc"); i++) await new Promise((r) => setTimeout(r, 10));
    const mine = lines.slice(linesBefore);
    const rpc = mine.filter((l) => l.msg === "rpc");
    expect(rpc).toHaveLength(1);
    expect(rpc[0]).toMatchObject({ method: PATH, protocol: port, code: "UNAUTHENTICATED", peer: expect.stringMatching(/^127\.0\.0\.1:\d+$/) });
    expect(mine.filter((l) => l.msg === "call rejected")).toHaveLength(1);
    expect(observed.slice(observedBefore)).toEqual([{ method: PATH, code: Code.Unauthenticated, protocol: port }]);
  });
});
