-- auth-service schema v1: tenants, users, roles and permissions per tenant, venue roles,
-- the per-tenant keys that sign end-user access tokens, and the sessions those tokens belong to.
CREATE TABLE tenants (
  tenant_id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  slug TEXT NOT NULL UNIQUE
);

CREATE TABLE roles (
  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
  name TEXT NOT NULL,
  PRIMARY KEY (tenant_id, name)
);

CREATE TABLE role_permissions (
  tenant_id TEXT NOT NULL,
  role TEXT NOT NULL,
  permission TEXT NOT NULL,
  PRIMARY KEY (tenant_id, role, permission),
  FOREIGN KEY (tenant_id, role) REFERENCES roles (tenant_id, name)
);

CREATE TABLE users (
  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
  id TEXT NOT NULL,
  email TEXT NOT NULL,
  -- lower-cased email: lookups are case-insensitive, one account per address per tenant
  email_lower TEXT NOT NULL,
  first_name TEXT NOT NULL DEFAULT '',
  last_name TEXT NOT NULL DEFAULT '',
  role TEXT NOT NULL,
  email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
  mfa_enabled INTEGER NOT NULL DEFAULT 0 CHECK (mfa_enabled IN (0, 1)),
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  deleted_at TEXT,
  PRIMARY KEY (tenant_id, id),
  -- user ids are global: GetUserTenant resolves a user without knowing its tenant
  UNIQUE (id),
  UNIQUE (tenant_id, email_lower),
  FOREIGN KEY (tenant_id, role) REFERENCES roles (tenant_id, name)
);
CREATE INDEX users_email ON users (email_lower);

-- Permissions granted to one user on top of their role's.
CREATE TABLE user_permissions (
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  permission TEXT NOT NULL,
  PRIMARY KEY (tenant_id, user_id, permission),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

CREATE TABLE user_venue_roles (
  tenant_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  venue_id TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('owner', 'manager', 'staff')),
  is_active INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
  PRIMARY KEY (tenant_id, user_id, venue_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id)
);

-- ES256 keys that sign end-user access tokens, one or more per tenant (generated at run time,
-- never shipped in code). A retired key still verifies tokens it signed until they expire.
CREATE TABLE signing_keys (
  tenant_id TEXT NOT NULL REFERENCES tenants (tenant_id),
  kid TEXT NOT NULL,
  private_jwk TEXT NOT NULL,
  created_at TEXT NOT NULL,
  retired_at TEXT,
  PRIMARY KEY (tenant_id, kid),
  UNIQUE (kid)
);

-- One row per issued access token: revoking the session invalidates the token.
CREATE TABLE sessions (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  kid TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  revoked_at TEXT,
  PRIMARY KEY (tenant_id, id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id),
  FOREIGN KEY (tenant_id, kid) REFERENCES signing_keys (tenant_id, kid)
);
