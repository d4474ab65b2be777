/**
 * Shared set-up for the resilience scenarios: one PKI, a scripted
 * ticket-service behind a fault proxy, and clients that each get their own
 * policy registry (own breaker, budget and bulkhead) and a movable clock.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { TicketServiceContract, type TicketServiceClient } from "../../src/contracts/gen/tickettoken/ticket/v1/ticket_service_rpc.ts";
import { closeClient, createServiceClient } from "../../src/runtime/client/service-client.ts";
import { ResilienceRegistry } from "../../src/runtime/resilience/registry.ts";
import type { ResilienceEvent } from "../../src/runtime/resilience/events.ts";
import type { ResilienceOptions } from "../../src/runtime/resilience/options.ts";
import type { MaterialSource } from "../../src/runtime/identity/material.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { createScriptedServer, type ScriptedServer } from "../support/scripted-server.ts";
import { createFaultProxy, type FaultProxy } from "../support/fault-proxy.ts";

export const TENANT = "tenant-resilience";
export const OTHER_TENANT = "tenant-other";

/** Real time plus an offset the test can move forward (breaker windows, half-open, budget, cache age). */
export interface ManualClock {
  now(): number;
  advance(ms: number): void;
}

export function manualClock(): ManualClock {
  let offset = 0;
  return { now: () => Date.now() + offset, advance: (ms) => void (offset += ms) };
}

/**
 * TicketServiceContract as an older or hand-written contract describes it:
 * transferTicket declares neither IDEMPOTENT nor an idempotency key. Codegen
 * now refuses such a mutating method, but a client built on an older contract
 * still meets one, and must never retry it (bar one connection refused before
 * any byte was sent). Only clients use it; the server keeps the real contract.
 */
export const UndeclaredTransferContract: typeof TicketServiceContract = {
  ...TicketServiceContract,
  methods: {
    ...TicketServiceContract.methods,
    transferTicket: { ...TicketServiceContract.methods.transferTicket, idempotency: "unknown", idempotencyKey: false },
  },
};

export interface Harness {
  readonly pki: TestPki;
  readonly ticket: ScriptedServer;
  readonly proxy: FaultProxy;
  readonly callers: Record<"payment-service" | "transfer-service", MaterialSource>;
  /** Call options carrying a context token for TENANT (the methods are tenant-scoped). */
  readonly ctx: { headers: Record<string, string> };
  readonly otherCtx: { headers: Record<string, string> };
  stop(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  const pki = await createTestPki();
  const ticket = await createScriptedServer(pki);
  const proxy = await createFaultProxy(ticket.port);
  const [payment, transfer, token, otherToken] = await Promise.all([
    pki.material("payment-service"),
    pki.material("transfer-service"),
    pki.contextToken({ tenantId: TENANT, userId: "user-1" }),
    pki.contextToken({ tenantId: OTHER_TENANT, userId: "user-2" }),
  ]);
  return {
    pki,
    ticket,
    proxy,
    callers: { "payment-service": payment, "transfer-service": transfer },
    ctx: { headers: { "tt-context": token } },
    otherCtx: { headers: { "tt-context": otherToken } },
    async stop() {
      await proxy.close();
      await ticket.stop();
      pki.cleanup();
    },
  };
}

export interface TestClient {
  readonly client: TicketServiceClient;
  readonly registry: ResilienceRegistry;
  readonly clock: ManualClock;
  readonly events: ResilienceEvent[];
  /** Parsed pino lines the resilience stack logged. */
  readonly logs: Record<string, unknown>[];
  close(): void;
}

export function testClient(
  h: Harness,
  caller: "payment-service" | "transfer-service",
  options: {
    resilience?: ResilienceOptions & { registry?: ResilienceRegistry };
    address?: string;
    env?: NodeJS.ProcessEnv;
    /** The contract metadata the client is built from (default: the generated one). */
    contract?: typeof TicketServiceContract;
  } = {},
): TestClient {
  const clock = manualClock();
  const events: ResilienceEvent[] = [];
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const registry = options.resilience?.registry ?? new ResilienceRegistry({ clock, logger: pino({ level: "info" }, sink), observe: (e) => events.push(e) });
  const client = createServiceClient(options.contract ?? TicketServiceContract, {
    identity: h.callers[caller],
    address: options.address ?? h.proxy.address,
    env: options.env ?? {},
    resilience: { ...options.resilience, registry },
  });
  return { client, registry, clock, events, logs, close: () => closeClient(client) };
}

/** Milliseconds `fn` took, and its outcome. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - start, value };
  } catch (error) {
    return { ms: performance.now() - start, error };
  }
}
