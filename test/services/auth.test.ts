/**
 * auth-service over mTLS through its generated client: every RPC, success and
 * error paths, tenant scoping of the discovery methods, and end-user access
 * tokens (signed by a key auth-service generated into its own database):
 * valid, tampered, foreign-signed, expired (injected clock), revoked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { createAuthServiceClient, type AuthServiceClient } from "../../src/contracts/gen/tickettoken/auth/v1/auth_service_rpc.ts";
import { authModule } from "../../services/auth/index.ts";
import { createSqliteAuthStore } from "../../services/auth/store.ts";
import { createUserTokens, mintUserToken, type UserTokens } from "../../services/auth/user-tokens.ts";
import { openDatabase, loadMigrations } from "../../services/shared/database.ts";
import { ACME, GLOBEX } from "../../services/shared/demo-data.ts";
import { seedAuth } from "../../services/auth/seed.ts";
import { createTestPki, type TestPki } from "../support/pki.ts";
import { callError, startService, violatedFields, type ServiceHarness } from "../support/service-harness.ts";

let pki: TestPki;
let auth: ServiceHarness;
let events: AuthServiceClient;
let gateway: AuthServiceClient;
let tokens: UserTokens;
let clock = new Date("2026-12-01T12:00:00Z");

beforeAll(async () => {
  pki = await createTestPki();
  auth = await startService(pki, authModule, { now: () => clock });
  events = await auth.client("event-service", createAuthServiceClient);
  gateway = await auth.client("api-gateway", createAuthServiceClient);
  const db = auth.service.runtime.db;
  tokens = createUserTokens(createSqliteAuthStore(db), db, () => clock);
});

afterAll(async () => {
  await auth?.stop();
  pki?.cleanup();
});

/** Call options without a context token (identity discovery at the edge). */
const noContext = { timeoutMs: 10_000 };

describe("auth-service GetUser", () => {
  it("returns the tenant's user with role permissions and explicit grants", async () => {
    const res = await events.getUser({ tenantId: ACME, userId: "u-2" }, await auth.as(ACME));
    expect(res.user).toMatchObject({ id: "u-2", tenantId: ACME, email: "bob@acme.test", role: "customer", emailVerified: false });
    expect(res.user?.permissions).toEqual(["events:read", "marketplace:sell", "tickets:purchase", "tickets:read", "tickets:transfer"]);
  });

  it("another tenant's user and a deleted user are NOT_FOUND; a bad id is INVALID_ARGUMENT", async () => {
    expect((await callError(events.getUser({ tenantId: GLOBEX, userId: "u-1" }, await auth.as(GLOBEX)))).code).toBe(Code.NotFound);
    expect((await callError(events.getUser({ tenantId: ACME, userId: "u-deleted" }, await auth.as(ACME)))).code).toBe(Code.NotFound);
    const bad = await callError(events.getUser({ tenantId: ACME, userId: "" }, await auth.as(ACME)));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["user_id"]);
  });
});

describe("auth-service GetUserTenant", () => {
  it("resolves a user's tenant without a context token", async () => {
    const res = await events.getUserTenant({ userId: "u-g1" }, noContext);
    expect(res).toMatchObject({ userId: "u-g1", tenantId: GLOBEX, tenantName: "Globex Events", tenantSlug: "globex" });
  });

  it("a context tenant scopes the answer: another tenant's user is NOT_FOUND", async () => {
    expect((await events.getUserTenant({ userId: "u-1" }, await auth.as(ACME))).tenantId).toBe(ACME);
    expect((await callError(events.getUserTenant({ userId: "u-g1" }, await auth.as(ACME)))).code).toBe(Code.NotFound);
    expect((await callError(events.getUserTenant({ userId: "nobody" }, noContext))).code).toBe(Code.NotFound);
  });
});

describe("auth-service GetUserByEmail", () => {
  it("matches case-insensitively, with or without a context tenant", async () => {
    expect((await events.getUserByEmail({ email: "Alice@ACME.test" }, noContext)).user?.id).toBe("u-1");
    expect((await events.getUserByEmail({ email: "carol@globex.test" }, await auth.as(GLOBEX))).user?.id).toBe("u-g1");
  });

  it("another tenant's address is NOT_FOUND, a deleted one too; a non-address is INVALID_ARGUMENT", async () => {
    expect((await callError(events.getUserByEmail({ email: "carol@globex.test" }, await auth.as(ACME)))).code).toBe(Code.NotFound);
    expect((await callError(events.getUserByEmail({ email: "gone@acme.test" }, noContext))).code).toBe(Code.NotFound);
    const bad = await callError(events.getUserByEmail({ email: "not-an-email" }, noContext));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["email"]);
  });
});

describe("auth-service ListAdminUsers", () => {
  it("lists only the tenant's admins", async () => {
    const acme = await events.listAdminUsers({ tenantId: ACME }, await auth.as(ACME));
    expect(acme.users.map((u) => u.id)).toEqual(["admin-1"]);
    expect(acme.users[0]).toMatchObject({ permissions: ["*"], mfaEnabled: true });
    const globex = await events.listAdminUsers({ tenantId: GLOBEX }, await auth.as(GLOBEX));
    expect(globex.users.map((u) => u.id)).toEqual(["admin-g1"]);
  });

  it("a tenant other than the context's is refused by the tenant-key check", async () => {
    const err = await callError(events.listAdminUsers({ tenantId: GLOBEX }, await auth.as(ACME)));
    expect(err.code).toBe(Code.PermissionDenied);
  });
});

describe("auth-service ValidatePermissions", () => {
  it("grants by role, wildcard and explicit grant, and reports the venue role", async () => {
    const manager = await events.validatePermissions(
      { tenantId: ACME, userId: "admin-1", permissions: ["events:write", "payments:refund"], venueId: "v-1" },
      await auth.as(ACME),
    );
    expect(manager).toMatchObject({ valid: true, userId: "admin-1", role: "admin", venueRole: "manager", tenantId: ACME, reason: "" });
    const bob = await events.validatePermissions({ tenantId: ACME, userId: "u-2", permissions: ["marketplace:sell", "tickets:read"] }, await auth.as(ACME));
    expect(bob.valid).toBe(true);
  });

  it("names the missing permissions; an unknown user is not valid; a malformed permission is INVALID_ARGUMENT", async () => {
    const alice = await events.validatePermissions(
      { tenantId: ACME, userId: "u-1", permissions: ["tickets:read", "events:write"], venueId: "v-1" },
      await auth.as(ACME),
    );
    expect(alice).toMatchObject({ valid: false, role: "customer", venueRole: "", reason: "Missing permissions: events:write" });
    const foreign = await events.validatePermissions({ tenantId: GLOBEX, userId: "u-1", permissions: ["events:read"] }, await auth.as(GLOBEX));
    expect(foreign).toMatchObject({ valid: false, reason: "User not found" });
    const bad = await callError(events.validatePermissions({ tenantId: ACME, userId: "u-1", permissions: ["ok:read", "no spaces"] }, await auth.as(ACME)));
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(violatedFields(bad)).toEqual(["permissions[1]"]);
  });
});

describe("auth-service ValidateUsers", () => {
  it("splits found and not found (other tenant's and deleted users are not found)", async () => {
    const res = await events.validateUsers({ tenantId: ACME, userIds: ["u-1", "u-g1", "admin-1", "u-deleted"] }, await auth.as(ACME));
    expect(res.users.map((u) => u.id)).toEqual(["u-1", "admin-1"]);
    expect(res).toMatchObject({ found: 2, requested: 4, notFoundUserIds: ["u-g1", "u-deleted"] });
  });

  it("refuses an empty list and more than 100 ids", async () => {
    const empty = await callError(events.validateUsers({ tenantId: ACME, userIds: [] }, await auth.as(ACME)));
    expect(violatedFields(empty)).toEqual(["user_ids"]);
    const tooMany = await callError(events.validateUsers({ tenantId: ACME, userIds: Array.from({ length: 101 }, (_, i) => `u-${i}`) }, await auth.as(ACME)));
    expect(tooMany.code).toBe(Code.InvalidArgument);
    expect(violatedFields(tooMany)).toEqual(["user_ids"]);
  });
});

describe("auth-service ValidateToken", () => {
  it("accepts a token it issued and returns the user and expiry", async () => {
    const issued = await tokens.issue({ tenantId: ACME, userId: "u-1", ttlSeconds: 600 });
    const res = await gateway.validateToken({ token: issued.token }, noContext);
    expect(res).toMatchObject({ valid: true, reason: "" });
    expect(res.user).toMatchObject({ id: "u-1", tenantId: ACME });
    expect(Number(res.expiresAt?.seconds)).toBe(issued.expiresAt.getTime() / 1000);
    // The signing key was generated at run time and lives in the service's database.
    const keys = auth.service.runtime.db.prepare("SELECT tenant_id FROM signing_keys").all() as { tenant_id: string }[];
    expect(keys.map((k) => k.tenant_id)).toEqual([ACME]);
  });

  it("a tampered payload is a bad signature; garbage is malformed; both are valid=false, not errors", async () => {
    const { token } = await tokens.issue({ tenantId: ACME, userId: "u-1" });
    const [h, p, s] = token.split(".");
    const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: "admin-1" })).toString("base64url")}.${s}`;
    const res = await gateway.validateToken({ token: forged }, noContext);
    expect(res).toMatchObject({ valid: false, reason: "bad signature" });
    expect(res.user).toBeUndefined();
    expect(await gateway.validateToken({ token: "not.a.jwt" }, noContext)).toMatchObject({ valid: false, reason: "malformed" });
  });

  it("mintUserToken mints against the service's database, as a login would", async () => {
    const { token } = await mintUserToken(auth.service.runtime.db, { tenantId: GLOBEX, userId: "admin-g1" }, () => clock);
    const res = await gateway.validateToken({ token }, noContext);
    expect(res).toMatchObject({ valid: true, user: { id: "admin-g1", tenantId: GLOBEX, role: "admin" } });
  });

  it("a token signed by a key this service does not hold is not valid", async () => {
    // Another auth-service database (its own generated key) for the same users.
    const other = openDatabase(":memory:", loadMigrations(authModule.migrationsDir));
    try {
      seedAuth(other, clock);
      const foreign = await createUserTokens(createSqliteAuthStore(other), other, () => clock).issue({ tenantId: ACME, userId: "u-1" });
      expect(await gateway.validateToken({ token: foreign.token }, noContext)).toMatchObject({ valid: false, reason: "unknown signing key" });
    } finally {
      other.close();
    }
  });

  it("expired (injected clock) and revoked tokens are not valid", async () => {
    const issued = await tokens.issue({ tenantId: ACME, userId: "u-2", ttlSeconds: 60 });
    const start = clock;
    try {
      clock = new Date(start.getTime() + 120_000);
      expect(await gateway.validateToken({ token: issued.token }, noContext)).toMatchObject({ valid: false, reason: "expired" });
    } finally {
      clock = start;
    }
    expect((await gateway.validateToken({ token: issued.token }, noContext)).valid).toBe(true);
    expect(tokens.revoke(ACME, issued.sessionId)).toBe(true);
    expect(await gateway.validateToken({ token: issued.token }, noContext)).toMatchObject({ valid: false, reason: "revoked" });
  });

  it("a context tenant other than the token's answers not valid; an empty token is INVALID_ARGUMENT", async () => {
    const { token } = await tokens.issue({ tenantId: GLOBEX, userId: "u-g1" });
    expect((await gateway.validateToken({ token }, await auth.as(GLOBEX))).valid).toBe(true);
    expect(await gateway.validateToken({ token }, await auth.as(ACME))).toMatchObject({ valid: false, reason: "user not found" });
    const err = await callError(gateway.validateToken({ token: "" }, noContext));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violatedFields(err)).toEqual(["token"]);
  });

  it("only api-gateway (and ops) may call it", async () => {
    const { token } = await tokens.issue({ tenantId: ACME, userId: "u-1" });
    expect((await callError(events.validateToken({ token }, noContext))).code).toBe(Code.PermissionDenied);
  });
});
