/**
 * Readiness as an operator sees it: grpc.health.v1 Check over mTLS as the
 * `ops` identity (the framework client mints the call token), polled until
 * the server answers SERVING or the time is up.
 */
import { closeClient, createServiceClient } from "@tickettoken/rpc/internal/client/service-client";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@tickettoken/rpc/gen/grpc/health/v1/health_pb.js";
import type { MaterialSource } from "@tickettoken/rpc/internal/identity/material";
import type { ServiceName } from "@tickettoken/rpc/internal/identity/workloads";
import { frameworkContract, HEALTH_CALLERS } from "@tickettoken/rpc/internal/server/framework-contracts";

const POLL_MS = 200;

/** Resolves when `address` answers SERVING; rejects with the last error once `timeoutMs` has passed. */
export async function waitServing(ops: MaterialSource, service: ServiceName, address: string, timeoutMs: number): Promise<void> {
  const client = createServiceClient(frameworkContract(Health, service, HEALTH_CALLERS), { identity: ops, address });
  const deadline = Date.now() + timeoutMs;
  let last: unknown = "no answer";
  try {
    while (Date.now() < deadline) {
      try {
        const res = await client.check({ service: "" }, { timeoutMs: Math.max(1, Math.min(2_000, deadline - Date.now())) });
        if (res.status === Status.SERVING) return;
        last = `status ${Status[res.status]}`;
      } catch (err) {
        last = err instanceof Error ? err.message : err;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    throw new Error(`${service} did not answer SERVING at ${address} within ${timeoutMs / 1000} s (${String(last)})`);
  } finally {
    closeClient(client);
  }
}
