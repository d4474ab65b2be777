/**
 * The operator workflow from the README, end to end: `npx buf curl` over mTLS
 * with the ops certificate, call tokens and context tokens minted by running
 * the tt-rpc CLI (`tsx src/devtools/cli/main.ts token|context-token`), against a real
 * createServer serving ticket-service.
 */
import type { HandlerContext } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { callContext, type VerifiedCallContext } from "../../src/runtime/auth/call-context.ts";
import { Health } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { run, type ExecResult } from "../support/exec.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { cliEnv, cliOutput } from "../cli/run-cli.ts";

const SERVICE = "ticket-service";
const SVC = TicketServiceContract.service.typeName;
const TENANT = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
const USER = "5f0c2a8e-1d8b-4bde-9e5a-2b7b0c6b1a11";

let pki: TestPki;
let server: RpcServer | undefined;
let url: string;
const seen: VerifiedCallContext[] = [];
let cancelCalls = 0;

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material(SERVICE),
    services: [
      implement(TicketServiceContract, {
        getTicketStatus: (req, ctx: HandlerContext) => {
          seen.push(callContext(ctx));
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
        cancelTicketsBatch: () => {
          cancelCalls++;
          return { results: [] };
        },
      }),
    ],
    port: 0,
    logger: silentLogger(),
  });
  server.health.setStatus(SVC, "SERVING");
  url = `https://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.stop(2_000);
  pki?.cleanup();
});

/** A call token for ops, minted by the CLI. */
function token(method: string, context?: string): Promise<string> {
  return cliOutput(["token", "--certs", pki.dir, "--as", "ops", "--aud", SERVICE, "--method", method, ...(context ? ["--context", context] : [])]);
}

function contextToken(): Promise<string> {
  return cliOutput(["context-token", "--certs", pki.dir, "--tenant", TENANT, "--user", USER]);
}

/** `npx buf curl --protocol grpc --cacert ... --cert ... --key ... <args>`, exactly the README's flags. */
function bufCurl(args: string[]): Promise<ExecResult> {
  const p = pkiPaths(pki.dir);
  const ops = p.workload("ops");
  return runWithEnv(["buf", "curl", "--protocol", "grpc", "--cacert", p.bundleCa, "--cert", ops.cert, "--key", ops.key, ...args]);
}

async function runWithEnv(args: string[]): Promise<ExecResult> {
  // support/exec's run inherits process.env; put our Node first on PATH for npx's children.
  const saved = process.env.PATH;
  process.env.PATH = cliEnv().PATH;
  try {
    return await run("npx", args, { timeoutMs: 20_000 });
  } finally {
    process.env.PATH = saved;
  }
}

function json(r: ExecResult): unknown {
  if (r.code !== 0) throw new Error(`buf curl exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("buf curl over mTLS as ops, with tokens from tt-rpc", () => {
  it("lists every method through reflection v1", async () => {
    const reflect = await token("reflection");
    const r = await bufCurl(["--reflect-header", `authorization: Bearer ${reflect}`, "--list-methods", url]);
    expect(r.code, r.stderr).toBe(0);
    const methods = r.stdout.trim().split("\n").sort();
    expect(methods).toEqual(
      [
        ...TicketServiceContract.service.methods.map((m) => `${SVC}/${m.name}`),
        ...Health.methods.map((m) => `grpc.health.v1.Health/${m.name}`),
        "tickettoken.rpc.v1.AdminService/ListBreakers",
        "tickettoken.rpc.v1.AdminService/ResetBreaker",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      ].sort(),
    );
  });

  it("calls GetTicketStatus with a context-bound call token and gets the handler's JSON", async () => {
    const ctx = await contextToken();
    const [reflect, call] = await Promise.all([token("reflection"), token(`/${SVC}/GetTicketStatus`, ctx)]);
    const before = seen.length;
    const r = await bufCurl([
      "--reflect-header", `authorization: Bearer ${reflect}`,
      "-H", `authorization: Bearer ${call}`,
      "-H", `tt-context: ${ctx}`,
      "-d", JSON.stringify({ tenantId: TENANT, ticketId: "x" }),
      `${url}/${SVC}/GetTicketStatus`,
    ]);
    expect(json(r)).toEqual({ ticketId: "x", status: "TICKET_STATUS_SOLD", canRefund: true });
    expect(seen.length).toBe(before + 1);
    expect(seen.at(-1)).toMatchObject({
      caller: { workload: "ops", spiffeId: "spiffe://tickettoken.internal/ns/dev/sa/ops" },
      tenantId: TENANT,
      userId: USER,
    });

    // The same call token again is a replay: refused.
    const reflect2 = await token("reflection");
    const replay = await bufCurl([
      "--reflect-header", `authorization: Bearer ${reflect2}`,
      "-H", `authorization: Bearer ${call}`,
      "-H", `tt-context: ${ctx}`,
      "-d", JSON.stringify({ tenantId: TENANT, ticketId: "x" }),
      `${url}/${SVC}/GetTicketStatus`,
    ]);
    expect(replay.code).not.toBe(0);
    expect(replay.stderr).toMatch(/"code":\s*"unauthenticated"/);
    expect(seen.length).toBe(before + 1);
  });

  it("checks health with the schema from reflection", async () => {
    const [reflect, call] = await Promise.all([token("reflection"), token("health-check")]);
    const r = await bufCurl([
      "--reflect-header", `authorization: Bearer ${reflect}`,
      "-H", `authorization: Bearer ${call}`,
      "-d", JSON.stringify({ service: SVC }),
      `${url}/grpc.health.v1.Health/Check`,
    ]);
    expect(json(r)).toEqual({ status: "SERVING" });
  });

  it("works over reflection v1alpha too", async () => {
    const [reflect, call] = await Promise.all([token("reflection-v1alpha"), token("health-check")]);
    const r = await bufCurl([
      "--reflect-protocol", "grpc-v1alpha",
      "--reflect-header", `authorization: Bearer ${reflect}`,
      "-H", `authorization: Bearer ${call}`,
      "-d", "{}",
      `${url}/grpc.health.v1.Health/Check`,
    ]);
    expect(json(r)).toEqual({ status: "SERVING" });
  });

  it("a call without a call token is unauthenticated", async () => {
    const [reflect, ctx] = await Promise.all([token("reflection"), contextToken()]);
    const before = seen.length;
    const r = await bufCurl([
      "--reflect-header", `authorization: Bearer ${reflect}`,
      "-H", `tt-context: ${ctx}`,
      "-d", JSON.stringify({ tenantId: TENANT, ticketId: "x" }),
      `${url}/${SVC}/GetTicketStatus`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/"code":\s*"unauthenticated"/);
    expect(seen.length).toBe(before);
  });

  it("reflection needs only mTLS: no token lists the methods, but a token that is sent must be valid", async () => {
    const open = await bufCurl(["--list-methods", url]);
    expect(open.code, open.stderr).toBe(0);
    expect(open.stdout).toContain(`${SVC}/GetTicketStatus`);
    const forged = await bufCurl(["--reflect-header", "authorization: Bearer not-a-token", "--list-methods", url]);
    expect(forged.code).not.toBe(0);
    expect(forged.stdout).not.toContain(SVC);
    // buf curl words a reflection UNAUTHENTICATED as "you are not authenticated".
    expect(forged.stderr.toLowerCase()).toMatch(/unauthenticated|not authenticated/);
  });

  it("health Check needs only mTLS, but a context token without a call token is refused", async () => {
    const ok = await bufCurl(["-d", "{}", `${url}/grpc.health.v1.Health/Check`]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("SERVING");
    const ctxOnly = await bufCurl(["-H", `tt-context: ${await contextToken()}`, "-d", "{}", `${url}/grpc.health.v1.Health/Check`]);
    expect(ctxOnly.code).not.toBe(0);
    expect(ctxOnly.stderr).toMatch(/"code":\s*"unauthenticated"/);
  });

  it("ops calling a write method it is not allowed is permission_denied, even with a valid token", async () => {
    const ctx = await contextToken();
    const [reflect, call] = await Promise.all([token("reflection"), token(`/${SVC}/CancelTicketsBatch`, ctx)]);
    const r = await bufCurl([
      "--reflect-header", `authorization: Bearer ${reflect}`,
      "-H", `authorization: Bearer ${call}`,
      "-H", `tt-context: ${ctx}`,
      "-d", JSON.stringify({ tenantId: TENANT, ticketIds: ["x"], reason: "test", refundId: "r" }),
      `${url}/${SVC}/CancelTicketsBatch`,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/"code":\s*"permission_denied"/);
    expect(cancelCalls).toBe(0);
  });
});
