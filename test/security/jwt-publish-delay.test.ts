/**
 * "New kid published before use": after `certs rotate-jwt`, the new key is in
 * the bundle at once but signs only after the publish delay, so verifiers
 * that reload the bundle on their 5 s poll never see an unknown kid.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { initPki, JWT_KEY_PUBLISH_DELAY_MS, loadTrustBundle, loadWorkloadMaterial, pkiPaths, rotateJwtKey } from "../../src/devtools/pki/dev-ca.ts";
import { workloadSpiffeId } from "../../src/runtime/identity/spiffe-id.ts";

const dir = mkdtempSync(join(tmpdir(), "tt-jwt-delay-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("JWT key rotation publish delay", () => {
  it("keeps signing with the previous key until the new one has been published long enough", async () => {
    const t0 = new Date("2026-11-22T10:00:00Z");
    await initPki({ dir, now: t0 });
    const before = await loadWorkloadMaterial(dir, "order-service", { now: t0 });
    const oldKid = before.jwt.signingKey(t0.getTime()).kid;

    const rotatedAt = new Date(t0.getTime() + 60_000);
    const { kid: newKid } = await rotateJwtKey({ dir, workload: "order-service", now: rotatedAt });
    expect(newKid).not.toBe(oldKid);

    const bundle = await loadTrustBundle(pkiPaths(dir).bundleJson);
    const published = bundle.jwtKeys.get(workloadSpiffeId("order-service"))!.map((k) => k.kid);
    expect(published).toEqual(expect.arrayContaining([oldKid, newKid]));

    const after = await loadWorkloadMaterial(dir, "order-service", { now: rotatedAt });
    expect(after.jwt.current.kid).toBe(newKid);
    expect(after.jwt.signingKey(rotatedAt.getTime()).kid).toBe(oldKid);
    expect(after.jwt.signingKey(rotatedAt.getTime() + JWT_KEY_PUBLISH_DELAY_MS - 1).kid).toBe(oldKid);
    expect(after.jwt.signingKey(rotatedAt.getTime() + JWT_KEY_PUBLISH_DELAY_MS).kid).toBe(newKid);
  });
});
