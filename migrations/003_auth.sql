-- ============================================================
-- Migration: 003_auth.sql
-- Purpose: Users, roles, permissions
-- ============================================================

-- Staff who sign in to a tenant. An e-mail address is unique per tenant, not
-- globally: one person may work for two tenants with two separate accounts.
CREATE TABLE IF NOT EXISTS users (
    id            UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id     UUID NOT NULL,
    email         CITEXT NOT NULL,
    display_name  TEXT NOT NULL,
    -- NULL for accounts that only sign in through SSO.
    password_hash TEXT,
    is_active     BOOLEAN NOT NULL DEFAULT true,
    last_login_at TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_users PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_users_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT uq_users_email UNIQUE (tenant_id, email),
    CONSTRAINT ck_users_email CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$'),
    CONSTRAINT ck_users_display_name CHECK (length(btrim(display_name)) > 0),
    CONSTRAINT ck_users_password_hash CHECK (password_hash <> '')
);

CREATE OR REPLACE TRIGGER trg_users_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Roles are defined per tenant (each tenant names and shapes its own).
CREATE TABLE IF NOT EXISTS roles (
    id          UUID NOT NULL DEFAULT gen_random_uuid(),
    tenant_id   UUID NOT NULL,
    name        TEXT NOT NULL,
    description TEXT,
    -- Roles the application creates for every tenant (e.g. "Owner"); the UI
    -- does not let a tenant delete them.
    is_system   BOOLEAN NOT NULL DEFAULT false,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_roles PRIMARY KEY (tenant_id, id),
    CONSTRAINT fk_roles_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT uq_roles_name UNIQUE (tenant_id, name),
    CONSTRAINT ck_roles_name CHECK (length(btrim(name)) > 0)
);

CREATE OR REPLACE TRIGGER trg_roles_updated_at
    BEFORE UPDATE ON roles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- The catalogue of permission keys the application checks ('contacts.read',
-- 'campaigns.send', ...). The keys are defined by the code, not by a tenant, so
-- the table is global; the application upserts its keys at start-up (migrations
-- carry no data).
-- alumdb: allow tenant-scoped because permission keys are a global catalogue defined by the application code
CREATE TABLE IF NOT EXISTS permissions (
    id          UUID NOT NULL DEFAULT gen_random_uuid(),
    key         TEXT NOT NULL,
    description TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_permissions PRIMARY KEY (id),
    CONSTRAINT uq_permissions_key UNIQUE (key),
    CONSTRAINT ck_permissions_key CHECK (key ~ '^[a-z][a-z0-9_]*([.][a-z][a-z0-9_]*)+$')
);

CREATE OR REPLACE TRIGGER trg_permissions_updated_at
    BEFORE UPDATE ON permissions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Link tables: their natural key, led by tenant_id, is the primary key (no
-- surrogate id: nothing references a single link row).

-- users <-> roles
CREATE TABLE IF NOT EXISTS user_roles (
    tenant_id  UUID NOT NULL,
    user_id    UUID NOT NULL,
    role_id    UUID NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_user_roles PRIMARY KEY (tenant_id, user_id, role_id),
    CONSTRAINT fk_user_roles_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_user_roles_user FOREIGN KEY (tenant_id, user_id)
        REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_user_roles_role FOREIGN KEY (tenant_id, role_id)
        REFERENCES roles (tenant_id, id) ON DELETE CASCADE
);

-- "Who has this role": the primary key serves the user side.
CREATE INDEX IF NOT EXISTS idx_user_roles_role ON user_roles (tenant_id, role_id);

CREATE OR REPLACE TRIGGER trg_user_roles_updated_at
    BEFORE UPDATE ON user_roles
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- roles <-> permissions. permission_id references the global catalogue, so it
-- is the one foreign key here without tenant_id.
CREATE TABLE IF NOT EXISTS role_permissions (
    tenant_id     UUID NOT NULL,
    role_id       UUID NOT NULL,
    permission_id UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT pk_role_permissions PRIMARY KEY (tenant_id, role_id, permission_id),
    CONSTRAINT fk_role_permissions_tenant FOREIGN KEY (tenant_id)
        REFERENCES tenants (id) ON DELETE CASCADE,
    CONSTRAINT fk_role_permissions_role FOREIGN KEY (tenant_id, role_id)
        REFERENCES roles (tenant_id, id) ON DELETE CASCADE,
    CONSTRAINT fk_role_permissions_permission FOREIGN KEY (permission_id)
        REFERENCES permissions (id) ON DELETE CASCADE
);

-- Deleting a permission key cascades here: this index keeps that a look-up.
CREATE INDEX IF NOT EXISTS idx_role_permissions_permission
    ON role_permissions (permission_id);

CREATE OR REPLACE TRIGGER trg_role_permissions_updated_at
    BEFORE UPDATE ON role_permissions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Record this migration
INSERT INTO schema_migrations (version, name)
VALUES ('003', 'auth')
ON CONFLICT (version) DO NOTHING;
