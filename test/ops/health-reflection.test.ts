/**
 * Health and reflection as createServer serves them: over mTLS, under the
 * same access rules as every contract. Both are open to every workload of
 * the trust domain on mTLS alone (a call token is optional, and verified when
 * sent). Reflection serves the contracts' comments (grpcurl describe).
 */
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, type Message } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCallTokenMinter } from "../../src/runtime/auth/call-token.ts";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import * as v1 from "../../src/runtime/gen/grpc/reflection/v1/reflection_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { loadWorkloadMaterial } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { frameworkContract, HEALTH_CALLERS } from "../../src/runtime/server/framework-contracts.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { methodCodec } from "../../src/runtime/wire/codec.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const HOST = "ticket-service";
const SVC = TicketServiceContract.service.typeName; // "tickettoken.ticket.v1.TicketService"

let pki: TestPki;
let server: RpcServer | undefined;
let address: string;
const clients: object[] = [];

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material(HOST),
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: (req) => ({ ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true }),
      }),
    ],
    port: 0,
    logger: silentLogger(),
  });
  address = `127.0.0.1:${server.port}`;
});

afterAll(async () => {
  clients.forEach((c) => closeClient(c));
  const t0 = Date.now();
  await server?.stop(5_000);
  // Cancelled Watch calls must not hold shutdown for the whole grace period.
  expect(Date.now() - t0).toBeLessThan(5_000);
  pki?.cleanup();
});

async function healthClient() {
  const client = createServiceClient(frameworkContract(Health, HOST, HEALTH_CALLERS), {
    identity: await pki.material("payment-service"),
    address,
  });
  clients.push(client);
  return client;
}

describe("grpc.health.v1 over mTLS through the framework client", () => {
  it("Check answers the server and known services; unknown is NOT_FOUND", async () => {
    const client = await healthClient();
    expect((await client.check({ service: "" }, { timeoutMs: 5_000 })).status).toBe(Status.SERVING);
    expect((await client.check({ service: SVC }, { timeoutMs: 5_000 })).status).toBe(Status.SERVING);
    const err = await client.check({ service: "no.such.Service" }, { timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
  });

  it("List returns every status", async () => {
    const res = await (await healthClient()).list({}, { timeoutMs: 5_000 });
    expect(res.statuses[""]?.status).toBe(Status.SERVING);
    expect(res.statuses[SVC]?.status).toBe(Status.SERVING);
  });

  it("Watch sends the current status, then each change, until cancelled", async () => {
    const svc = "tickettoken.test.v1.Watched";
    server!.health.setStatus(svc, "SERVING");
    const client = await healthClient();
    const abort = new AbortController();
    const seen: Status[] = [];
    for await (const res of client.watch({ service: svc }, { signal: abort.signal, timeoutMs: 10_000 })) {
      seen.push(res.status);
      if (seen.length === 1) server!.health.setStatus(svc, "NOT_SERVING");
      if (seen.length >= 2) break;
    }
    abort.abort();
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });

  it("Watch of an unknown service reports SERVICE_UNKNOWN and keeps the call open", async () => {
    const svc = "tickettoken.test.v1.Later";
    const client = await healthClient();
    const abort = new AbortController();
    const seen: Status[] = [];
    for await (const res of client.watch({ service: svc }, { signal: abort.signal, timeoutMs: 10_000 })) {
      seen.push(res.status);
      if (seen.length === 1) server!.health.setStatus(svc, "SERVING");
      if (seen.length >= 2) break;
    }
    abort.abort();
    expect(seen).toEqual([Status.SERVICE_UNKNOWN, Status.SERVING]);
  });
});

describe("Watch clean-up", () => {
  it("a Watch parked waiting for a change ends with the signal's reason (never OK) when its call's signal aborts", async () => {
    const abort = new AbortController();
    const ctx = createHandlerContext({
      service: Health,
      method: Health.method.watch,
      protocolName: "grpc",
      requestMethod: "POST",
      url: "/grpc.health.v1.Health/Watch",
      requestSignal: abort.signal,
    });
    const impl = server!.health.registration(HOST).impl;
    const iter = impl.watch!(create(Health.method.watch.input, { service: "" }), ctx)[Symbol.asyncIterator]();
    expect((await iter.next()).value).toMatchObject({ status: Status.SERVING });
    const parked = iter.next();
    const reason = new ConnectError("deadline exceeded", Code.DeadlineExceeded);
    abort.abort(reason);
    const ended = parked.then(
      (r) => ({ ended: "ok", r }),
      (err: unknown) => ({ ended: "error", err }),
    );
    const bounded = new Promise<"timeout">((resolve) => setTimeout(resolve, 2_000, "timeout").unref());
    expect(await Promise.race([ended, bounded])).toEqual({ ended: "error", err: reason });
  });
});

describe("server reflection protocol over mTLS as ops", () => {
  const method = v1.ServerReflection.method.serverReflectionInfo;
  const path = `/${v1.ServerReflection.typeName}/${method.name}`;

  /** Opens one ServerReflectionInfo stream as `ops`, sends the requests and collects the answers (bounded by a deadline). */
  async function reflect(requests: v1.ServerReflectionRequest[], token?: string | null, as: WorkloadName = "ops"): Promise<v1.ServerReflectionResponse[]> {
    const ops = await loadWorkloadMaterial(pki.dir, as);
    const ca = await pki.material(HOST).then((m) => m.current().bundle.caPem);
    const metadata = new grpc.Metadata();
    const bearer =
      token ??
      (await createCallTokenMinter({ identity: ops.spiffeId, key: ops.jwt.current }).mint({
        audience: workloadSpiffeId(HOST, ops.env),
        method: path,
      }));
    // null: no call token at all (mTLS is enough for reflection).
    if (token !== null) metadata.set("authorization", `Bearer ${bearer}`);
    const codec = methodCodec(method);
    const client = new grpc.Client(
      address,
      grpc.credentials.createSsl(Buffer.from(ca), Buffer.from(ops.keyPem), Buffer.from(ops.certPem)),
      // SNI and the hostname check use the service's DNS name: an IP as TLS server name is deprecated (DEP0123).
      { "grpc.ssl_target_name_override": HOST },
    );
    try {
      const call = client.makeBidiStreamRequest(path, codec.serializeInput, codec.deserializeOutput as (b: Buffer) => Message, metadata, {
        deadline: Date.now() + 10_000,
      });
      for (const r of requests) call.write(r);
      call.end();
      const out: v1.ServerReflectionResponse[] = [];
      for await (const m of call) out.push(m as v1.ServerReflectionResponse);
      return out;
    } finally {
      client.close();
    }
  }

  it("answers an unknown symbol with NOT_FOUND inside the stream, and the stream goes on", async () => {
    const unknown = create(v1.ServerReflectionRequestSchema, {
      host: "probe",
      messageRequest: { case: "fileContainingSymbol", value: "tickettoken.nope.v1.Nothing" },
    });
    const known = create(v1.ServerReflectionRequestSchema, {
      messageRequest: { case: "fileContainingSymbol", value: "grpc.health.v1.HealthCheckResponse.ServingStatus" },
    });
    const list = create(v1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
    const [first, second, third, ...rest] = await reflect([unknown, known, list]);
    expect(rest).toHaveLength(0);
    expect(first?.validHost).toBe("probe");
    expect(first?.originalRequest?.messageRequest).toEqual(unknown.messageRequest);
    expect(first?.messageResponse.case).toBe("errorResponse");
    expect(first?.messageResponse.value).toMatchObject({ errorCode: Code.NotFound });
    expect(second?.messageResponse.case).toBe("fileDescriptorResponse");
    const files = (second?.messageResponse.value as v1.FileDescriptorResponse).fileDescriptorProto.map(
      (b) => fromBinary(FileDescriptorProtoSchema, b).name,
    );
    expect(files).toEqual(["grpc/health/v1/health.proto"]);
    expect(third?.messageResponse.case).toBe("listServicesResponse");
    const names = (third?.messageResponse.value as v1.ListServiceResponse).service.map((s) => s.name).sort();
    expect(names).toEqual(
      ["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "tickettoken.rpc.v1.AdminService", SVC].sort(),
    );
  });

  it("serves the contracts' comments, to any workload of the trust domain without a call token", async () => {
    const symbol = create(v1.ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: SVC } });
    const [answer] = await reflect([symbol], null, "payment-service");
    const fdp = fromBinary(FileDescriptorProtoSchema, (answer?.messageResponse.value as v1.FileDescriptorResponse).fileDescriptorProto[0]!);
    expect(fdp.name).toBe("tickettoken/ticket/v1/ticket_service.proto");
    const serviceIndex = fdp.service.findIndex((s) => s.name === "TicketService");
    const methodIndex = fdp.service[serviceIndex]!.method.findIndex((m) => m.name === "GetTicketStatus");
    // SourceCodeInfo paths: 6 = FileDescriptorProto.service, 2 = ServiceDescriptorProto.method.
    const comment = (path: number[]) => fdp.sourceCodeInfo?.location.find((l) => l.path.join(".") === path.join("."))?.leadingComments ?? "";
    expect(comment([6, serviceIndex])).toMatch(/TicketService/);
    expect(comment([6, serviceIndex, 2, methodIndex])).toContain("Returns a ticket's status and whether it can still be refunded");
  });

  it("refuses a stream whose call token is not for reflection", async () => {
    const ops = await loadWorkloadMaterial(pki.dir, "ops");
    const wrongMethod = await createCallTokenMinter({ identity: ops.spiffeId, key: ops.jwt.current }).mint({
      audience: workloadSpiffeId(HOST, ops.env),
      method: "/grpc.health.v1.Health/Check",
    });
    const list = create(v1.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
    const err = await reflect([list], wrongMethod).catch((e: unknown) => e);
    expect((err as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
  });
});
