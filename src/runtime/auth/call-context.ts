/**
 * The verified facts about a call, for handlers: who called (from the mTLS
 * certificate and the call token), and on whose behalf (from the signed
 * context token). Handlers read them with `callContext(ctx)`; headers such as
 * x-tenant-id are never consulted.
 */
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { WorkloadName } from "../identity/workloads.ts";

export interface CallerIdentity {
  /** spiffe://tickettoken.internal/ns/<env>/sa/<workload> */
  readonly spiffeId: string;
  readonly workload: WorkloadName;
  readonly env: string;
}

export interface VerifiedCallContext {
  readonly caller: CallerIdentity;
  /** Tenant of the signed context token; undefined when the call carries none. */
  readonly tenantId: string | undefined;
  readonly userId: string | undefined;
  readonly scopes: readonly string[];
  /** Transaction id of the context token (one per edge request). */
  readonly txn: string | undefined;
}

export const callContextKey = createContextKey<VerifiedCallContext | undefined>(undefined, { description: "tt-rpc verified call context" });

/** The verified call context; throws if the framework's authentication did not run (a wiring bug). */
export function callContext(ctx: HandlerContext): VerifiedCallContext {
  const value = ctx.values.get(callContextKey);
  if (!value) throw new Error("no verified call context: is this handler served by tt-rpc createServer?");
  return value;
}

/** Header carrying the signed context token, forwarded unchanged on every hop. */
export const CONTEXT_TOKEN_HEADER = "tt-context";
export const AUTHORIZATION_HEADER = "authorization";
