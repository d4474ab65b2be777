/**
 * Issue #11 item 7: one message size limit on both sides. Real mTLS servers
 * (gRPC and Connect ports) and real generated clients on loopback; the limit
 * comes from the `maxMessageBytes` option or TT_RPC_MAX_MESSAGE_BYTES. In every
 * direction a message of exactly the limit goes through and one byte more is
 * RESOURCE_EXHAUSTED: client send, server receive, server send, client receive.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { create, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { GetVenueRequestSchema, GetVenueResponseSchema } from "../../src/contracts/gen/tickettoken/venue/v1/venue_service_pb.ts";
import { VenueServiceContract, createVenueServiceClient, type VenueServiceClient } from "../../src/contracts/gen/tickettoken/venue/v1/venue_service_rpc.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { closeClient, type ServiceClientOptions } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { connectH2 } from "../support/connect-raw.ts";
import { readFileSync } from "node:fs";

const SMALL = 64 * 1024;
const LARGE = 1024 * 1024;
const DEFAULT = 4 * 1024 * 1024;
const TENANT = "tenant-size";

let pki: TestPki;
let caller: MaterialSource;
let ctxToken: string;
let handled = 0;
/** venue-service limited to SMALL by option; another at LARGE; one with the default. */
let small: RpcServer;
let large: RpcServer;
let byDefault: RpcServer;
const clients: object[] = [];

/**
 * A message of `schema` whose encoding is exactly `bytes` long, padding one
 * string field (the varint length prefix grows in steps, so search the few
 * lengths near it).
 */
function exactly<S extends DescMessage>(schema: S, bytes: number, build: (pad: string) => MessageShape<S>): MessageShape<S> {
  for (let n = Math.max(0, bytes - 64); n <= bytes; n++) {
    const m = build("p".repeat(n));
    if (toBinary(schema, m).length === bytes) return m;
  }
  throw new Error(`no padding gives ${bytes} bytes`);
}

/** The request asks for a response of `reply` bytes (0: small) and is itself `bytes` long (0: small). */
function request(opts: { bytes?: number; reply?: number }) {
  const venueId = `reply:${opts.reply ?? 0}:`;
  const build = (pad: string) => create(GetVenueRequestSchema, { tenantId: TENANT, venueId: venueId + pad });
  return opts.bytes ? exactly(GetVenueRequestSchema, opts.bytes, build) : build("");
}

function handler() {
  return implement(VenueServiceContract, {
    getVenue: (req) => {
      handled++;
      if (req.venueId === "quota") throw new ConnectError("venue quota used up", Code.ResourceExhausted);
      const reply = Number(req.venueId.split(":")[1]);
      const build = (pad: string) => create(GetVenueResponseSchema, { venue: { id: "v-1", tenantId: req.tenantId, name: pad } });
      return reply > 0 ? exactly(GetVenueResponseSchema, reply, build) : build("ok");
    },
  });
}

async function venueServer(maxMessageBytes: number | undefined, connectPort = false): Promise<RpcServer> {
  return createServer({
    identity: await pki.material("venue-service"),
    services: [handler()],
    port: 0,
    ...(connectPort ? { connectPort: 0 } : {}),
    logger: silentLogger(),
    ...(maxMessageBytes !== undefined ? { maxMessageBytes } : {}),
  });
}

function client(server: RpcServer, extra: Partial<ServiceClientOptions>): VenueServiceClient {
  const c = createVenueServiceClient({
    identity: caller,
    address: `127.0.0.1:${server.port}`,
    env: {},
    resilience: { registry: new ResilienceRegistry({ logger: silentLogger() }) },
    ...extra,
  });
  clients.push(c);
  return c;
}

async function codeOf(call: Promise<unknown>): Promise<{ code: Code | "OK"; message: string }> {
  try {
    await call;
    return { code: "OK", message: "" };
  } catch (err) {
    const e = ConnectError.from(err);
    return { code: e.code, message: e.rawMessage };
  }
}

const opts = () => ({ headers: { "tt-context": ctxToken }, timeoutMs: 20_000 });

beforeAll(async () => {
  pki = await createTestPki();
  caller = await pki.material("event-service");
  ctxToken = await pki.contextToken({ tenantId: TENANT, userId: "u-1" });
  [small, large, byDefault] = await Promise.all([venueServer(SMALL, true), venueServer(LARGE), venueServer(undefined)]);
});

afterAll(async () => {
  for (const c of clients) closeClient(c);
  await Promise.all([small, large, byDefault].map((s) => s?.stop(200)));
  pki?.cleanup();
});

describe("gRPC: the limit on each side, each direction", () => {
  it("client send: at the limit goes through; one byte more is refused by the client itself (never sent)", async () => {
    // The client's limit (from TT_RPC_MAX_MESSAGE_BYTES) is SMALL; the server would take LARGE.
    const c = client(large, { env: { TT_RPC_MAX_MESSAGE_BYTES: String(SMALL) } });
    expect(await codeOf(c.getVenue(request({ bytes: SMALL }), opts()))).toEqual({ code: "OK", message: "" });
    const before = handled;
    expect((await codeOf(c.getVenue(request({ bytes: SMALL + 1 }), opts()))).code).toBe(Code.ResourceExhausted);
    expect(handled).toBe(before);
  });

  it("server receive: at the limit goes through; one byte more is RESOURCE_EXHAUSTED `request too large`, handler never runs", async () => {
    const c = client(small, { maxMessageBytes: LARGE });
    expect(await codeOf(c.getVenue(request({ bytes: SMALL }), opts()))).toEqual({ code: "OK", message: "" });
    const before = handled;
    expect(await codeOf(c.getVenue(request({ bytes: SMALL + 1 }), opts()))).toEqual({ code: Code.ResourceExhausted, message: "request too large" });
    expect(handled).toBe(before);
  });

  it("server send: a response at the limit goes through; one byte more is RESOURCE_EXHAUSTED `response too large`", async () => {
    const c = client(small, { maxMessageBytes: LARGE });
    const ok = await c.getVenue(request({ reply: SMALL }), opts());
    expect(toBinary(GetVenueResponseSchema, ok).length).toBe(SMALL);
    expect(await codeOf(c.getVenue(request({ reply: SMALL + 1 }), opts()))).toEqual({ code: Code.ResourceExhausted, message: "response too large" });
  });

  it("client receive: a response at the client's limit goes through; one byte more is refused by the client", async () => {
    const c = client(large, { maxMessageBytes: SMALL });
    const ok = await c.getVenue(request({ reply: SMALL }), opts());
    expect(toBinary(GetVenueResponseSchema, ok).length).toBe(SMALL);
    expect((await codeOf(c.getVenue(request({ reply: SMALL + 1 }), opts()))).code).toBe(Code.ResourceExhausted);
  });

  it("without option or variable both sides use 4 MiB (not connect's ~4 GiB)", async () => {
    // A client allowed more shows the server's own default, both ways; a default client refuses to send more.
    const generous = client(byDefault, { maxMessageBytes: 2 * DEFAULT });
    expect((await codeOf(generous.getVenue(request({ bytes: DEFAULT }), opts()))).code).toBe("OK");
    expect(await codeOf(generous.getVenue(request({ bytes: DEFAULT + 1 }), opts()))).toEqual({ code: Code.ResourceExhausted, message: "request too large" });
    expect(await codeOf(generous.getVenue(request({ reply: DEFAULT + 1 }), opts()))).toEqual({ code: Code.ResourceExhausted, message: "response too large" });
    const plain = client(byDefault, {});
    const before = handled;
    expect((await codeOf(plain.getVenue(request({ bytes: DEFAULT + 1 }), opts()))).code).toBe(Code.ResourceExhausted);
    expect((await codeOf(plain.getVenue(request({ reply: DEFAULT + 1 }), opts()))).code).toBe(Code.ResourceExhausted);
    expect(handled).toBe(before + 1); // the second call ran; its answer was refused
  });

  it("a bad limit is refused where it is given, naming it", async () => {
    await expect(venueServer(10)).rejects.toThrow(/maxMessageBytes must be an integer number of bytes from 1024 to 2147483647, got 10/);
    expect(() => client(large, { env: { TT_RPC_MAX_MESSAGE_BYTES: "big" } })).toThrow(/TT_RPC_MAX_MESSAGE_BYTES must be an integer number of bytes/);
  });
});

describe("Connect port: the same limit both ways", () => {
  async function connectCall(req: ReturnType<typeof request>) {
    const w = caller.current().workload;
    const path = VenueServiceContract.methods.getVenue.path;
    const token = await createCallTokenMinter({ identity: w.spiffeId, key: w.jwt.current }).mint({
      audience: workloadSpiffeId("venue-service"),
      method: path,
      contextToken: ctxToken,
    });
    const h2 = connectH2({ port: small.connectPort!, ca: readFileSync(pkiPaths(pki.dir).caCert, "utf8"), cert: w.certPem, key: w.keyPem });
    try {
      return await h2.call({
        path,
        headers: [["authorization", `Bearer ${token}`], ["tt-context", ctxToken]],
        body: toBinary(GetVenueRequestSchema, req),
        timeoutMs: 20_000,
      });
    } finally {
      h2.close();
    }
  }

  it("request: at the limit answered, one byte more RESOURCE_EXHAUSTED; response: at the limit answered, one byte more RESOURCE_EXHAUSTED", async () => {
    expect((await connectCall(request({ bytes: SMALL }))).status).toBe(200);
    const before = handled;
    const refused = await connectCall(request({ bytes: SMALL + 1 }));
    expect({ code: refused.code, message: refused.message }).toEqual({ code: Code.ResourceExhausted, message: "request too large" });
    expect(handled).toBe(before);
    const ok = await connectCall(request({ reply: SMALL }));
    expect({ status: ok.status, bytes: ok.body.length }).toEqual({ status: 200, bytes: SMALL });
    // Generic words, as on the gRPC port: never connect-node's own message or the sizes.
    const tooLarge = await connectCall(request({ reply: SMALL + 1 }));
    expect({ code: tooLarge.code, message: tooLarge.message }).toEqual({ code: Code.ResourceExhausted, message: "response too large" });
    // The handler's own RESOURCE_EXHAUSTED is its answer, passed on unchanged.
    const own = await connectCall(create(GetVenueRequestSchema, { tenantId: TENANT, venueId: "quota" }));
    expect({ code: own.code, message: own.message }).toEqual({ code: Code.ResourceExhausted, message: "venue quota used up" });
  });
});
