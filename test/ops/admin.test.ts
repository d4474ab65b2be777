/**
 * The admin RPC (tickettoken.rpc.v1.AdminService) as an operator uses it:
 * `npx buf curl` over mTLS with the ops certificate and call tokens from the
 * tt-rpc CLI, against a real createServer whose breakers come from a small
 * in-test BreakerAdmin (the seam the resilience registry implements). A
 * service identity is refused by the contract (ops only). A server given no
 * BreakerAdmin lists the process's resilience registry, which its generated
 * clients fill.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AdminServiceFrameworkContract } from "../../src/runtime/gen/tickettoken/rpc/v1/admin_rpc.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { pkiPaths } from "../../src/devtools/pki/dev-ca.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { hostFrameworkContract } from "../../src/runtime/server/framework-contracts.ts";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { createVenueServiceClient } from "../../src/contracts/gen/tickettoken/venue/v1/venue_service_rpc.ts";
import { BreakerState } from "../../src/runtime/gen/tickettoken/rpc/v1/admin_pb.ts";
import { resilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { createFaultProxy } from "../support/fault-proxy.ts";
import type { BreakerAdmin, BreakerSnapshot } from "../../src/runtime/resilience/breaker-admin.ts";
import { run, type ExecResult } from "../support/exec.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { cliEnv, cliOutput } from "../cli/run-cli.ts";

const SERVICE = "ticket-service";
const ADMIN = AdminServiceFrameworkContract.service.typeName;
const OPENED_AT = Date.UTC(2026, 0, 2, 3, 4, 5);

/** A breaker registry for the test: two breakers, reset closes one and clears its window. */
function fakeBreakers(): BreakerAdmin & { resets: string[] } {
  const breakers = new Map<string, BreakerSnapshot>([
    ["payment-service", { target: "payment-service", state: "open", windowCalls: 12, windowFailures: 9, changedAt: OPENED_AT }],
    ["event-service", { target: "event-service", state: "closed", windowCalls: 40, windowFailures: 1 }],
  ]);
  const resets: string[] = [];
  return {
    resets,
    list: () => [...breakers.values()],
    reset(target) {
      if (!breakers.has(target)) return false;
      resets.push(target);
      breakers.set(target, { target, state: "closed", windowCalls: 0, windowFailures: 0, changedAt: OPENED_AT + 1000 });
      return true;
    },
  };
}

let pki: TestPki;
let server: RpcServer | undefined;
let url: string;
const breakers = fakeBreakers();

beforeAll(async () => {
  pki = await createTestPki();
  server = await createServer({
    identity: await pki.material(SERVICE),
    services: [implement(TicketServiceContract, {})],
    breakers,
    port: 0,
    logger: silentLogger(),
  });
  url = `https://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server?.stop(2_000);
  pki?.cleanup();
});

function token(method: string): Promise<string> {
  return cliOutput(["token", "--certs", pki.dir, "--as", "ops", "--aud", SERVICE, "--method", method]);
}

/** `npx buf curl --protocol grpc` with the ops certificate, as in the README. */
async function bufCurl(args: string[]): Promise<ExecResult> {
  const p = pkiPaths(pki.dir);
  const ops = p.workload("ops");
  const saved = process.env.PATH;
  process.env.PATH = cliEnv().PATH;
  try {
    return await run("npx", ["buf", "curl", "--protocol", "grpc", "--cacert", p.bundleCa, "--cert", ops.cert, "--key", ops.key, ...args], { timeoutMs: 20_000 });
  } finally {
    process.env.PATH = saved;
  }
}

async function callAdmin(method: string, body: object): Promise<ExecResult> {
  const [reflect, call] = await Promise.all([token("reflection"), token(`/${ADMIN}/${method}`)]);
  return bufCurl([
    "--reflect-header", `authorization: Bearer ${reflect}`,
    "-H", `authorization: Bearer ${call}`,
    "-d", JSON.stringify(body),
    `${url}/${ADMIN}/${method}`,
  ]);
}

function json(r: ExecResult): unknown {
  if (r.code !== 0) throw new Error(`buf curl exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

describe("admin RPC through buf curl with the ops certificate", () => {
  it("reflection lists the admin service", async () => {
    const r = await bufCurl(["--reflect-header", `authorization: Bearer ${await token("reflection")}`, "--list-methods", url]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${ADMIN}/ListBreakers`);
    expect(r.stdout).toContain(`${ADMIN}/ResetBreaker`);
  });

  it("ListBreakers lists every breaker with state and counts, ordered by target", async () => {
    expect(json(await callAdmin("ListBreakers", {}))).toEqual({
      breakers: [
        { target: "event-service", state: "BREAKER_STATE_CLOSED", windowCalls: 40, windowFailures: 1 },
        { target: "payment-service", state: "BREAKER_STATE_OPEN", windowCalls: 12, windowFailures: 9, changedAt: "2026-01-02T03:04:05Z" },
      ],
    });
  });

  it("ResetBreaker closes one breaker, and the next listing shows it", async () => {
    expect(json(await callAdmin("ResetBreaker", { target: "payment-service" }))).toEqual({
      breaker: { target: "payment-service", state: "BREAKER_STATE_CLOSED", changedAt: "2026-01-02T03:04:06Z" },
    });
    expect(breakers.resets).toEqual(["payment-service"]);
    const after = json(await callAdmin("ListBreakers", {})) as { breakers: { target: string; state: string }[] };
    expect(after.breakers.find((b) => b.target === "payment-service")?.state).toBe("BREAKER_STATE_CLOSED");
  });

  it("ResetBreaker of an unknown target is not_found, of no target invalid_argument", async () => {
    const unknown = await callAdmin("ResetBreaker", { target: "venue-service" });
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/"code":\s*"not_found"/);
    const empty = await callAdmin("ResetBreaker", {});
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toMatch(/"code":\s*"invalid_argument"/);
    expect(breakers.resets).toEqual(["payment-service"]);
  });
});

describe("admin RPC access", () => {
  it("a service identity is PERMISSION_DENIED (the contract allows ops only)", async () => {
    const client = createServiceClient(hostFrameworkContract(AdminServiceFrameworkContract, SERVICE), {
      identity: await pki.material("order-service"),
      address: `127.0.0.1:${server!.port}`,
    });
    try {
      const before = breakers.resets.length;
      await expect(client.resetBreaker({ target: "event-service" })).rejects.toSatisfy(
        (e) => ConnectError.from(e).code === Code.PermissionDenied,
      );
      await expect(client.listBreakers({})).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.PermissionDenied);
      expect(breakers.resets.length).toBe(before);
    } finally {
      closeClient(client);
    }
  });

  it("a server given no breaker registry lists this process's resilience registry, filled by its generated clients", async () => {
    // A generated client of this process (process-wide registry, no `registry` option) calls a venue-service that refuses.
    const refusing = await createFaultProxy(1); // never forwards: it refuses every connection
    await refusing.refuse();
    const venue = createVenueServiceClient({ identity: await pki.material("event-service"), address: refusing.address, env: {} });
    const bare = await createServer({ identity: await pki.material("event-service"), services: [], port: 0, logger: silentLogger() });
    const admin = createServiceClient(hostFrameworkContract(AdminServiceFrameworkContract, "event-service"), {
      identity: await pki.material("ops"),
      address: `127.0.0.1:${bare.port}`,
    });
    try {
      await expect(venue.getVenue({ venueId: "v-1" }, { timeoutMs: 3_000 })).rejects.toSatisfy((e) => ConnectError.from(e).code === Code.Unavailable);
      const listed = (await admin.listBreakers({})).breakers;
      const venueBreaker = listed.find((b) => b.target === "venue-service");
      expect(venueBreaker?.state).toBe(BreakerState.CLOSED);
      // Every refused attempt was counted as a failure of that target.
      expect(venueBreaker?.windowFailures).toBeGreaterThanOrEqual(1);
      expect(venueBreaker?.windowFailures).toBe(venueBreaker?.windowCalls);
      // Exactly the process registry's targets (the admin client's own, event-service, included).
      const processWide = resilienceRegistry().list();
      expect(listed.map((b) => b.target)).toEqual(processWide.map((b) => b.target).sort());
      expect(listed.map((b) => b.target)).toContain("event-service");
      // Counts are the registry's own (venue-service is quiet now; event-service's count moves with the admin call itself).
      const { windowCalls, windowFailures } = processWide.find((b) => b.target === "venue-service")!;
      expect(venueBreaker).toMatchObject({ windowCalls, windowFailures });
    } finally {
      closeClient(venue);
      closeClient(admin);
      await Promise.all([bare.stop(1_000), refusing.close()]);
    }
  });
});
