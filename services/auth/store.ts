/**
 * auth-service's storage port and its SQLite implementation. Every user query
 * is keyed by tenant, except the two identity-discovery lookups (by user id and
 * by email) that exist to find the tenant; deleted users are never returned.
 */
import type { Database } from "../shared/database.ts";

export interface TenantRow {
  readonly id: string;
  readonly name: string;
  readonly slug: string;
}

export interface UserRow {
  readonly tenantId: string;
  readonly id: string;
  readonly email: string;
  readonly firstName: string;
  readonly lastName: string;
  readonly role: string;
  readonly emailVerified: boolean;
  readonly mfaEnabled: boolean;
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface NewUser extends UserRow {
  readonly deletedAt?: string;
}

export type VenueRole = "owner" | "manager" | "staff";

export interface SigningKeyRow {
  readonly tenantId: string;
  readonly kid: string;
  /** Private ES256 JWK, JSON. */
  readonly privateJwk: string;
  readonly createdAt: string;
  readonly retiredAt: string | undefined;
}

export interface SessionRow {
  readonly tenantId: string;
  readonly id: string;
  readonly userId: string;
  readonly kid: string;
  readonly issuedAt: string;
  readonly expiresAt: string;
  readonly revokedAt: string | undefined;
}

export interface AuthStore {
  getTenant(tenantId: string): TenantRow | undefined;
  getUser(tenantId: string, userId: string): UserRow | undefined;
  /** By id across tenants (ids are globally unique). */
  findUserById(userId: string): UserRow | undefined;
  /** By email (case-insensitive) across tenants: one account per tenant, so possibly several. */
  findUsersByEmail(email: string): UserRow[];
  getUserByEmail(tenantId: string, email: string): UserRow | undefined;
  listUsersWithRoles(tenantId: string, roles: readonly string[]): UserRow[];
  /** The user's role permissions and explicit grants, sorted, without duplicates. */
  permissionsOf(tenantId: string, userId: string): string[];
  activeVenueRole(tenantId: string, userId: string, venueId: string): VenueRole | undefined;

  /** The newest unretired key of the tenant. */
  currentSigningKey(tenantId: string): SigningKeyRow | undefined;
  signingKey(kid: string): SigningKeyRow | undefined;
  insertSigningKey(key: SigningKeyRow): void;
  insertSession(session: SessionRow): void;
  getSession(tenantId: string, sessionId: string): SessionRow | undefined;
  /** Marks the session revoked; false when it does not exist in the tenant. */
  revokeSession(tenantId: string, sessionId: string, at: string): boolean;

  insertTenant(tenant: TenantRow): void;
  insertRole(tenantId: string, name: string, permissions: readonly string[]): void;
  insertUser(user: NewUser): void;
  grantPermission(tenantId: string, userId: string, permission: string): void;
  setVenueRole(tenantId: string, userId: string, venueId: string, role: VenueRole): void;
}

interface UserRecord {
  tenant_id: string;
  id: string;
  email: string;
  first_name: string;
  last_name: string;
  role: string;
  email_verified: number;
  mfa_enabled: number;
  created_at: string;
  updated_at: string;
}

interface KeyRecord {
  tenant_id: string;
  kid: string;
  private_jwk: string;
  created_at: string;
  retired_at: string | null;
}

interface SessionRecord {
  tenant_id: string;
  id: string;
  user_id: string;
  kid: string;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
}

const USER_COLUMNS = "tenant_id, id, email, first_name, last_name, role, email_verified, mfa_enabled, created_at, updated_at";

function toUser(r: UserRecord): UserRow {
  return {
    tenantId: r.tenant_id,
    id: r.id,
    email: r.email,
    firstName: r.first_name,
    lastName: r.last_name,
    role: r.role,
    emailVerified: r.email_verified === 1,
    mfaEnabled: r.mfa_enabled === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toKey(r: KeyRecord): SigningKeyRow {
  return { tenantId: r.tenant_id, kid: r.kid, privateJwk: r.private_jwk, createdAt: r.created_at, retiredAt: r.retired_at ?? undefined };
}

export function createSqliteAuthStore(db: Database): AuthStore {
  const getTenant = db.prepare("SELECT tenant_id, name, slug FROM tenants WHERE tenant_id = ?");
  const getUser = db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE tenant_id = ? AND id = ? AND deleted_at IS NULL`);
  const findUserById = db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE id = ? AND deleted_at IS NULL`);
  const findUsersByEmail = db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE email_lower = ? AND deleted_at IS NULL ORDER BY tenant_id`);
  const getUserByEmail = db.prepare(`SELECT ${USER_COLUMNS} FROM users WHERE tenant_id = ? AND email_lower = ? AND deleted_at IS NULL`);
  const listByRoles = db.prepare(
    `SELECT ${USER_COLUMNS} FROM users WHERE tenant_id = ? AND deleted_at IS NULL AND role IN (SELECT value FROM json_each(?)) ORDER BY id`,
  );
  const permissionsOf = db.prepare(`
    SELECT rp.permission AS permission FROM users u JOIN role_permissions rp ON rp.tenant_id = u.tenant_id AND rp.role = u.role
      WHERE u.tenant_id = ? AND u.id = ?
    UNION
    SELECT permission FROM user_permissions WHERE tenant_id = ? AND user_id = ?
    ORDER BY permission`);
  const venueRole = db.prepare("SELECT role FROM user_venue_roles WHERE tenant_id = ? AND user_id = ? AND venue_id = ? AND is_active = 1");
  const currentKey = db.prepare("SELECT * FROM signing_keys WHERE tenant_id = ? AND retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1");
  const keyByKid = db.prepare("SELECT * FROM signing_keys WHERE kid = ?");
  const insertKey = db.prepare("INSERT INTO signing_keys (tenant_id, kid, private_jwk, created_at, retired_at) VALUES (?, ?, ?, ?, ?)");
  const insertSession = db.prepare("INSERT INTO sessions (tenant_id, id, user_id, kid, issued_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const getSession = db.prepare("SELECT * FROM sessions WHERE tenant_id = ? AND id = ?");
  const revokeSession = db.prepare("UPDATE sessions SET revoked_at = COALESCE(revoked_at, ?) WHERE tenant_id = ? AND id = ?");
  const insertTenant = db.prepare("INSERT INTO tenants (tenant_id, name, slug) VALUES (?, ?, ?)");
  const insertRole = db.prepare("INSERT INTO roles (tenant_id, name) VALUES (?, ?)");
  const insertRolePermission = db.prepare("INSERT INTO role_permissions (tenant_id, role, permission) VALUES (?, ?, ?)");
  const insertUser = db.prepare(`INSERT INTO users (${USER_COLUMNS}, email_lower, deleted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const grant = db.prepare("INSERT INTO user_permissions (tenant_id, user_id, permission) VALUES (?, ?, ?)");
  const setVenueRole = db.prepare(`INSERT INTO user_venue_roles (tenant_id, user_id, venue_id, role, is_active) VALUES (?, ?, ?, ?, 1)
    ON CONFLICT (tenant_id, user_id, venue_id) DO UPDATE SET role = excluded.role, is_active = 1`);

  return {
    getTenant(tenantId) {
      const r = getTenant.get(tenantId) as { tenant_id: string; name: string; slug: string } | undefined;
      return r && { id: r.tenant_id, name: r.name, slug: r.slug };
    },
    getUser(tenantId, userId) {
      const r = getUser.get(tenantId, userId) as UserRecord | undefined;
      return r && toUser(r);
    },
    findUserById(userId) {
      const r = findUserById.get(userId) as UserRecord | undefined;
      return r && toUser(r);
    },
    findUsersByEmail(email) {
      return (findUsersByEmail.all(email.toLowerCase()) as unknown as UserRecord[]).map(toUser);
    },
    getUserByEmail(tenantId, email) {
      const r = getUserByEmail.get(tenantId, email.toLowerCase()) as UserRecord | undefined;
      return r && toUser(r);
    },
    listUsersWithRoles(tenantId, roles) {
      return (listByRoles.all(tenantId, JSON.stringify(roles)) as unknown as UserRecord[]).map(toUser);
    },
    permissionsOf(tenantId, userId) {
      return (permissionsOf.all(tenantId, userId, tenantId, userId) as { permission: string }[]).map((r) => r.permission);
    },
    activeVenueRole(tenantId, userId, venueId) {
      return (venueRole.get(tenantId, userId, venueId) as { role: VenueRole } | undefined)?.role;
    },
    currentSigningKey(tenantId) {
      const r = currentKey.get(tenantId) as KeyRecord | undefined;
      return r && toKey(r);
    },
    signingKey(kid) {
      const r = keyByKid.get(kid) as KeyRecord | undefined;
      return r && toKey(r);
    },
    insertSigningKey(k) {
      insertKey.run(k.tenantId, k.kid, k.privateJwk, k.createdAt, k.retiredAt ?? null);
    },
    insertSession(s) {
      insertSession.run(s.tenantId, s.id, s.userId, s.kid, s.issuedAt, s.expiresAt, s.revokedAt ?? null);
    },
    getSession(tenantId, sessionId) {
      const r = getSession.get(tenantId, sessionId) as SessionRecord | undefined;
      return r && {
        tenantId: r.tenant_id, id: r.id, userId: r.user_id, kid: r.kid, issuedAt: r.issued_at, expiresAt: r.expires_at,
        revokedAt: r.revoked_at ?? undefined,
      };
    },
    revokeSession(tenantId, sessionId, at) {
      return revokeSession.run(at, tenantId, sessionId).changes > 0;
    },
    insertTenant(t) {
      insertTenant.run(t.id, t.name, t.slug);
    },
    insertRole(tenantId, name, permissions) {
      insertRole.run(tenantId, name);
      for (const p of permissions) insertRolePermission.run(tenantId, name, p);
    },
    insertUser(u) {
      insertUser.run(u.tenantId, u.id, u.email, u.firstName, u.lastName, u.role, u.emailVerified ? 1 : 0, u.mfaEnabled ? 1 : 0,
        u.createdAt, u.updatedAt, u.email.toLowerCase(), u.deletedAt ?? null);
    },
    grantPermission(tenantId, userId, permission) {
      grant.run(tenantId, userId, permission);
    },
    setVenueRole(tenantId, userId, venueId, role) {
      setVenueRole.run(tenantId, userId, venueId, role);
    },
  };
}
