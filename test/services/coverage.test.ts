/**
 * Every method of every contract is served by a real handler and exercised by
 * a test: the list comes from the generated contracts, so a new RPC without
 * an implementation in services/ or a call in test/services fails here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { serviceContracts } from "../../src/contracts/gen/contracts.ts";
import { serviceModules } from "../../services/index.ts";
import type { ServiceModule } from "../../services/shared/runtime.ts";
import { openService } from "../../services/shared/runtime.ts";
import { silentLogger } from "../../src/runtime/observability/logger.ts";
import { REPO_ROOT } from "../support/exec.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";

const testSources = readdirSync(join(REPO_ROOT, "test/services"))
  .filter((f) => f.endsWith(".test.ts") && f !== "coverage.test.ts")
  .map((f) => readFileSync(join(REPO_ROOT, "test/services", f), "utf8"))
  .join("\n");

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});
afterAll(() => pki?.cleanup());

describe("every RPC is implemented and tested", () => {
  for (const contract of serviceContracts) {
    it(`${contract.name}: a handler for every method, each called by a test through the generated client`, async () => {
      const module = (serviceModules as Partial<Record<string, ServiceModule>>)[contract.name];
      expect(module, `${contract.name} has no module in services/index.ts`).toBeDefined();
      const opened = openService(module!, { identity: await pki.material(contract.name), logger: silentLogger(), database: ":memory:", env: {} });
      try {
        const impl = opened.registration.impl as Record<string, unknown>;
        const missing = contract.service.methods.filter((m) => typeof impl[m.localName] !== "function").map((m) => m.name);
        expect(missing, `${contract.name}: methods without a handler`).toEqual([]);
        const untested = contract.service.methods.filter((m) => !new RegExp(`\\.${m.localName}\\(`).test(testSources)).map((m) => m.name);
        expect(untested, `${contract.name}: methods no test in test/services calls`).toEqual([]);
      } finally {
        opened.close();
      }
    });
  }
});
