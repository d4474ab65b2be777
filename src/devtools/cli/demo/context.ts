/**
 * What a demo flow acts with: the dev PKI's identities (each caller calls as
 * itself, with its own certificate and JWT key), context tokens minted the way
 * the edge mints them, and one request id shared by every hop of the flow.
 */
import { randomUUID } from "node:crypto";
import type { CallOptions } from "@connectrpc/connect";
import { createContextTokenMinter } from "@tickettoken/rpc/internal/auth/context-token";
import { closeClient, type ServiceClientOptions } from "@tickettoken/rpc/internal/client/service-client";
import { createMaterialSource, type MaterialSource } from "@tickettoken/rpc/internal/identity/material";
import { loadContextSigningKey } from "@tickettoken/rpc/internal/identity/pki-files";
import { workloadSpiffeId } from "@tickettoken/rpc/internal/identity/spiffe-id";
import type { WorkloadName } from "@tickettoken/rpc/internal/identity/workloads";
import { ResilienceRegistry } from "@tickettoken/rpc/internal/resilience/registry";
import { REQUEST_ID_HEADER } from "@tickettoken/rpc/internal/observability/headers";

export interface DemoContext {
  readonly requestId: string;
  /** A generated client calling as `workload`. */
  as<C extends object>(workload: WorkloadName, factory: (o: ServiceClientOptions) => C): Promise<C>;
  /** Call options: a context token for (tenant, user, scopes) and this flow's request id. */
  call(tenantId: string, userId: string, scopes?: string[]): Promise<CallOptions>;
  /** Prints one line of the flow's own narrative. */
  say(line: string): void;
  close(): void;
}

export async function createDemoContext(opts: { certs: string; env: NodeJS.ProcessEnv; say: (line: string) => void; flow: string }): Promise<DemoContext> {
  const requestId = `demo-${opts.flow}-${randomUUID()}`;
  const materials = new Map<WorkloadName, MaterialSource>();
  const clients: object[] = [];
  // The demo's own policies: a flow that shows a breaker opening must not trip on a previous run's state.
  const registry = new ResilienceRegistry();
  const ctxKey = await loadContextSigningKey(opts.certs);
  const minter = createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: ctxKey.signingKey() });
  return {
    requestId,
    async as(workload, factory) {
      let material = materials.get(workload);
      if (!material) {
        material = await createMaterialSource({ dir: opts.certs, workload, pollMs: 0 });
        materials.set(workload, material);
      }
      const client = factory({ identity: material, env: opts.env, resilience: { registry } });
      clients.push(client);
      return client;
    },
    async call(tenantId, userId, scopes = []) {
      const token = await minter.mint({ tenantId, userId, scopes, ttlSeconds: 60 });
      return { headers: { "tt-context": token, [REQUEST_ID_HEADER]: requestId }, timeoutMs: 15_000 };
    },
    say: opts.say,
    close() {
      clients.forEach((c) => closeClient(c));
      materials.forEach((m) => m.close());
    },
  };
}
