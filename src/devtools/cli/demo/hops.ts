/**
 * A flow's hops, read back from the services' call logs: every server writes
 * one "rpc" line per call with the caller's verified identity, tenant, status,
 * duration, attempt and the request id that every hop of the flow shares. The
 * mesh writes each service's lines to `<data>/logs/<service>.log`.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { codeName } from "@tickettoken/rpc/internal/server/logging-interceptor";

export interface Hop {
  /** The serving workload. */
  readonly service: string;
  /** The verified caller (workload), or its address if authentication failed. */
  readonly caller: string;
  /** "/package.Service/Method" */
  readonly method: string;
  readonly tenant: string | undefined;
  readonly code: string;
  readonly durationMs: number;
  readonly attempt: number;
  /** Epoch ms when the call started (logged at its end). */
  readonly startedAt: number;
  /** Why the server refused the call, from its "call rejected" line. */
  readonly reason?: string;
  /** A client-side event instead of a served call: a retry, a stale answer, a breaker change. */
  readonly note?: string;
}

interface ResilienceLine {
  type?: string;
  target?: string;
  method?: string;
  attempt?: number;
  code?: string;
  ageMs?: number;
  from?: string;
  to?: string;
}

interface LogLine {
  msg?: string;
  service?: string;
  method?: string;
  peer?: string;
  tenant?: string;
  code?: string;
  durationMs?: number;
  attempt?: number;
  requestId?: string;
  reason?: string;
  resilience?: ResilienceLine;
  /** pino's time: epoch ms, or an ISO string (our logger's format). */
  time?: number | string;
}

function epochMs(time: number | string | undefined): number {
  if (typeof time === "number") return time;
  const ms = typeof time === "string" ? Date.parse(time) : NaN;
  return Number.isNaN(ms) ? 0 : ms;
}

/** The codes the security layer answers with, each preceded by its "call rejected" line. */
const REJECTION_CODES = new Set(["UNAUTHENTICATED", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED"]);

function parse(line: string): LogLine | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    return JSON.parse(line) as LogLine;
  } catch {
    return undefined;
  }
}

/** Every hop of `requestId` in the log directory, in the order the calls started. */
export function readHops(logDir: string, requestId: string): Hop[] {
  if (!existsSync(logDir)) return [];
  const hops: Hop[] = [];
  // "call rejected" lines, in order, per service and method: each explains the next refused call of that method.
  const reasons = new Map<string, string[]>();
  for (const file of readdirSync(logDir).filter((f) => f.endsWith(".log"))) {
    const service = file.slice(0, -".log".length);
    for (const raw of readFileSync(join(logDir, file), "utf8").split("\n")) {
      // Cheap filter first: these files hold every call the service ever served.
      if (!raw.includes(requestId)) continue;
      const l = parse(raw);
      if (!l || l.requestId !== requestId) continue;
      if (l.msg === "call rejected" && l.method && l.reason) {
        const key = `${service} ${l.method}`;
        reasons.set(key, [...(reasons.get(key) ?? []), l.reason]);
      }
      const event = l.resilience;
      if (event?.target && event.type) {
        const note = eventNote(event);
        if (note) {
          hops.push({
            service: event.target,
            caller: l.service ?? service,
            method: event.method ?? "-",
            tenant: undefined,
            code: event.code ? canonicalCode(event.code) : "-",
            durationMs: 0,
            attempt: event.type === "retry" ? (event.attempt ?? 2) - 1 : 1,
            startedAt: epochMs(l.time),
            note,
          });
        }
        continue;
      }
      if (l.msg !== "rpc" || !l.method) continue;
      const durationMs = l.durationMs ?? 0;
      hops.push({
        service: l.service ?? service,
        caller: l.peer ?? "?",
        method: l.method,
        tenant: l.tenant,
        code: l.code ?? "?",
        durationMs,
        attempt: l.attempt ?? 1,
        startedAt: epochMs(l.time) - durationMs,
      });
    }
  }
  return hops
    .sort((a, b) => a.startedAt - b.startedAt)
    .map((h) => {
      const reason = REJECTION_CODES.has(h.code) ? reasons.get(`${h.service} ${h.method}`)?.shift() : undefined;
      return reason ? { ...h, reason } : h;
    });
}

/**
 * Waits until the hops of `requestId` stop changing (servers log a call when
 * it ends, and the mesh appends lines as they come), at most `maxMs`.
 */
export async function settledHops(logDir: string, requestId: string, minHops: number, maxMs = 2000): Promise<Hop[]> {
  let last = readHops(logDir, requestId);
  for (let waited = 0; waited < maxMs; waited += 150) {
    await sleep(150);
    const next = readHops(logDir, requestId);
    if (next.length === last.length && next.length >= minHops) return next;
    last = next;
  }
  return last;
}

/** "DeadlineExceeded" (connect-es' name, as resilience events carry it) -> "DEADLINE_EXCEEDED", as the server's lines print it. */
function canonicalCode(code: string): string {
  const value = Code[code as keyof typeof Code];
  return value === undefined ? code : codeName(value);
}

/** What a client-side resilience event says about the call it happened in. */
function eventNote(e: ResilienceLine): string | undefined {
  switch (e.type) {
    case "retry":
      return "attempt failed, retried";
    case "fallback":
      return `answered from the stale cache (${Math.round((e.ageMs ?? 0) / 1000)} s old)`;
    case "breaker":
      return `circuit breaker ${e.from} -> ${e.to}`;
    case "budget_exhausted":
      return "retry budget exhausted: not retried";
    case "bulkhead_rejected":
      return "bulkhead full: rejected";
    default:
      return undefined;
  }
}

const shortMethod = (path: string) => path.replace(/^\/(?:[a-z0-9_]+\.)*/, "");

/** `order-service -> payment-service PaymentService/CompletePayment  tenant 7c9e6679  OK  12.3 ms  attempt 1` */
export function formatHop(h: Hop): string {
  if (h.note) return `${h.caller.padEnd(20)} -> ${h.service.padEnd(20)} ${shortMethod(h.method).padEnd(42)} ${h.code === "-" ? "" : `${h.code}: `}${h.note}`;
  const tenant = h.tenant ? h.tenant.slice(0, 8) : "-";
  const line = `${h.caller.padEnd(20)} -> ${h.service.padEnd(20)} ${shortMethod(h.method).padEnd(42)} tenant ${tenant.padEnd(8)}  ${h.code.padEnd(19)} ${h.durationMs.toFixed(1).padStart(7)} ms  attempt ${h.attempt}`;
  return h.reason ? `${line}\n${" ".repeat(24)}server log: ${h.reason}` : line;
}
