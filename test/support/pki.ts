/**
 * Test PKI: the real dev PKI (`tt-rpc certs init` code path) in a temp dir,
 * plus helpers to load a workload's material and mint context tokens the way
 * the edge does.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initPki, loadContextSigningKey } from "../../src/devtools/pki/dev-ca.ts";
import { createMaterialSource, type MaterialSource } from "../../src/runtime/identity/material.ts";
import { createContextTokenMinter } from "../../src/runtime/auth/context-token.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";
import type { WorkloadName } from "../../src/runtime/identity/workloads.ts";

export interface TestPki {
  readonly dir: string;
  material(workload: WorkloadName): Promise<MaterialSource>;
  contextToken(input: { tenantId: string; userId: string; scopes?: string[]; ttlSeconds?: number }): Promise<string>;
  cleanup(): void;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), "tt-pki-"));
  await initPki({ dir });
  const sources: MaterialSource[] = [];
  const ctxKey = await loadContextSigningKey(dir);
  const minter = createContextTokenMinter({ issuer: workloadSpiffeId("api-gateway"), key: ctxKey.current });
  return {
    dir,
    async material(workload) {
      const m = await createMaterialSource({ dir, workload, pollMs: 0 });
      sources.push(m);
      return m;
    },
    contextToken: ({ tenantId, userId, scopes = [], ttlSeconds }) =>
      minter.mint({ tenantId, userId, scopes, ...(ttlSeconds ? { ttlSeconds } : {}) }),
    cleanup() {
      sources.forEach((s) => s.close());
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
