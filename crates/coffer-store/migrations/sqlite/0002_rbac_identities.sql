-- Local RBAC and identities (issue 3).
ALTER TABLE principal_secrets ADD COLUMN secret_id TEXT;
ALTER TABLE principal_secrets ADD COLUMN created BIGINT;

-- Custom role definitions (built-in roles live in code).
CREATE TABLE role_definitions (
    id TEXT PRIMARY KEY,
    role_name TEXT NOT NULL,
    description TEXT NOT NULL,
    permissions TEXT NOT NULL,
    assignable_scopes TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE role_assignments (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    created BIGINT NOT NULL
);
CREATE INDEX role_assignments_by_principal ON role_assignments (principal_id);

CREATE TABLE groups (
    object_id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id TEXT NOT NULL REFERENCES groups(object_id) ON DELETE CASCADE,
    member_id TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_by_member ON group_members (member_id);
