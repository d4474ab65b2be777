import { execFile } from "node:child_process";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, type Message } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createHandlerContext } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServiceClient } from "../../src/client/service-client.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/gen/grpc/health/v1/health_pb.ts";
import * as v1 from "../../src/gen/grpc/reflection/v1/reflection_pb.ts";
import { silentLogger } from "../../src/observability/logger.ts";
import { frameworkContract, HEALTH_CALLERS } from "../../src/server/framework-contracts.ts";
import { createHealth } from "../../src/server/health.ts";
import { createReflection } from "../../src/server/reflection.ts";
import { createServer, type RpcServer } from "../../src/server/server.ts";
import { methodCodec } from "../../src/wire/codec.ts";

const run = promisify(execFile);
const HOST = "api-gateway";
const SVC = "tickettoken.test.v1.Probe";

// Plaintext for this test only (buf curl against 127.0.0.1); mTLS arrives with the security work.
let server: RpcServer;
let address: string;
const health = createHealth();

beforeAll(async () => {
  health.setStatus(SVC, "SERVING");
  server = await createServer({
    services: [health.registration(HOST), ...createReflection([Health]).registrations(HOST)],
    port: 0,
    tls: "plaintext",
    logger: silentLogger(),
  });
  address = `127.0.0.1:${server.port}`;
});

afterAll(async () => {
  const t0 = Date.now();
  await server?.stop(5_000);
  // Cancelled Watch calls must not hold shutdown for the whole grace period.
  expect(Date.now() - t0).toBeLessThan(5_000);
});

function healthClient() {
  return createServiceClient(frameworkContract(Health, HOST, HEALTH_CALLERS), { address, tls: "plaintext" });
}

describe("grpc.health.v1 through the framework client", () => {
  it("Check answers the server and known services; unknown is NOT_FOUND", async () => {
    const client = healthClient();
    expect((await client.check({ service: "" }, { timeoutMs: 5_000 })).status).toBe(Status.SERVING);
    expect((await client.check({ service: SVC }, { timeoutMs: 5_000 })).status).toBe(Status.SERVING);
    const err = await client.check({ service: "no.such.Service" }, { timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
  });

  it("List returns every status", async () => {
    const res = await healthClient().list({}, { timeoutMs: 5_000 });
    expect(res.statuses[""]?.status).toBe(Status.SERVING);
    expect(res.statuses[SVC]?.status).toBe(Status.SERVING);
  });

  it("Watch sends the current status, then each change, until cancelled", async () => {
    const svc = "tickettoken.test.v1.Watched";
    health.setStatus(svc, "SERVING");
    const abort = new AbortController();
    const seen: Status[] = [];
    const stream = healthClient().watch({ service: svc }, { signal: abort.signal, timeoutMs: 10_000 });
    for await (const res of stream) {
      seen.push(res.status);
      if (seen.length === 1) health.setStatus(svc, "NOT_SERVING");
      if (seen.length >= 2) break;
    }
    abort.abort();
    expect(seen).toEqual([Status.SERVING, Status.NOT_SERVING]);
  });

  it("Watch of an unknown service reports SERVICE_UNKNOWN and keeps the call open", async () => {
    const svc = "tickettoken.test.v1.Later";
    const abort = new AbortController();
    const seen: Status[] = [];
    for await (const res of healthClient().watch({ service: svc }, { signal: abort.signal, timeoutMs: 10_000 })) {
      seen.push(res.status);
      if (seen.length === 1) health.setStatus(svc, "SERVING");
      if (seen.length >= 2) break;
    }
    abort.abort();
    expect(seen).toEqual([Status.SERVICE_UNKNOWN, Status.SERVING]);
  });
});

describe("Watch clean-up", () => {
  it("a Watch parked waiting for a change ends when its call's signal aborts", async () => {
    const abort = new AbortController();
    const ctx = createHandlerContext({
      service: Health,
      method: Health.method.watch,
      protocolName: "grpc",
      requestMethod: "POST",
      url: "/grpc.health.v1.Health/Watch",
      requestSignal: abort.signal,
    });
    const impl = health.registration(HOST).impl;
    const iter = impl.watch!(create(Health.method.watch.input, { service: "" }), ctx)[Symbol.asyncIterator]();
    expect((await iter.next()).value).toMatchObject({ status: Status.SERVING });
    const parked = iter.next();
    abort.abort();
    const bounded = new Promise<"timeout">((resolve) => setTimeout(resolve, 2_000, "timeout").unref());
    expect(await Promise.race([parked, bounded])).toMatchObject({ done: true });
  });
});

async function bufCurl(...args: string[]): Promise<string> {
  const { stdout } = await run("npx", ["buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
    timeout: 20_000,
    cwd: process.cwd(),
  });
  return stdout;
}

describe("server reflection with buf curl", () => {
  it("lists every method over reflection v1", async () => {
    const out = await bufCurl("--list-methods", `http://${address}`);
    const methods = out.trim().split("\n").sort();
    expect(methods).toEqual(
      [
        ...Health.methods.map((m) => `grpc.health.v1.Health/${m.name}`),
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ].sort(),
    );
  }, 30_000);

  it("calls Health/Check with the schema from reflection", async () => {
    const out = await bufCurl("-d", "{}", `http://${address}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  }, 30_000);

  it("works over reflection v1alpha too", async () => {
    const out = await bufCurl("--reflect-protocol", "grpc-v1alpha", "-d", JSON.stringify({ service: SVC }), `http://${address}/grpc.health.v1.Health/Check`);
    expect(JSON.parse(out)).toEqual({ status: "SERVING" });
  }, 30_000);
});

describe("server reflection protocol", () => {
  /** Sends requests on one ServerReflectionInfo stream and collects the answers (bounded by a deadline). */
  async function reflect(requests: v1.ServerReflectionRequest[]): Promise<v1.ServerReflectionResponse[]> {
    const method = v1.ServerReflection.method.serverReflectionInfo;
    const codec = methodCodec(method);
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    try {
      const call = client.makeBidiStreamRequest(
        `/${v1.ServerReflection.typeName}/${method.name}`,
        codec.serializeInput,
        codec.deserializeOutput as (b: Buffer) => Message,
        new grpc.Metadata(),
        { deadline: Date.now() + 10_000 },
      );
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
    const [first, second, ...rest] = await reflect([unknown, known]);
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
  });
});
