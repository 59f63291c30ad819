-- Foundation: roles, helper functions, identity and organisation tables.
-- Conventions (docs/schema.md): every tenant-owned table has id uuid, tenant_id,
-- created_at, updated_at; mutable ones pg_version, bumped only by a trigger.

DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'cnx_app') THEN
    CREATE ROLE cnx_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
  END IF;
END
$$;

-- The tenant of the current transaction, set by the server with
-- set_config('cnx.tenant_id', ..., true). NULL (no rows visible) when unset.
CREATE FUNCTION cnx_current_tenant() RETURNS uuid
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT nullif(current_setting('cnx.tenant_id', true), '')::uuid
$$;

-- BEFORE UPDATE: the version moves by exactly one per update, whatever the
-- statement tried to write into pg_version; updated_at follows the clock.
CREATE FUNCTION cnx_bump_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.pg_version := OLD.pg_version + 1;
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

CREATE TABLE tenants (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  slug        text NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  settings    jsonb NOT NULL DEFAULT '{}',
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  pg_version  bigint NOT NULL DEFAULT 1
);

CREATE TABLE users (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id      uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  email          text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
  display_name   text NOT NULL DEFAULT '',
  password_hash  text,                       -- argon2id (libsodium crypto_pwhash_str)
  role           text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
  is_active      boolean NOT NULL DEFAULT true,
  last_login_at  timestamptz,
  created_at     timestamptz NOT NULL DEFAULT now(),
  updated_at     timestamptz NOT NULL DEFAULT now(),
  pg_version     bigint NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_tenant_email ON users (tenant_id, lower(email));
CREATE INDEX users_email ON users (lower(email));

CREATE TABLE user_sessions (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  token_hash    bytea NOT NULL UNIQUE,       -- SHA-256 of the bearer token; the token itself is never stored
  user_agent    text,
  ip_address    inet,
  expires_at    timestamptz NOT NULL,
  last_seen_at  timestamptz,
  revoked_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  pg_version    bigint NOT NULL DEFAULT 1
);
CREATE INDEX user_sessions_user ON user_sessions (tenant_id, user_id);

CREATE TABLE api_keys (
  id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id     uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  user_id       uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  prefix        text NOT NULL,               -- first characters of the key, shown in listings
  key_hash      bytea NOT NULL UNIQUE,
  scopes        text[] NOT NULL DEFAULT '{}',
  expires_at    timestamptz,
  last_used_at  timestamptz,
  revoked_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now(),
  pg_version    bigint NOT NULL DEFAULT 1
);
CREATE INDEX api_keys_user ON api_keys (tenant_id, user_id);

CREATE TABLE programs (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description  text NOT NULL DEFAULT '',
  metadata     jsonb NOT NULL DEFAULT '{}',
  created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  pg_version   bigint NOT NULL DEFAULT 1
);
CREATE INDEX programs_tenant ON programs (tenant_id, created_at);

CREATE TABLE projects (
  id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id    uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  program_id   uuid NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description  text NOT NULL DEFAULT '',
  metadata     jsonb NOT NULL DEFAULT '{}',
  created_by   uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  pg_version   bigint NOT NULL DEFAULT 1
);
CREATE INDEX projects_program ON projects (tenant_id, program_id);

CREATE TABLE project_members (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  project_id  uuid NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('viewer', 'editor', 'admin')),
  added_at    timestamptz NOT NULL DEFAULT now(),
  added_by    uuid REFERENCES users(id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  pg_version  bigint NOT NULL DEFAULT 1,
  UNIQUE (project_id, user_id)
);
CREATE INDEX project_members_user ON project_members (tenant_id, user_id);
