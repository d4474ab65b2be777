/**
 * What opens the breaker, by where the status came from (issue #8.4): an
 * INTERNAL the target's server sent as its grpc-status is a live server's
 * decision and never counts; connection resets, and the INTERNAL/UNKNOWN
 * grpc-js makes up when no status arrived (stream reset, missing
 * grpc-status), do. Real HTTP/2 + mTLS sockets throughout.
 */
import { readFileSync } from "node:fs";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { startHarness, testClient, timed, TENANT, type Harness, type TestClient } from "./harness.ts";

let h: Harness;
const open: TestClient[] = [];

beforeAll(async () => {
  h = await startHarness();
});
afterEach(() => {
  open.splice(0).forEach((c) => c.close());
  h.ticket.clear();
  h.proxy.mode = "pass";
});
afterAll(async () => {
  await h?.stop();
});

// One attempt per call (no retries), so breaker counts are exact.
function client(address?: string): TestClient {
  const c = testClient(h, "transfer-service", { resilience: { retryMaxAttempts: 1 }, ...(address ? { address } : {}) });
  open.push(c);
  return c;
}
const transfer = (c: TestClient) => timed(() => c.client.transferTicket({ tenantId: TENANT, ticketId: "t-1", toUserId: "u-2" }, h.ctx));
const breaker = (c: TestClient) => c.registry.list()[0]!;
const failure = (r: { error?: unknown }) => {
  expect(r.error).toBeInstanceOf(ConnectError);
  return r.error as ConnectError;
};

/** An mTLS HTTP/2 server presenting ticket-service's certificate whose every stream ends as `answer` says, with no gRPC status. */
async function statuslessServer(answer: (stream: http2.ServerHttp2Stream) => void): Promise<{ address: string; close(): Promise<void> }> {
  const w = (await h.pki.material("ticket-service")).current().workload;
  const server = http2.createSecureServer({
    cert: w.certPem,
    key: w.keyPem,
    ca: readFileSync(pkiPaths(h.pki.dir).caCert, "utf8"),
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  server.on("stream", (stream) => {
    stream.on("error", () => {});
    answer(stream);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe("breaker counting by the origin of the status", () => {
  it("a server answering INTERNAL 10 times does not open it", async () => {
    const c = client();
    h.ticket.script("transferTicket", ...Array.from({ length: 10 }, () => ({ fail: Code.Internal })));
    for (let i = 0; i < 10; i++) expect(failure(await transfer(c)).code).toBe(Code.Internal);
    expect(breaker(c)).toMatchObject({ state: "closed", windowCalls: 10, windowFailures: 0 });
    expect(h.ticket.count("transferTicket")).toBe(10);
  });

  it("5 connection resets open it", async () => {
    const c = client();
    h.proxy.mode = "reset";
    for (let i = 0; i < 5; i++) expect(failure(await transfer(c)).code).toBe(Code.Unavailable);
    expect(breaker(c)).toMatchObject({ state: "open", windowFailures: 5 });
    expect(h.ticket.count("transferTicket")).toBe(0);
  });

  it("5 streams reset without a status (grpc-js: INTERNAL from RST_STREAM) open it", async () => {
    const s = await statuslessServer((stream) => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    try {
      const c = client(s.address);
      for (let i = 0; i < 5; i++) {
        const err = failure(await transfer(c));
        expect({ code: err.code, message: err.rawMessage }).toMatchObject({ code: Code.Internal, message: expect.stringContaining("RST_STREAM") });
      }
      expect(breaker(c)).toMatchObject({ state: "open", windowFailures: 5 });
    } finally {
      await s.close();
    }
  });

  it("5 answers whose trailers carry no grpc-status (grpc-js: UNKNOWN from the HTTP status) open it", async () => {
    const s = await statuslessServer((stream) => {
      stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers({ "x-no-status": "1" }));
      stream.end();
    });
    try {
      const c = client(s.address);
      for (let i = 0; i < 5; i++) {
        const err = failure(await transfer(c));
        expect({ code: err.code, message: err.rawMessage }).toEqual({ code: Code.Unknown, message: "Received HTTP status code 200" });
      }
      expect(breaker(c)).toMatchObject({ state: "open", windowFailures: 5 });
    } finally {
      await s.close();
    }
  });
});
