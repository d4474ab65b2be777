/**
 * auth-service's internal RPC surface: who a user is, which tenant they belong
 * to, what they may do, and whether an end-user access token is valid. Reads
 * only.
 *
 * Scoping: tenant-keyed methods answer for the context tenant. The discovery
 * methods without a tenant key (GetUserTenant, GetUserByEmail, ValidateToken)
 * exist to find a user's tenant, so without a context tenant they search every
 * tenant; with one, it still scopes the answer and another tenant's user is
 * NOT_FOUND (ValidateToken: not valid, "user not found").
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext } from "@connectrpc/connect";
import { implement, type ServiceRegistration } from "@tickettoken/rpc";
import { callContext } from "@tickettoken/rpc";
import { AuthServiceContract } from "@tickettoken/contracts/tickettoken/auth/v1/auth_service_rpc";
import { UserSchema, type User } from "@tickettoken/contracts/tickettoken/auth/v1/auth_service_pb";
import type { Logger } from "@tickettoken/rpc";
import { tenantOf } from "../shared/context.ts";
import { failedPrecondition, notFound } from "../shared/errors.ts";
import { validate } from "../shared/validate.ts";
import type { AuthStore, UserRow } from "./store.ts";
import type { UserTokens } from "./user-tokens.ts";

/** Roles listed by ListAdminUsers. */
const ADMIN_ROLES = ["admin", "superadmin"] as const;
const MAX_USERS_PER_CHECK = 100;
const MAX_PERMISSIONS_PER_CHECK = 50;
const PERMISSION = /^(\*|[a-z][a-z0-9_-]{0,63}:(\*|[a-z][a-z0-9_-]{0,63}))$/;

/** True when `held` grants `wanted`: "*" grants all, "events:*" every events permission. */
export function grants(held: readonly string[], wanted: string): boolean {
  const resource = wanted.slice(0, wanted.indexOf(":") + 1);
  return held.some((p) => p === "*" || p === wanted || (resource !== "" && p === `${resource}*`));
}

function toUser(u: UserRow, permissions: string[]): User {
  return create(UserSchema, {
    id: u.id,
    tenantId: u.tenantId,
    email: u.email,
    firstName: u.firstName,
    lastName: u.lastName,
    role: u.role,
    permissions,
    emailVerified: u.emailVerified,
    mfaEnabled: u.mfaEnabled,
    createdAt: timestampFromDate(new Date(u.createdAt)),
    updatedAt: timestampFromDate(new Date(u.updatedAt)),
  });
}

export function authService(store: AuthStore, tokens: UserTokens, logger: Logger): ServiceRegistration {
  const user = (u: UserRow): User => toUser(u, store.permissionsOf(u.tenantId, u.id));
  /** The context tenant when the call carries one (discovery methods have no tenant key). */
  const contextTenant = (ctx: HandlerContext): string | undefined => callContext(ctx).tenantId;

  return implement(AuthServiceContract, {
    validatePermissions(req, ctx) {
      const v = validate().id("user_id", req.userId).optionalId("venue_id", req.venueId);
      v.check(req.permissions.length <= MAX_PERMISSIONS_PER_CHECK, "permissions", `at most ${MAX_PERMISSIONS_PER_CHECK}`);
      req.permissions.forEach((p, i) => v.check(PERMISSION.test(p), `permissions[${i}]`, 'must look like "resource:action"'));
      v.done();
      const tenantId = tenantOf(ctx);
      const found = store.getUser(tenantId, req.userId);
      if (!found) return { valid: false, userId: req.userId, tenantId, reason: "User not found" };
      const held = store.permissionsOf(tenantId, found.id);
      const missing = req.permissions.filter((p) => !grants(held, p));
      const venueRole = req.venueId === "" ? "" : (store.activeVenueRole(tenantId, found.id, req.venueId) ?? "");
      return {
        valid: missing.length === 0,
        userId: found.id,
        role: found.role,
        venueRole,
        tenantId,
        reason: missing.length === 0 ? "" : `Missing permissions: ${missing.join(", ")}`,
      };
    },

    validateUsers(req, ctx) {
      const v = validate();
      v.check(req.userIds.length >= 1 && req.userIds.length <= MAX_USERS_PER_CHECK, "user_ids", `between 1 and ${MAX_USERS_PER_CHECK} ids`);
      req.userIds.forEach((id, i) => v.id(`user_ids[${i}]`, id));
      v.done();
      const tenantId = tenantOf(ctx);
      const users = [];
      const notFoundIds = [];
      for (const id of new Set(req.userIds)) {
        const u = store.getUser(tenantId, id);
        if (u) users.push({ id: u.id, email: u.email, role: u.role, tenantId: u.tenantId, emailVerified: u.emailVerified, mfaEnabled: u.mfaEnabled });
        else notFoundIds.push(id);
      }
      return { users, found: users.length, requested: req.userIds.length, notFoundUserIds: notFoundIds };
    },

    getUserTenant(req, ctx) {
      validate().id("user_id", req.userId).done();
      const scope = contextTenant(ctx);
      const u = scope === undefined ? store.findUserById(req.userId) : store.getUser(scope, req.userId);
      const tenant = u && store.getTenant(u.tenantId);
      if (!u || !tenant) throw notFound("user");
      return { userId: u.id, tenantId: tenant.id, tenantName: tenant.name, tenantSlug: tenant.slug };
    },

    getUser(req, ctx) {
      validate().id("user_id", req.userId).done();
      const u = store.getUser(tenantOf(ctx), req.userId);
      if (!u) throw notFound("user");
      return { user: user(u) };
    },

    getUserByEmail(req, ctx) {
      validate().email("email", req.email).done();
      const scope = contextTenant(ctx);
      if (scope !== undefined) {
        const u = store.getUserByEmail(scope, req.email);
        if (!u) throw notFound("user");
        return { user: user(u) };
      }
      const matches = store.findUsersByEmail(req.email);
      if (matches.length === 0) throw notFound("user");
      // One account per tenant: without a tenant to choose, an address in several is ambiguous.
      if (matches.length > 1) throw failedPrecondition("email is registered in several tenants: call with a context token");
      return { user: user(matches[0]!) };
    },

    listAdminUsers(_req, ctx) {
      return { users: store.listUsersWithRoles(tenantOf(ctx), ADMIN_ROLES).map(user) };
    },

    async validateToken(req, ctx) {
      validate().text("token", req.token, 8192).done();
      const check = await tokens.verify(req.token);
      const scope = contextTenant(ctx);
      if (!check.valid || (scope !== undefined && check.user.tenantId !== scope)) {
        const reason = check.valid ? "user not found" : check.reason;
        // The reason only: never the token.
        logger.info({ reason }, "user token rejected");
        return { valid: false, reason };
      }
      return { valid: true, user: user(check.user), expiresAt: timestampFromDate(check.expiresAt), reason: "" };
    },
  });
}
