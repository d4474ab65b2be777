/**
 * Bounded, seeded fuzzing of both ports (issue #7.8): a few thousand
 * generated request bodies, header sets and raw HTTP/2 frames against a real
 * server over mTLS. Asserts: no crash (the server still serves a valid call
 * on both ports afterwards, and vitest sees no unhandled error); malformed
 * input never gets INTERNAL/UNKNOWN/HTTP 500, and messages stay generic (no
 * parser internals, no type names); nothing is decoded before
 * authentication: without a valid call token, a garbled body and a
 * well-formed one get the same UNAUTHENTICATED, and no handler runs.
 *
 * The PRNG is seeded (FUZZ_SEED overrides): a failure names its seed and case.
 */
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, type HandlerContext } from "@connectrpc/connect";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { GetTicketStatusRequestSchema, TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { mtlsSession } from "../support/connect-raw.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 0x7e11c0de);
const TENANT = "tenant-fuzz";
const PATHS = [
  TicketServiceContract.methods.getTicketStatus.path,
  TicketServiceContract.methods.cancelTicketsBatch.path,
  TicketServiceContract.methods.getTicketFull.path,
];
const GET_STATUS = TicketServiceContract.methods.getTicketStatus.path;
/** Messages a caller may see: generic, from src/runtime/server (never parser output or type names). */
const GENERIC =
  /^(unauthenticated|permission denied|malformed request message|malformed request|request too large|internal error|method not implemented|deadline exceeded|Deadline exceeded|call cancelled|request failed|malformed grpc-timeout|unsupported message encoding|compressed message without grpc-encoding|malformed metadata)$/;

/** mulberry32: small, fast, seeded. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
    bytes(n: number): Buffer {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
    chance: (p: number) => next() < p,
  };
}

let pki: TestPki;
let server: RpcServer;
let payment: MaterialSource;
let caPem: string;
let ctxToken: string;
/** x-fuzz-id of every call a handler ran for. */
const handled = new Set<string>();
const sessions: http2.ClientHttp2Session[] = [];

const ran = (ctx: HandlerContext) => handled.add(ctx.requestHeader.get("x-fuzz-id") ?? "?");

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  payment = await pki.material("payment-service");
  server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    connectPort: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: (req, ctx) => (ran(ctx), { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
        cancelTicketsBatch: (_req, ctx) => (ran(ctx), {}),
        getTicketFull: (_req, ctx) => (ran(ctx), {}),
      }),
    ],
  });
  ctxToken = await pki.contextToken({ tenantId: TENANT, userId: "u-fuzz" });
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await server?.stop(500);
  pki?.cleanup();
});

type Kind = "grpc" | "connect";

function open(kind: Kind): http2.ClientHttp2Session {
  const w = payment.current().workload;
  const s = mtlsSession({ port: kind === "grpc" ? server.port : server.connectPort!, ca: caPem, cert: w.certPem, key: w.keyPem });
  sessions.push(s);
  return s;
}

/** A call token for ticket-service's `path` without a context token (health needs none). */
function mintFor(path: string): Promise<string> {
  const w = payment.current().workload;
  return createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current }).mint({ audience: workloadSpiffeId("ticket-service"), method: path });
}

function mint(path: string): Promise<string> {
  const w = payment.current().workload;
  return createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current }).mint({
    audience: workloadSpiffeId("ticket-service"),
    method: path,
    contextToken: ctxToken,
  });
}

interface Answer {
  readonly code: number;
  readonly message: string;
  readonly httpStatus: number;
}

const CONNECT_CODES: Record<string, number> = Object.fromEntries(
  Object.entries(Code)
    .filter(([, v]) => typeof v === "number")
    .map(([k, v]) => [k.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase(), v as number]),
);

/** One request with exactly these headers and body; resolves with the status the server sent. */
function request(s: http2.ClientHttp2Session, kind: Kind, headers: http2.OutgoingHttpHeaders, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = s.request(headers);
    } catch (e) {
      return reject(e);
    }
    const chunks: Buffer[] = [];
    let httpStatus = 0;
    let grpc: { code: number; message: string } | undefined;
    const bound = setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 10_000);
    const readGrpc = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) grpc = { code: Number(h["grpc-status"]), message: decodeURIComponent(String(h["grpc-message"] ?? "")) };
    };
    stream.on("response", (h) => {
      httpStatus = Number(h[":status"]);
      readGrpc(h);
    });
    stream.on("trailers", readGrpc);
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", () => {});
    stream.on("close", () => {
      clearTimeout(bound);
      if (kind === "grpc") return resolve({ code: grpc?.code ?? -1, message: grpc?.message ?? `rst ${stream.rstCode}`, httpStatus });
      if (httpStatus === 200) return resolve({ code: 0, message: "", httpStatus });
      let err: { code?: string; message?: string } = {};
      try {
        err = JSON.parse(Buffer.concat(chunks).toString()) as typeof err;
      } catch {
        err = { code: "not-json", message: Buffer.concat(chunks).toString().slice(0, 120) };
      }
      resolve({ code: CONNECT_CODES[err.code ?? ""] ?? -1, message: err.message ?? "", httpStatus });
    });
    stream.end(body);
  });
}

/** Mostly honest gRPC framing; sometimes a wrong length or a compressed flag with no encoding. */
function grpcFrame(message: Buffer, r: ReturnType<typeof prng>): { bytes: Buffer; broken: boolean; compressed?: boolean } {
  const head = Buffer.alloc(5);
  const compressed = r.chance(0.05);
  const wrongLength = r.chance(0.05);
  head.writeUInt8(compressed ? 1 : 0, 0);
  head.writeUInt32BE(wrongLength ? message.length + 1 + r.int(10) : message.length, 1);
  return { bytes: Buffer.concat([head, message]), broken: compressed || wrongLength, compressed };
}

function randomBody(r: ReturnType<typeof prng>): Buffer {
  switch (r.int(5)) {
    case 0:
      return r.bytes(r.int(64));
    case 1:
      // A valid message with random bytes spliced in.
      return Buffer.concat([Buffer.from(toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "t" }))), r.bytes(r.int(8))]);
    case 2:
      // Unknown fields and deep/long varints.
      return Buffer.concat([Buffer.from([0xf8, 0xff, 0xff, 0xff, 0x0f]), r.bytes(r.int(32))]);
    case 3:
      return Buffer.from(`{"tenantId": ${r.int(2) ? "[" : '"x'}, "ticketId":`);
    default:
      return Buffer.from(toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: `t-${r.int(1000)}` })));
  }
}

const HEADER_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-";
/**
 * Random metadata, and on the gRPC port the protocol answer the request guard
 * (src/runtime/server/http2-guard.ts) gives before anything else when a generated
 * grpc-timeout or grpc-encoding is malformed or unsupported.
 */
function randomHeaders(r: ReturnType<typeof prng>, kind: Kind): { headers: Record<string, string>; refusal?: Code } {
  const out: Record<string, string> = {};
  let refusal: Code | undefined;
  for (let i = r.int(4); i > 0; i--) {
    let name = "x-";
    for (let j = 1 + r.int(12); j > 0; j--) name += r.pick([...HEADER_CHARS]);
    out[name] = r.bytes(r.int(40)).toString("base64");
  }
  if (r.chance(0.2)) {
    out["grpc-timeout"] = r.pick(["1S", "99999999H", "5m", "300000m", "abc", "-1m", "99999999999S", "5 S", "1.5S", "x".repeat(1 + r.int(1000))]);
    if (kind === "grpc" && !/^\d{1,8}[HMSmun]$/.test(out["grpc-timeout"])) refusal = Code.InvalidArgument;
  }
  if (r.chance(0.2)) out["connect-timeout-ms"] = r.pick(["1000", "abc", "-5", "99999999999999"]);
  if (r.chance(0.2)) out["tt-context"] = r.pick(["", "a.b.c", ctxToken.slice(0, 40)]);
  if (r.chance(0.1)) out["content-encoding"] = r.pick(["gzip", "br", "zstd"]);
  if (r.chance(0.1)) {
    out["grpc-encoding"] = r.pick(["identity", "gzip", "deflate", "snappy", "br", "x".repeat(1 + r.int(1000))]);
    if (kind === "grpc" && refusal === undefined && out["grpc-encoding"] !== "identity") refusal = Code.Unimplemented;
  }
  return refusal === undefined ? { headers: out } : { headers: out, refusal };
}

async function fuzzPort(kind: Kind, seed: number, count: number): Promise<string[]> {
  const r = prng(seed);
  const s = open(kind);
  const problems: string[] = [];
  for (let i = 0; i < count; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, count - i) }, async (_, k) => {
        const n = i + k;
        const path = r.pick(PATHS);
        const authenticated = r.chance(0.5);
        const json = kind === "connect" && r.chance(0.3);
        const body = randomBody(r);
        const fuzzId = `${seed}-${n}`;
        const generated = randomHeaders(r, kind);
        const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": path, ...generated.headers, "x-fuzz-id": fuzzId };
        if (kind === "grpc") Object.assign(headers, { "content-type": "application/grpc", te: "trailers" });
        else headers["content-type"] = json ? "application/json" : "application/proto";
        if (authenticated) {
          headers.authorization = `Bearer ${await mint(path)}`;
          headers["tt-context"] = ctxToken;
        } else if (r.chance(0.5)) {
          headers.authorization = r.pick(["Bearer ", "Bearer a.b.c", `Bearer ${r.bytes(30).toString("base64url")}`, "Basic Zm9vOmJhcg=="]);
        }
        const framed = kind === "grpc" ? grpcFrame(body, r) : { bytes: body, broken: false };
        // Only identity gets past the header checks, so a set compressed flag is the guard's INVALID_ARGUMENT,
        // from the message prefix alone, before authentication or any decoding (malformed input is never INTERNAL).
        if (framed.compressed && generated.refusal === undefined) generated.refusal = Code.InvalidArgument;
        let a: Answer;
        try {
          a = await request(s, kind, headers, framed.bytes);
        } catch (e) {
          problems.push(`#${n} ${kind} request failed to send: ${String(e)}`);
          return;
        }
        const label = `seed ${seed} #${n} ${kind} ${path} auth=${authenticated} -> code ${a.code} http ${a.httpStatus} "${a.message.slice(0, 80)}"`;
        if (a.code === -1) problems.push(`${label}: no status`);
        if (generated.refusal !== undefined) {
          // A malformed grpc-timeout (INVALID_ARGUMENT) or any grpc-encoding but identity
          // (UNIMPLEMENTED) is refused by the guard before authentication or any decoding, generically.
          if (a.code !== generated.refusal) problems.push(`${label}: expected the guard's ${Code[generated.refusal]}`);
          if (!GENERIC.test(a.message)) problems.push(`${label}: non-generic message`);
          if (handled.has(fuzzId)) problems.push(`${label}: a handler ran for a refused request`);
          return;
        }
        if (a.code === Code.Internal || a.code === Code.Unknown || a.httpStatus === 500) problems.push(`${label}: INTERNAL/500 for fuzzed input`);
        if (a.code !== 0 && !GENERIC.test(a.message)) problems.push(`${label}: non-generic message`);
        // Broken gRPC framing never yields a message to authenticate: grpc-js refuses it first (INVALID_ARGUMENT, via our status guard).
        const expected = framed.broken ? [Code.Unauthenticated, Code.InvalidArgument] : [Code.Unauthenticated];
        if (!authenticated && !expected.includes(a.code)) problems.push(`${label}: unauthenticated call answered with something else`);
        if (!authenticated && handled.has(fuzzId)) problems.push(`${label}: a handler ran without authentication`);
      }),
    );
  }
  return problems;
}

/** Random bytes after a valid preface and SETTINGS: the server must survive (we only care that it does). */
async function rawFrames(seed: number, count: number, port: number): Promise<void> {
  const r = prng(seed);
  const w = payment.current().workload;
  for (let i = 0; i < count; i += 40) {
    await Promise.all(
      Array.from({ length: Math.min(40, count - i) }, () => {
        const junk = r.bytes(9 + r.int(200));
        // Plausible frame headers now and then: a type/flags/stream the parser must reject cleanly.
        if (r.chance(0.5)) junk.writeUIntBE(junk.length - 9, 0, 3);
        return new Promise<void>((resolve) => {
          const socket = tls.connect({ host: "127.0.0.1", port, ca: caPem, cert: w.certPem, key: w.keyPem, ALPNProtocols: ["h2"], checkServerIdentity: () => undefined });
          const done = () => {
            clearTimeout(t);
            socket.destroy();
            resolve();
          };
          // The server either closes (GOAWAY) or waits for more bytes; either way it must stay up.
          const t = setTimeout(done, 300);
          socket.on("error", done);
          socket.on("close", done);
          socket.on("secureConnect", () => {
            socket.write(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"), Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]), junk]));
          });
        });
      }),
    );
  }
}

async function validCallServed(kind: Kind): Promise<void> {
  const s = open(kind);
  const msg = Buffer.from(toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "after-fuzz" })));
  const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": GET_STATUS, authorization: `Bearer ${await mint(GET_STATUS)}`, "tt-context": ctxToken };
  if (kind === "grpc") Object.assign(headers, { "content-type": "application/grpc", te: "trailers" });
  else headers["content-type"] = "application/proto";
  const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, msg.length]), msg]);
  const a = await request(s, kind, headers, kind === "grpc" ? framed : msg);
  expect(a.code, a.message).toBe(0);
}

describe(`fuzzing both ports (seed ${SEED})`, () => {
  it("gRPC port: 1200 generated requests", async () => {
    const problems = await fuzzPort("grpc", SEED, 1200);
    expect(problems.slice(0, 15)).toEqual([]);
  }, 60_000);

  it("Connect port: 1200 generated requests (binary and JSON)", async () => {
    const problems = await fuzzPort("connect", SEED + 1, 1200);
    expect(problems.slice(0, 15)).toEqual([]);
  }, 60_000);

  it("200 connections of raw HTTP/2 frame junk per port, then a valid call is still served on each", async () => {
    await rawFrames(SEED + 2, 200, server.port);
    await rawFrames(SEED + 3, 200, server.connectPort!);
    await validCallServed("grpc");
    await validCallServed("connect");
  }, 60_000);

  it("without a valid call token, a garbled body and a well-formed one get the same answer on both ports", async () => {
    for (const kind of ["grpc", "connect"] as const) {
      const s = open(kind);
      const valid = Buffer.from(toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "t" })));
      const garbled = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
      const answers = [];
      for (const body of [valid, garbled]) {
        const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": GET_STATUS, "tt-context": ctxToken };
        if (kind === "grpc") Object.assign(headers, { "content-type": "application/grpc", te: "trailers" });
        else headers["content-type"] = "application/proto";
        const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
        const a = await request(s, kind, headers, kind === "grpc" ? framed : body);
        answers.push({ code: a.code, message: a.message });
      }
      expect(answers, kind).toEqual([
        { code: Code.Unauthenticated, message: "unauthenticated" },
        { code: Code.Unauthenticated, message: "unauthenticated" },
      ]);
    }
  });

  it("an authenticated malformed body is INVALID_ARGUMENT with a generic message on both ports (binary and JSON)", async () => {
    const garbled = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const cases = [
      { kind: "grpc" as const, contentType: "application/grpc", body: Buffer.concat([Buffer.from([0, 0, 0, 0, garbled.length]), garbled]) },
      { kind: "connect" as const, contentType: "application/proto", body: garbled },
      { kind: "connect" as const, contentType: "application/json", body: Buffer.from('{"tenantId": 12, "nope": true}') },
    ];
    for (const c of cases) {
      const s = open(c.kind);
      const headers: http2.OutgoingHttpHeaders = {
        ":method": "POST",
        ":path": GET_STATUS,
        "content-type": c.contentType,
        authorization: `Bearer ${await mint(GET_STATUS)}`,
        "tt-context": ctxToken,
        ...(c.kind === "grpc" ? { te: "trailers" } : {}),
      };
      const a = await request(s, c.kind, headers, c.body);
      expect({ code: Code[a.code], message: a.message }, c.contentType).toEqual({ code: "InvalidArgument", message: expect.stringMatching(/^malformed request( message)?$/) });
      if (c.kind === "connect") expect(a.httpStatus).toBe(400);
    }
  });

  it("an authenticated malformed streaming request (Health Watch) on the Connect port ends INVALID_ARGUMENT, generic", async () => {
    const path = "/grpc.health.v1.Health/Watch";
    const s = open("connect");
    const garbled = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
    const body = Buffer.concat([Buffer.from([0, 0, 0, 0, garbled.length]), garbled]);
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/connect+proto",
      "connect-timeout-ms": "5000",
      authorization: `Bearer ${await mintFor(path)}`,
    };
    const stream = s.request(headers);
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve) => {
      stream.on("close", resolve);
      stream.end(body);
    });
    const all = Buffer.concat(chunks);
    expect(all[0]! & 0x02, "an end-stream message").toBe(2);
    const end = JSON.parse(all.subarray(5, 5 + all.readUInt32BE(1)).toString()) as { error?: { code?: string; message?: string } };
    expect(end.error).toEqual({ code: "invalid_argument", message: "malformed request" });
  });
});
