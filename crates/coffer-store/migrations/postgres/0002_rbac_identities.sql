-- Local RBAC and identities (issue 3). PostgreSQL translation of ../sqlite/0002_rbac_identities.sql (rules and
-- SQLite-isms: 0001_initial.sql); nothing here beyond those.
ALTER TABLE principal_secrets ADD COLUMN secret_id TEXT COLLATE "C";
ALTER TABLE principal_secrets ADD COLUMN created BIGINT;

-- Custom role definitions (built-in roles live in code).
CREATE TABLE role_definitions (
    id TEXT COLLATE "C" PRIMARY KEY,
    role_name TEXT COLLATE "C" NOT NULL,
    description TEXT COLLATE "C" NOT NULL,
    permissions TEXT COLLATE "C" NOT NULL,
    assignable_scopes TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    name TEXT COLLATE "C" PRIMARY KEY,
    scope TEXT COLLATE "C" NOT NULL,
    role_definition_id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX role_assignments_by_principal ON role_assignments (principal_id);

CREATE TABLE groups (
    object_id TEXT COLLATE "C" PRIMARY KEY,
    display_name TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT COLLATE "C" NOT NULL REFERENCES groups(object_id) ON DELETE CASCADE,
    member_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_by_member ON group_members (member_id);
