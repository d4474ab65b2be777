/**
 * Configuration (b) of the benchmark must really be the equal-security peer
 * it claims to be: its hand-rolled jose interceptors accept a fresh token from
 * the mTLS peer and refuse a missing token, another audience, a token signed
 * with another service's key and a replayed jti. Real grpc-js over mTLS.
 */
import * as grpc from "@grpc/grpc-js";
import type { JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import type { IdentityMaterial } from "../../src/runtime/identity/material.ts";
import { clientJwtInterceptor, serverJwtInterceptor } from "../../bench/jwt-peer.ts";
import { grpcPeerClient, startGrpcPeer, type GrpcPeerClient } from "../../bench/grpc-peer.ts";
import { smallRequest } from "../../bench/shared.ts";

let pki: TestPki;
let server: { port: number; stop(): Promise<void> };
let caller: IdentityMaterial;
let other: IdentityMaterial;
const self = workloadSpiffeId("ticket-service");
const clients: GrpcPeerClient[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  const m = (await pki.material("ticket-service")).current();
  caller = (await pki.material("payment-service")).current();
  other = (await pki.material("scanning-service")).current();
  const keys = new Map<string, JWK[]>([...m.bundle.jwtKeys].map(([id, list]) => [id, list as JWK[]]));
  server = await startGrpcPeer(m, [await serverJwtInterceptor(self, keys)]);
});
afterAll(async () => {
  clients.forEach((c) => c.close());
  await server?.stop();
  pki?.cleanup();
});

function client(interceptors: grpc.Interceptor[]): GrpcPeerClient {
  const c = grpcPeerClient(caller, `127.0.0.1:${server.port}`, self, "ticket-service", interceptors);
  clients.push(c);
  return c;
}
const call = (c: GrpcPeerClient) =>
  new Promise<{ code: grpc.status; res?: unknown }>((resolve) => c.getTicketStatus(smallRequest, (err, res) => resolve(err ? { code: err.code } : { code: grpc.status.OK, res })));

describe("bench configuration (b): hand-rolled jose call tokens on grpc-js", () => {
  it("accepts a fresh token signed by the mTLS peer's key", async () => {
    const c = client([await clientJwtInterceptor(caller.workload.spiffeId, self, caller.workload.jwt.current)]);
    const first = await call(c);
    expect(first.code).toBe(grpc.status.OK);
    expect(first.res).toMatchObject({ ticketId: smallRequest.ticketId });
    expect((await call(c)).code).toBe(grpc.status.OK);
  });

  it("refuses a call without a token", async () => {
    expect((await call(client([]))).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("refuses a token for another audience", async () => {
    const c = client([await clientJwtInterceptor(caller.workload.spiffeId, workloadSpiffeId("order-service"), caller.workload.jwt.current)]);
    expect((await call(c)).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("refuses a token signed with another service's key", async () => {
    const c = client([await clientJwtInterceptor(caller.workload.spiffeId, self, other.workload.jwt.current)]);
    expect((await call(c)).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("refuses a replayed token", async () => {
    let captured: string | undefined;
    // Inner to the signer: sees the minted token; the first call records it, later calls send it again.
    const replay: grpc.Interceptor = (options, next) =>
      new grpc.InterceptingCall(next(options), {
        start(metadata, listener, go) {
          if (captured === undefined) captured = String(metadata.get("authorization")[0]);
          else metadata.set("authorization", captured);
          go(metadata, listener);
        },
      });
    const c = client([await clientJwtInterceptor(caller.workload.spiffeId, self, caller.workload.jwt.current), replay]);
    expect((await call(c)).code).toBe(grpc.status.OK);
    expect((await call(c)).code).toBe(grpc.status.UNAUTHENTICATED);
  });
});
