/**
 * A real ticket-service (HTTP/2 + mTLS, the framework's full server chain)
 * whose handlers do what the test scripted: fail with a code (and pushback),
 * hang until cancelled, answer late, or answer. It records every attempt it
 * saw, so tests assert what reached the server, not what the client believes.
 *
 * Methods used, one per retry-safety kind:
 *   getTicketStatus        NO_SIDE_EFFECTS
 *   cancelTicketsBatch     IDEMPOTENT
 *   transferTicket         unknown, idempotency key declared (test/resilience/harness.ts
 *                          has a client-side variant declaring neither: not retry-safe)
 *   handlePaymentSucceeded unknown, idempotency key declared (its effect also counted here per key)
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { createServer, type RpcServer } from "../../src/runtime/server/server.ts";
import { implement } from "../../src/runtime/server/routes.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { TicketServiceContract } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { TicketStatus } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_pb.ts";
import { RetryInfoSchema } from "../../src/runtime/gen/google/rpc/error_details_pb.ts";
import type { TestPki } from "./pki.ts";

export type Step =
  | { readonly fail: Code; readonly pushbackMs?: number; readonly retryInfoMs?: number; readonly afterEffect?: boolean }
  | { readonly hang: true }
  | { readonly delayMs: number }
  | { readonly ok: true }
  /** Runs `action` (e.g. reset the proxy's connections) while the call is in flight, then hangs. */
  | { readonly during: () => void };

export type ScriptedMethod = "getTicketStatus" | "cancelTicketsBatch" | "transferTicket" | "handlePaymentSucceeded";

export interface Attempt {
  readonly method: ScriptedMethod;
  /** Date.now() when the handler started. */
  readonly at: number;
  readonly idempotencyKey: string | null;
  /** The timeout the call arrived with (grpc-timeout), ms. */
  readonly timeoutMs: number | undefined;
  /** The attempt header the client sent (absent on a first attempt). */
  readonly attemptHeader: string | null;
  /** Date.now() when the handler saw its call cancelled (hung steps only). */
  cancelledAt?: number;
}

export interface ScriptedServer {
  readonly server: RpcServer;
  readonly port: number;
  /** Next steps for `method`, consumed one per attempt; with none left, the handler answers. */
  script(method: ScriptedMethod, ...steps: Step[]): void;
  readonly attempts: Attempt[];
  count(method: ScriptedMethod): number;
  /** Effects applied by handlePaymentSucceeded, per idempotency key. */
  readonly effects: Map<string, number>;
  /** Clears scripts, attempts and effects between tests. */
  clear(): void;
  stop(): Promise<void>;
}

export async function createScriptedServer(pki: TestPki): Promise<ScriptedServer> {
  const scripts = new Map<ScriptedMethod, Step[]>();
  const attempts: Attempt[] = [];
  const effects = new Map<string, number>();

  /** Plays the next step; returns when the handler should answer normally. */
  async function play(method: ScriptedMethod, ctx: HandlerContext, effect?: () => void): Promise<void> {
    const attempt: Attempt = { method, at: Date.now(), idempotencyKey: ctx.requestHeader.get("idempotency-key"), timeoutMs: ctx.timeoutMs(), attemptHeader: ctx.requestHeader.get("tt-attempt") };
    attempts.push(attempt);
    const step = scripts.get(method)?.shift() ?? { ok: true };
    if ("fail" in step) {
      if (step.afterEffect) effect?.();
      const err = new ConnectError(`scripted ${Code[step.fail]}`, step.fail);
      if (step.pushbackMs !== undefined) err.metadata.set("grpc-retry-pushback-ms", String(step.pushbackMs));
      if (step.retryInfoMs !== undefined) err.details.push({ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(step.retryInfoMs) }) });
      throw err;
    }
    if ("hang" in step || "during" in step) {
      if ("during" in step) step.during();
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) return resolve();
        ctx.signal.addEventListener("abort", () => resolve(), { once: true });
      });
      attempt.cancelledAt = Date.now();
      throw new ConnectError("cancelled", Code.Canceled);
    }
    if ("delayMs" in step) await new Promise((r) => setTimeout(r, step.delayMs));
    effect?.();
  }

  const server = await createServer({
    identity: await pki.material("ticket-service"),
    port: 0,
    logger: silentLogger(),
    services: [
      implement(TicketServiceContract, {
        async getTicketStatus(req, ctx) {
          await play("getTicketStatus", ctx);
          return { ticketId: req.ticketId, status: TicketStatus.SOLD, canRefund: true };
        },
        async cancelTicketsBatch(req, ctx) {
          await play("cancelTicketsBatch", ctx);
          return { results: req.ticketIds.map((ticketId) => ({ ticketId })) };
        },
        async transferTicket(req, ctx) {
          await play("transferTicket", ctx);
          return { ticket: { id: req.ticketId } };
        },
        async handlePaymentSucceeded(req, ctx) {
          const key = ctx.requestHeader.get("idempotency-key") ?? "";
          let duplicate = true;
          await play("handlePaymentSucceeded", ctx, () => {
            // Deduplicated by key, as the server's dedupe step does: the effect happens once per key.
            if (!effects.has(key)) {
              effects.set(key, 1);
              duplicate = false;
            }
          });
          return { orderId: req.orderId, ticketIds: ["t-1"], duplicate };
        },
      }),
    ],
  });

  return {
    server,
    port: server.port,
    script: (method, ...steps) => scripts.set(method, [...(scripts.get(method) ?? []), ...steps]),
    attempts,
    count: (method) => attempts.filter((a) => a.method === method).length,
    effects,
    clear() {
      scripts.clear();
      attempts.length = 0;
      effects.clear();
    },
    stop: () => server.stop(1000),
  };
}
