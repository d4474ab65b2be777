/**
 * Adversarial suite (spec section 4): real createServer instances on
 * 127.0.0.1 over HTTP/2 + mTLS with the dev PKI, attacked at every layer:
 * TLS (missing, foreign, expired and malformed client certificates, a server
 * with the wrong identity, plaintext), the per-call JWT (every header and
 * claim rule), the context token, contract authorization and tenancy, and
 * key / certificate rotation. Each case asserts the exact gRPC status code,
 * the generic message, that the handler never ran, and (where useful) that
 * the server log names the reason; finally, that no token ever reached the
 * log.
 *
 * Token-level cases use a raw grpc-js client so the metadata is exactly what
 * the case says; TLS cases use the framework's generated client (and raw
 * grpc-js where the difference matters).
 */
import { X509Certificate, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import * as tls from "node:tls";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type HandlerContext } from "@connectrpc/connect";
import type { JWK } from "jose";
import { pino } from "pino";
import { TicketServiceContract, createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { EventServiceContract } from "../../src/contracts/gen/tickettoken/event/v1/event_service_rpc.ts";
import {
  GetTicketStatusRequestSchema,
  GetTicketStatusResponseSchema,
  TicketService,
  TicketStatus,
} from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { GetEventRequestSchema, GetEventResponseSchema } from "../../src/contracts/gen/tickettoken/event/v1/event_service_pb.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient } from "../../src/runtime/client/service-client.ts";
import { createGrpcJsTransport } from "../../src/runtime/client/grpc-js-transport.ts";
import { callTokenInterceptor, rotatingMinter } from "../../src/runtime/client/security-interceptor.ts";
import { callContext, type VerifiedCallContext } from "../../src/runtime/auth/call-context.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import type { IdentityMaterial, MaterialSource } from "../../src/runtime/identity/material.ts";
import { pkiPaths, rotateJwtKey, rotateLeaf } from "../../src/devtools/pki/dev-ca.ts";
import { importPrivateKeyPem, type CaMaterial, type IssuedCert } from "../../src/devtools/pki/cert-issue.ts";
import { issueTestLeaf, type TestLeafKind } from "../support/test-certs.ts";
import * as x509 from "../../src/runtime/identity/x509.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { rawGrpcUnary } from "../support/adversarial-h2.ts";
import { createAdversarialKit, type Attempt } from "../support/adversarial-cases.ts";

const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const OTHER_TENANT = "0b6f3c1e-9f7e-4d1a-8c55-3e2d1f0a9b77";
const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";
const DEADLINE_MS = 5000;
const OK = 0;
const UNAUTHENTICATED = 16;
const PERMISSION_DENIED = 7;
const UNAVAILABLE = 14;

const TICKET_PATH = TicketServiceContract.methods.getTicketStatus.path;
const EVENT_PATH = EventServiceContract.methods.getEvent.path;
const TICKET_ID = workloadSpiffeId("ticket-service");

// ---------------------------------------------------------------- shared state

/** Every server log line (pino JSON), in order. */
const logLines: string[] = [];
const logStream = new Writable({
  write(chunk: Buffer | string, _enc, cb) {
    logLines.push(chunk.toString());
    cb();
  },
});
const logger = pino({ level: "info" }, logStream);
const logSince = (mark: number) => logLines.slice(mark).join("");
/** The `reason` of every log line since `mark`, one per line (unescaped, unlike the raw JSON text). */
const reasonsSince = (mark: number) =>
  logLines
    .slice(mark)
    .map((l) => (JSON.parse(l) as { reason?: string }).reason)
    .filter((r) => r !== undefined)
    .join("\n");

/** Every token (call or context) this suite put on the wire: none may ever show up in a log. */
const secrets = new Set<string>();
const secret = <T extends string>(t: T): T => (secrets.add(t), t);

interface Handled {
  readonly method: string;
  readonly ctx: VerifiedCallContext;
  readonly tenantField: string;
  readonly server: string;
}
const handled: Handled[] = [];

let pki: TestPki;
let caPem: string;
let pkiCa: CaMaterial;
let ticketServer: RpcServer;
let eventServer: RpcServer;
let ticketAddr: string;
let eventAddr: string;
const mats = new Map<WorkloadName, MaterialSource>();
const rawClients = new Map<string, grpc.Client>();
const frameworkClients: object[] = [];
const closers: Array<() => void> = [];
let ctxToken: string; // tenant TENANT, scope events:read
let ctxNoScope: string; // tenant TENANT, no scopes
let ctxOtherTenant: string; // tenant OTHER_TENANT, scope events:read

async function mat(w: WorkloadName): Promise<MaterialSource> {
  let m = mats.get(w);
  if (!m) {
    m = await pki.material(w);
    mats.set(w, m);
  }
  return m;
}
const m = (w: WorkloadName): IdentityMaterial => mats.get(w)!.current();

function recordTicket(server: string) {
  return implement(TicketServiceContract, {
    getTicketStatus: (req, ctx: HandlerContext) => {
      handled.push({ method: "getTicketStatus", ctx: callContext(ctx), tenantField: req.tenantId, server });
      return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
    },
  });
}

beforeAll(async () => {
  pki = await createTestPki();
  caPem = readFileSync(pkiPaths(pki.dir).caCert, "utf8");
  pkiCa = {
    cert: new x509.X509Certificate(caPem),
    privateKey: await importPrivateKeyPem(readFileSync(pkiPaths(pki.dir).caKey, "utf8")),
  };
  for (const w of ["ticket-service", "event-service", "payment-service", "order-service", "ops"] as const) await mat(w);
  ticketServer = await createServer({ identity: m2("ticket-service"), port: 0, logger, services: [recordTicket("ticket")] });
  eventServer = await createServer({
    identity: m2("event-service"),
    port: 0,
    logger,
    services: [
      implement(EventServiceContract, {
        getEvent: (req, ctx: HandlerContext) => {
          handled.push({ method: "getEvent", ctx: callContext(ctx), tenantField: req.tenantId, server: "event" });
          return { event: { id: req.eventId, tenantId: req.tenantId, name: "Jazz Night" } };
        },
      }),
    ],
  });
  ticketAddr = `127.0.0.1:${ticketServer.port}`;
  eventAddr = `127.0.0.1:${eventServer.port}`;
  ctxToken = secret(await pki.contextToken({ tenantId: TENANT, userId: USER, scopes: ["events:read"] }));
  ctxNoScope = secret(await pki.contextToken({ tenantId: TENANT, userId: USER, scopes: [] }));
  ctxOtherTenant = secret(await pki.contextToken({ tenantId: OTHER_TENANT, userId: USER, scopes: ["events:read"] }));
});

function m2(w: WorkloadName): MaterialSource {
  return mats.get(w)!;
}

afterAll(async () => {
  for (const c of rawClients.values()) c.close();
  frameworkClients.forEach(closeClient);
  closers.forEach((c) => c());
  await Promise.all([ticketServer?.stop(500), eventServer?.stop(500)]);
  pki?.cleanup();
});

// ---------------------------------------------------------------- raw grpc-js calls

interface Outcome {
  readonly code: number;
  readonly details: string;
  readonly value?: unknown;
}

/** SNI names the service (the server check is off here): an IP as TLS server name is deprecated (DEP0123). */
const SNI = { "grpc.ssl_target_name_override": "ticket-service" };

function sslCredentials(pem: { key: string; cert: string } | undefined): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(caPem),
    pem ? Buffer.from(pem.key) : null,
    pem ? Buffer.from(pem.cert) : null,
    // We test the server here; the framework client's own server check has its own case.
    { checkServerIdentity: () => undefined },
  );
}

/** A raw grpc-js client presenting `caller`'s real certificate (one connection per caller and server). */
function rawClient(caller: WorkloadName, address: string): grpc.Client {
  const key = `${caller}@${address}`;
  let c = rawClients.get(key);
  if (!c) {
    const w = m(caller).workload;
    c = new grpc.Client(address, sslCredentials({ key: w.keyPem, cert: w.certPem }), SNI);
    rawClients.set(key, c);
  }
  return c;
}

function unary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  path: string,
  input: I,
  output: O,
  request: MessageInitShape<I>,
  md: grpc.Metadata,
): Promise<Outcome> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      path,
      (msg: unknown) => Buffer.from(toBinary(input, msg as never)),
      (buf: Buffer) => fromBinary(output, buf),
      create(input, request),
      md,
      { deadline: Date.now() + DEADLINE_MS },
      (err, value) => resolve(err ? { code: err.code, details: err.details } : { code: OK, details: "", value }),
    );
  });
}

/** Outcome of a connect-es client call: code 0 on success, else the ConnectError's code and raw message. */
async function outcome(p: Promise<unknown>): Promise<Outcome> {
  try {
    return { code: OK, details: "", value: await p };
  } catch (err) {
    const ce = ConnectError.from(err);
    return { code: ce.code, details: ce.rawMessage };
  }
}

// ---------------------------------------------------------------- token forging and the token / authorization table

// The table lives in test/support/adversarial-cases.ts: test/security/port-parity.test.ts runs it against every port.
const { realToken, bearer, ticket, tokenCases } = createAdversarialKit({
  material: m,
  pkiDir: () => pki.dir,
  tokens: () => ({ ctxToken, ctxNoScope, ctxOtherTenant }),
  secret,
});

async function send(a: Attempt): Promise<Outcome> {
  const md = new grpc.Metadata();
  for (const v of a.authorization ?? []) md.add("authorization", v);
  if (a.context !== undefined) md.add("tt-context", a.context);
  for (const [k, v] of Object.entries(a.headers ?? {})) md.add(k, v);
  const request = { tenantId: a.tenantId ?? TENANT };
  return a.target === "ticket"
    ? unary(rawClient(a.caller, ticketAddr), TICKET_PATH, GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, { ...request, ticketId: "t-1" }, md)
    : unary(rawClient(a.caller, eventAddr), EVENT_PATH, GetEventRequestSchema, GetEventResponseSchema, { ...request, eventId: "e-1" }, md);
}


describe("per-call token, context token and authorization (raw grpc-js over mTLS)", () => {
  for (const c of tokenCases) {
    it(`${c.name} -> ${Code[c.code] ?? "OK"}`, async () => {
      const attempt = await c.build();
      const handledBefore = handled.length;
      const mark = logLines.length;
      const out = await send(attempt);
      expect(out.code, `${out.code} ${out.details}`).toBe(c.code);
      if (c.code === OK) {
        expect(handled.length).toBe(handledBefore + 1);
        c.then?.(out, handled.at(-1));
      } else {
        expect(handled.length, "a rejected call reached the handler").toBe(handledBefore);
        expect(out.details).toBe(c.code === UNAUTHENTICATED ? "unauthenticated" : "permission denied");
        expect(logSince(mark)).toMatch(/"msg":"call rejected"/);
      }
      if (c.reason) expect(reasonsSince(mark)).toMatch(c.reason);
    });
  }

  it("replayed jti: the same valid token is accepted once, then UNAUTHENTICATED", async () => {
    const attempt = await ticket(realToken("payment-service", TICKET_ID, TICKET_PATH, ctxToken));
    const first = await send(attempt);
    expect(first.code).toBe(OK);
    const handledBefore = handled.length;
    const mark = logLines.length;
    const second = await send(attempt);
    expect(second).toEqual({ code: UNAUTHENTICATED, details: "unauthenticated" });
    expect(handled.length).toBe(handledBefore);
    expect(reasonsSince(mark)).toMatch(/jti \S+ replayed/);
    // Over another connection of the same peer it is still a replay.
    const other = new grpc.Client(ticketAddr, sslCredentials({ key: m("payment-service").workload.keyPem, cert: m("payment-service").workload.certPem }), {
      ...SNI,
      "grpc.use_local_subchannel_pool": 1,
    });
    closers.push(() => other.close());
    const md = new grpc.Metadata();
    md.add("authorization", attempt.authorization![0]!);
    md.add("tt-context", ctxToken);
    const third = await unary(other, TICKET_PATH, GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, { tenantId: TENANT, ticketId: "t-1" }, md);
    expect(third.code).toBe(UNAUTHENTICATED);
  });

  /*
   * Spec section 4 requires "exactly one authorization value". Node's HTTP/2
   * layer treats `authorization` as a single-value header and keeps only the
   * first field; src/runtime/server/listeners.ts puts every value back from the raw
   * header list, so the security interceptor sees and refuses them.
   */
  it("two authorization header fields on the wire (valid token first, garbage second) -> UNAUTHENTICATED", async () => {
    // Node's http2 client refuses to send this (ERR_HTTP2_HEADER_SINGLE_VALUE), so hand-built HTTP/2 frames.
    const w = m("payment-service").workload;
    const good = secret(await realToken("payment-service", TICKET_ID, TICKET_PATH, ctxToken));
    const requestId = `two-authz-${randomBytes(4).toString("hex")}`;
    const handledBefore = handled.length;
    const mark = logLines.length;
    const res = await rawGrpcUnary({
      port: ticketServer.port,
      ca: caPem,
      cert: w.certPem,
      key: w.keyPem,
      headers: [
        [":method", "POST"],
        [":scheme", "https"],
        [":path", TICKET_PATH],
        [":authority", ticketAddr],
        ["content-type", "application/grpc"],
        ["te", "trailers"],
        ["authorization", `Bearer ${good}`],
        ["authorization", "Bearer second-value-the-server-must-not-ignore"],
        ["tt-context", ctxToken],
        ["x-request-id", requestId],
      ],
      message: toBinary(GetTicketStatusRequestSchema, create(GetTicketStatusRequestSchema, { tenantId: TENANT, ticketId: "t-1" })),
      timeoutMs: DEADLINE_MS,
    });
    const line = logLines.slice(mark).find((l) => l.includes(requestId) && l.includes('"msg":"rpc"'));
    expect(res.endedWithTrailers || res.rstCode !== undefined, "the server never answered the stream").toBe(true);
    // Spec section 4: "exactly one authorization value". Expected: the call is rejected and never reaches the handler.
    expect(
      { handlerRan: handled.length > handledBefore, loggedCode: line ? (JSON.parse(line) as { code?: string }).code : undefined },
      "server accepted a request carrying two authorization header fields (it only looked at the first)",
    ).toEqual({ handlerRan: false, loggedCode: "UNAUTHENTICATED" });
  });
});

// ---------------------------------------------------------------- TLS layer

/** payment-service's material with its certificate and key swapped for `leaf` (JWT keys unchanged). */
function withLeaf(base: MaterialSource, leaf: { certPem: string; keyPem: string }): MaterialSource {
  const cur = base.current();
  const swapped: IdentityMaterial = { workload: { ...cur.workload, certPem: leaf.certPem, keyPem: leaf.keyPem }, bundle: cur.bundle };
  return { current: () => swapped, onChange: () => () => {}, refresh: async () => false, close() {} };
}

interface TlsCase {
  readonly name: string;
  readonly kind: Exclude<TestLeafKind, "good">;
  /** Rejected by OpenSSL in the handshake (true) or by our per-call leaf checks (false). */
  readonly handshake: boolean;
  /** What the server log says. */
  readonly reason: RegExp;
  /** issueTestLeaf's workload (the identity in the URI SAN). */
  readonly workload?: WorkloadName;
}

const tlsCases: TlsCase[] = [
  { name: "certificate from another CA", kind: "other-ca", handshake: true, reason: /unable to get local issuer certificate/ },
  { name: "expired leaf", kind: "expired", handshake: true, reason: /certificate has expired/ },
  { name: "leaf with CA:TRUE", kind: "ca-true", handshake: false, reason: /client certificate rejected: leaf has basicConstraints CA:TRUE/ },
  { name: "two URI SANs (ops + payment-service)", kind: "two-uri-sans", workload: "ops", handshake: false, reason: /leaf has 2 URI SANs; exactly one is required/ },
  { name: "no URI SAN", kind: "no-uri-san", handshake: false, reason: /leaf has 0 URI SANs/ },
  { name: "wrong trust domain (evil.example)", kind: "other-trust-domain", handshake: false, reason: /trust domain "evil.example" is not "tickettoken.internal"/ },
  { name: "leaf with keyCertSign", kind: "key-cert-sign", handshake: false, reason: /keyUsage includes keyCertSign/ },
  { name: "SPIFFE ID with dot segments", kind: "bad-spiffe-grammar", handshake: false, reason: /URI SAN is not a valid SPIFFE ID/ },
  { name: "SPIFFE ID not of the ns/<env>/sa/<name> shape", kind: "bad-shape", handshake: false, reason: /client certificate rejected: SPIFFE ID/ },
];

describe("TLS layer: bad client certificates, wrong server, plaintext", () => {
  const leaves = new Map<string, IssuedCert>();
  beforeAll(async () => {
    for (const c of tlsCases) leaves.set(c.kind, await issueTestLeaf(pkiCa, c.kind, { workload: c.workload ?? "payment-service" }));
  });

  // Leaves OpenSSL accepts: only our per-call leaf checks stand between them and the handler.
  for (const c of tlsCases.filter((t) => !t.handshake)) {
    it(`framework client with ${c.name} -> UNAUTHENTICATED (${c.handshake ? "TLS handshake" : "per-call leaf check"})`, async () => {
      const leaf = leaves.get(c.kind)!;
      const client = createTicketServiceClient({ identity: withLeaf(m2("payment-service"), leaf), address: ticketAddr });
      frameworkClients.push(client);
      const handledBefore = handled.length;
      const mark = logLines.length;
      const out = await outcome(client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: DEADLINE_MS }));
      expect(out.code, out.details).toBe(UNAUTHENTICATED);
      expect(out.details).toBe("unauthenticated");
      expect(handled.length).toBe(handledBefore);
      await until(() => c.reason.test(reasonsSince(mark)));
      expect(reasonsSince(mark)).toMatch(c.reason);
    });
  }

  // Leaves OpenSSL refuses (chain, validity) never get past the TLS handshake: a raw client sees only a
  // closed connection (Node sends no alert for a refused chain), the server logs why. Leaves OpenSSL
  // accepts reach the per-call leaf checks and every call on them is UNAUTHENTICATED.
  for (const c of tlsCases) {
    it(`raw grpc-js with ${c.name} -> ${c.handshake ? "refused in the TLS handshake" : "UNAUTHENTICATED"}`, async () => {
      const leaf = leaves.get(c.kind)!;
      const client = new grpc.Client(ticketAddr, sslCredentials({ key: leaf.keyPem, cert: leaf.certPem }), SNI);
      closers.push(() => client.close());
      const md = new grpc.Metadata();
      md.add("authorization", bearer(await realToken("payment-service", TICKET_ID, TICKET_PATH, ctxToken)));
      md.add("tt-context", ctxToken);
      const handledBefore = handled.length;
      const mark = logLines.length;
      const out = await unary(client, TICKET_PATH, GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, { tenantId: TENANT, ticketId: "t-1" }, md);
      expect(handled.length).toBe(handledBefore);
      if (c.handshake) {
        // grpc-js has no TLS reason to show (the server closed the connection in the handshake): UNAVAILABLE.
        expect(out.code, out.details).toBe(UNAVAILABLE);
        await until(() => /TLS handshake rejected/.test(logSince(mark)));
        expect(logSince(mark)).toMatch(/"msg":"TLS handshake rejected"/);
        expect(logSince(mark)).not.toMatch(/"msg":"call rejected"/);
      } else {
        expect(out.code, out.details).toBe(UNAUTHENTICATED);
        expect(out.details).toBe("unauthenticated");
      }
    });
  }

  it("client certificate refused in the TLS handshake (other CA, expired): framework client -> UNAUTHENTICATED naming the reason, server never sees a call", async () => {
    for (const [kind, ownReason, logReason] of [
      ["other-ca", /does not chain to the trust bundle/, /UNABLE_TO_GET_ISSUER_CERT_LOCALLY|UNABLE_TO_VERIFY_LEAF_SIGNATURE/],
      ["expired", /expired at/, /CERT_HAS_EXPIRED/],
    ] as const) {
      const leaf = leaves.get(kind)!;
      const client = createTicketServiceClient({ identity: withLeaf(m2("payment-service"), leaf), address: ticketAddr });
      frameworkClients.push(client);
      const handledBefore = handled.length;
      const mark = logLines.length;
      const out = await outcome(client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: DEADLINE_MS }));
      expect({ kind, code: out.code }).toEqual({ kind, code: UNAUTHENTICATED });
      // The client knows before the server closes on it: its own certificate fails its own trust bundle.
      expect(out.details).toMatch(/^mTLS handshake failed: .*tt-rpc: client certificate unusable: /);
      expect(out.details).toMatch(ownReason);
      expect(handled.length).toBe(handledBefore);
      expect(logSince(mark)).not.toMatch(/"msg":"call rejected"/);

      // The server's own verdict on that certificate, from a raw TLS client that skips the pre-check.
      const raw = tls.connect({ host: "127.0.0.1", port: ticketServer.port, ca: caPem, cert: leaf.certPem, key: leaf.keyPem, ALPNProtocols: ["h2"], checkServerIdentity: () => undefined });
      raw.on("error", () => {});
      await until(() => logReason.test(reasonsSince(mark)));
      raw.destroy();
      expect(reasonsSince(mark), `${kind}: the server log does not say why the certificate was refused`).toMatch(logReason);
    }
  });

  it("no client certificate: TLS alert; raw grpc-js -> UNAVAILABLE naming it, the framework transport -> UNAUTHENTICATED; handler never runs", async () => {
    const handledBefore = handled.length;
    const mark = logLines.length;
    const raw = new grpc.Client(ticketAddr, sslCredentials(undefined), SNI);
    closers.push(() => raw.close());
    const md = new grpc.Metadata();
    md.add("authorization", bearer(await realToken("payment-service", TICKET_ID, TICKET_PATH, ctxToken)));
    md.add("tt-context", ctxToken);
    const rawOut = await unary(raw, TICKET_PATH, GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, { tenantId: TENANT, ticketId: "t-1" }, md);
    expect(rawOut.code, rawOut.details).toBe(UNAVAILABLE);
    expect(rawOut.details).toMatch(/alert certificate required/);

    // The framework's transport (status mapping + call-token interceptor), with credentials lacking a certificate.
    const transport = createGrpcJsTransport({
      address: ticketAddr,
      credentials: sslCredentials(undefined),
      channelOptions: SNI,
      interceptors: [callTokenInterceptor(rotatingMinter(m2("payment-service")), TICKET_ID)],
    });
    closers.push(() => transport.close());
    const out = await outcome(
      createClient(TicketService, transport).getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: DEADLINE_MS }),
    );
    expect(out.code, out.details).toBe(UNAUTHENTICATED);
    expect(out.details).toMatch(/^mTLS handshake failed: .*alert certificate required/);
    expect(handled.length).toBe(handledBefore);
    await until(() => /peer did not return a certificate/.test(reasonsSince(mark)));
    expect(reasonsSince(mark)).toMatch(/peer did not return a certificate/);
  });

  it("server with the wrong identity: a ticket-service client refuses event-service -> UNAUTHENTICATED, handler never runs", async () => {
    const client = createTicketServiceClient({ identity: m2("payment-service"), address: eventAddr });
    frameworkClients.push(client);
    const handledBefore = handled.length;
    const mark = logLines.length;
    const out = await outcome(client.getTicketStatus({ tenantId: TENANT, ticketId: "t-1" }, { headers: { "tt-context": ctxToken }, timeoutMs: DEADLINE_MS }));
    expect(out.code, out.details).toBe(UNAUTHENTICATED);
    expect(out.details).toMatch(/server identity check failed: expected spiffe:\/\/tickettoken.internal\/ns\/dev\/sa\/ticket-service, server presented spiffe:\/\/tickettoken.internal\/ns\/dev\/sa\/event-service/);
    expect(handled.length).toBe(handledBefore);
    // The client gave up before sending anything: the event server never saw a call.
    expect(logSince(mark)).not.toMatch(/"msg":"rpc"/);
  });

  it("plaintext h2c to the mTLS port: grpc-js insecure client -> UNAUTHENTICATED \"TLS required\", handler never runs", async () => {
    const client = new grpc.Client(ticketAddr, grpc.credentials.createInsecure());
    closers.push(() => client.close());
    const md = new grpc.Metadata();
    md.add("authorization", bearer(await realToken("payment-service", TICKET_ID, TICKET_PATH, ctxToken)));
    md.add("tt-context", ctxToken);
    const handledBefore = handled.length;
    const out = await unary(client, TICKET_PATH, GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, { tenantId: TENANT, ticketId: "t-1" }, md);
    expect(out.code, out.details).toBe(UNAUTHENTICATED);
    expect(out.details).toMatch(/^TLS required/);
    expect(handled.length).toBe(handledBefore);
  });

  it("control: the framework client with payment-service's real certificate succeeds", async () => {
    const client = createTicketServiceClient({ identity: m2("payment-service"), address: ticketAddr });
    frameworkClients.push(client);
    const res = await client.getTicketStatus({ tenantId: TENANT, ticketId: "t-9" }, { headers: { "tt-context": ctxToken }, timeoutMs: DEADLINE_MS });
    expect(res.status).toBe(TicketStatus.SOLD);
    expect(handled.at(-1)?.ctx.caller.workload).toBe("payment-service");
  });
});

/** Polls (the TLS server logs a rejected handshake asynchronously to the client's error). */
async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

// ---------------------------------------------------------------- rotation (own PKI: it rewrites files)

describe("rotation without restart", () => {
  let rpki: TestPki;
  let serverMat: MaterialSource;
  let payMat: MaterialSource;
  let server: RpcServer;
  let addr: string;
  let rca: string;
  let rctx: string;

  beforeAll(async () => {
    rpki = await createTestPki();
    rca = readFileSync(pkiPaths(rpki.dir).caCert, "utf8");
    serverMat = await rpki.material("ticket-service");
    payMat = await rpki.material("payment-service");
    server = await createServer({ identity: serverMat, port: 0, logger, services: [recordTicket("rotation")] });
    addr = `127.0.0.1:${server.port}`;
    rctx = secret(await rpki.contextToken({ tenantId: TENANT, userId: USER, scopes: [] }));
  });
  afterAll(async () => {
    await server?.stop(500);
    rpki?.cleanup();
  });

  async function callWith(key: JWK): Promise<Outcome> {
    const w = payMat.current().workload;
    const token = secret(await createCallTokenMinter({ identity: w.spiffeId, key }).mint({ audience: TICKET_ID, method: TICKET_PATH, contextToken: rctx }));
    const c = new grpc.Client(addr, grpc.credentials.createSsl(Buffer.from(rca), Buffer.from(w.keyPem), Buffer.from(w.certPem), { checkServerIdentity: () => undefined }), SNI);
    try {
      const md = new grpc.Metadata();
      md.add("authorization", `Bearer ${token}`);
      md.add("tt-context", rctx);
      return await unary(c, TICKET_PATH, GetTicketStatusRequestSchema, GetTicketStatusResponseSchema, { tenantId: TENANT, ticketId: "t-1" }, md);
    } finally {
      c.close();
    }
  }

  it("rotated-out JWT key -> UNAUTHENTICATED; the overlap key and the new key work", async () => {
    const k0 = payMat.current().workload.jwt.current;
    expect((await callWith(k0)).code).toBe(OK);
    await rotateJwtKey({ dir: rpki.dir, workload: "payment-service" });
    // Second rotation, past the grace period of the first: k0 is dropped from the bundle.
    const { published } = await rotateJwtKey({ dir: rpki.dir, workload: "payment-service", now: new Date(Date.now() + 2 * 3_600_000) });
    expect(published).not.toContain(k0.kid);
    expect(await serverMat.refresh()).toBe(true);
    expect(await payMat.refresh()).toBe(true);
    const [k2, k1] = payMat.current().workload.jwt.keys;

    const handledBefore = handled.length;
    const mark = logLines.length;
    const old = await callWith(k0);
    expect(old).toEqual({ code: UNAUTHENTICATED, details: "unauthenticated" });
    expect(handled.length).toBe(handledBefore);
    expect(reasonsSince(mark)).toMatch(new RegExp(`kid "${k0.kid}" is not published for peer`));

    expect((await callWith(k1!)).code).toBe(OK);
    expect((await callWith(k2!)).code).toBe(OK);
    // The framework client picks up the new current key on its own.
    const client = createTicketServiceClient({ identity: payMat, address: addr });
    frameworkClients.push(client);
    const res = await client.getTicketStatus({ tenantId: TENANT, ticketId: "t-2" }, { headers: { "tt-context": rctx }, timeoutMs: DEADLINE_MS });
    expect(res.status).toBe(TicketStatus.SOLD);
  });

  function serverFingerprint(): Promise<string> {
    const ops = pkiPaths(rpki.dir).workload("ops");
    return new Promise((resolve, reject) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port: server.port,
        ca: rca,
        cert: readFileSync(ops.cert),
        key: readFileSync(ops.key),
        ALPNProtocols: ["h2"],
        checkServerIdentity: () => undefined,
      });
      s.setTimeout(DEADLINE_MS, () => s.destroy(new Error("timeout")));
      s.once("secureConnect", () => {
        const fp = s.getPeerCertificate().fingerprint256;
        s.destroy();
        resolve(fp);
      });
      s.once("error", reject);
    });
  }

  it("certificate rotated on disk is served to new connections without restart; calls still succeed", async () => {
    const client = createTicketServiceClient({ identity: payMat, address: addr });
    frameworkClients.push(client);
    await client.getTicketStatus({ tenantId: TENANT, ticketId: "t-3" }, { headers: { "tt-context": rctx }, timeoutMs: DEADLINE_MS });

    const before = await serverFingerprint();
    const diskBefore = new X509Certificate(readFileSync(pkiPaths(rpki.dir).workload("ticket-service").cert)).fingerprint256;
    expect(before).toBe(diskBefore);

    await rotateLeaf({ dir: rpki.dir, workload: "ticket-service" });
    expect(await serverMat.refresh()).toBe(true);
    const diskAfter = new X509Certificate(readFileSync(pkiPaths(rpki.dir).workload("ticket-service").cert)).fingerprint256;
    expect(diskAfter).not.toBe(diskBefore);
    expect(await serverFingerprint()).toBe(diskAfter);

    // The existing connection keeps working, and so does a brand-new client (new connection, new certificate).
    const again = await client.getTicketStatus({ tenantId: TENANT, ticketId: "t-4" }, { headers: { "tt-context": rctx }, timeoutMs: DEADLINE_MS });
    expect(again.status).toBe(TicketStatus.SOLD);
    const fresh = createTicketServiceClient({ identity: payMat, address: addr });
    frameworkClients.push(fresh);
    const res = await fresh.getTicketStatus({ tenantId: TENANT, ticketId: "t-5" }, { headers: { "tt-context": rctx }, timeoutMs: DEADLINE_MS });
    expect(res.status).toBe(TicketStatus.SOLD);
    expect(handled.at(-1)).toMatchObject({ server: "rotation", tenantField: TENANT });
  });
});

// ---------------------------------------------------------------- logs

describe("server log", () => {
  it("records rejection reasons and never contains a token", () => {
    const text = logLines.join("");
    expect(text).toMatch(/"msg":"call rejected"/);
    expect(text).toMatch(/"reason":"call token alg \\"none\\" not allowed \(ES256 only\)"/);
    expect(secrets.size).toBeGreaterThan(40);
    for (const token of secrets) {
      expect(text.includes(token), "a token reached the log").toBe(false);
      for (const token1 of token.split(", ")) {
        const sig = token1.split(".")[2];
        if (sig && sig.length >= 20) expect(text.includes(sig), "a token signature reached the log").toBe(false);
      }
    }
    expect(text).not.toMatch(/Bearer ey/);
  });
});
