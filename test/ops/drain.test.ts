/**
 * Drain, as an orchestrator does it: SIGTERM to a server process while a
 * unary call, a finite and an endless server stream and a health Watch are
 * in flight (test/support/drain-server.ts, real mTLS, real pino logs).
 *
 * In order: Watch gets NOT_SERVING at once and calls still succeed during
 * the drain delay; at the end of the delay Watch ends with UNAVAILABLE (a
 * status, not an HTTP/2 error) and a new call is refused (UNAVAILABLE); the
 * held unary call and the finite stream complete OK after that; the endless
 * stream ends with UNAVAILABLE at the grace; the process exits 0 with its
 * last log lines written.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../src/runtime/gen/grpc/health/v1/health_pb.ts";
import { createTicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { frameworkContract, HEALTH_CALLERS } from "../../src/runtime/server/framework-contracts.ts";
import { createMetrics } from "../../src/runtime/telemetry/metrics.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import { REPO_ROOT } from "../support/exec.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const SCRIPT = fileURLToPath(new URL("../support/drain-server.ts", import.meta.url));
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
const DELAY_MS = 2_000;
const GRACE_MS = 3_000;
const TENANT = "tenant-drain";

let pki: TestPki;
let child: ChildProcess | undefined;
const clients: object[] = [];

beforeAll(async () => {
  pki = await createTestPki();
});

afterAll(() => {
  clients.forEach((c) => closeClient(c));
  if (child && child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  pki?.cleanup();
});

/** Settles with what an async operation ended with: its value, or the ConnectError it threw. */
function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T; at: number } | { ok: false; error: ConnectError; at: number }> {
  return p.then(
    (value) => ({ ok: true as const, value, at: Date.now() }),
    (err: unknown) => ({ ok: false as const, error: ConnectError.from(err), at: Date.now() }),
  );
}

describe("SIGTERM drains in order", () => {
  it("NOT_SERVING, delay, stop accepting, in-flight calls finish, Watch and the rest end with UNAVAILABLE, logs flushed, exit 0", async () => {
    let stdout = "";
    let stderr = "";
    const proc = spawn(process.execPath, ["--import", TSX_LOADER, SCRIPT, pki.dir, String(DELAY_MS), String(GRACE_MS)], {
      cwd: REPO_ROOT,
      env: { ...process.env, TT_RPC_LOG_LEVEL: "info" },
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    child = proc;
    proc.stdout!.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.on("exit", (code, signal) => setImmediate(() => resolve({ code, signal }))),
    );
    const killer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    const messages: Record<string, unknown>[] = [];
    const message = (key: string) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const seen = messages.find((m) => key in m);
        if (seen) return resolve(seen);
        proc.on("message", (m: Record<string, unknown>) => key in m && resolve(m));
        void exited.then(() => reject(new Error(`exited before "${key}": ${stderr}`)));
      });
    proc.on("message", (m: Record<string, unknown>) => messages.push(m));

    try {
      const { port } = (await message("ready")) as { port: number };
      const address = `127.0.0.1:${port}`;
      // One attempt per call, with time to spare: what the test sees is what the server answered, not a retry.
      const common = { address, env: {}, metrics: createMetrics(), resilience: { registry: new ResilienceRegistry(), retryMaxAttempts: 1, attemptTimeoutMs: 20_000, timeoutMs: 20_000 } };
      const payment = createTicketServiceClient({ identity: await pki.material("payment-service"), ...common });
      const scanning = createTicketServiceClient({ identity: await pki.material("scanning-service"), ...common });
      const health = createServiceClient(frameworkContract(Health, "ticket-service", HEALTH_CALLERS), { identity: await pki.material("payment-service"), ...common });
      clients.push(payment, scanning, health);
      const ctx = async () => ({ headers: { "tt-context": await pki.contextToken({ tenantId: TENANT, userId: "u-1" }) }, timeoutMs: 20_000 });

      // A health Watch, recording each status it is sent.
      const statuses: Status[] = [];
      let notServing: () => void = () => {};
      const sawNotServing = new Promise<void>((resolve) => (notServing = resolve));
      let firstStatus: () => void = () => {};
      const sawFirst = new Promise<void>((resolve) => (firstStatus = resolve));
      const watch = outcome(
        (async () => {
          for await (const res of health.watch({ service: "" }, { timeoutMs: 20_000 })) {
            statuses.push(res.status);
            firstStatus();
            if (res.status === Status.NOT_SERVING) notServing();
          }
        })(),
      );
      // Two server streams: one that ends by itself during the grace, one that never does.
      const stream = (eventId: string, started: () => void) =>
        outcome(
          (async () => {
            const ids: string[] = [];
            for await (const res of scanning.listTicketsByEvent({ tenantId: TENANT, eventId }, await ctx())) {
              ids.push(res.ticket!.id);
              started();
            }
            return ids;
          })(),
        );
      let finiteStarted: () => void = () => {};
      let endlessStarted: () => void = () => {};
      const bothStarted = Promise.all([new Promise<void>((r) => (finiteStarted = r)), new Promise<void>((r) => (endlessStarted = r))]);
      const finite = stream("finite", () => finiteStarted());
      const endless = stream("endless", () => endlessStarted());
      const held = outcome(payment.getTicketStatus({ tenantId: TENANT, ticketId: "held" }, await ctx()));
      await Promise.all([sawFirst, bothStarted, message("entered")]);
      expect(statuses).toEqual([Status.SERVING]);

      const sigtermAt = Date.now();
      proc.kill("SIGTERM");
      await sawNotServing;
      // Still serving during the delay: the load balancer is only being told.
      const during = await outcome(payment.getTicketStatus({ tenantId: TENANT, ticketId: "during-delay" }, await ctx()));
      expect(during.ok, !during.ok ? String(during.error) : "").toBe(true);

      // End of the delay: Watch ends with its last status and a proper UNAVAILABLE.
      const watched = await watch;
      expect(statuses).toEqual([Status.SERVING, Status.NOT_SERVING]);
      expect(watched.ok).toBe(false);
      if (!watched.ok) {
        expect(watched.error.code, watched.error.message).toBe(Code.Unavailable);
        expect(watched.error.message).toContain("server shutting down");
      }
      expect(watched.at - sigtermAt).toBeGreaterThanOrEqual(DELAY_MS);

      // No longer accepting: a new call (on a new connection) is refused as retryable.
      const late = createTicketServiceClient({ identity: await pki.material("payment-service"), ...common, resilience: { ...common.resilience, registry: new ResilienceRegistry() } });
      clients.push(late);
      const refused = await outcome(late.getTicketStatus({ tenantId: TENANT, ticketId: "after-delay" }, { ...(await ctx()), timeoutMs: 5_000 }));
      expect(refused.ok).toBe(false);
      if (!refused.ok) expect(refused.error.code, refused.error.message).toBe(Code.Unavailable);

      // In flight when the server stopped accepting, and completed OK after it.
      const unary = await held;
      expect(unary.ok, !unary.ok ? String(unary.error) : "").toBe(true);
      if (unary.ok) expect(unary.value.ticketId).toBe("held");
      expect(unary.at - sigtermAt).toBeGreaterThanOrEqual(DELAY_MS + 700);
      const finished = await finite;
      expect(finished.ok, !finished.ok ? String(finished.error) : "").toBe(true);
      if (finished.ok) expect(finished.value.at(-1)).toBe("finite-last");

      // Still running at the grace: ended with a status the caller can retry, not a protocol error.
      const cut = await endless;
      expect(cut.ok).toBe(false);
      if (!cut.ok) {
        expect(cut.error.code, cut.error.message).toBe(Code.Unavailable);
        expect(cut.at - sigtermAt).toBeGreaterThanOrEqual(DELAY_MS + GRACE_MS);
      }

      const exit = await exited;
      expect(exit, stderr).toEqual({ code: 0, signal: null });
      // The last log lines made it out (pino writes asynchronously).
      const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as { msg: string });
      const msgs = lines.map((l) => l.msg);
      expect(msgs).toContain("draining: reporting NOT_SERVING");
      expect(msgs.slice(-2)).toEqual(["rpc server stopped", "drain-server exiting"]);
    } finally {
      clearTimeout(killer);
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    }
  }, 45_000);
});
