-- Just-in-time administration, conditional access and access review (issue 3). PostgreSQL translation of
-- ../sqlite/0003_jit_conditional_access.sql (rules and SQLite-isms: 0001_initial.sql); nothing here beyond those.
ALTER TABLE role_assignments ADD COLUMN expires BIGINT;
ALTER TABLE role_assignments ADD COLUMN allowed_networks TEXT COLLATE "C" NOT NULL DEFAULT '[]';
ALTER TABLE role_assignments ADD COLUMN last_used BIGINT;
ALTER TABLE role_assignments ADD COLUMN justification TEXT COLLATE "C";
ALTER TABLE principals ADD COLUMN allowed_networks TEXT COLLATE "C" NOT NULL DEFAULT '[]';

CREATE TABLE eligible_assignments (
    name TEXT COLLATE "C" PRIMARY KEY,
    scope TEXT COLLATE "C" NOT NULL,
    role_definition_id TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    max_duration_secs BIGINT NOT NULL,
    created BIGINT NOT NULL
);

-- Every activation of an eligible assignment, kept for the audit log.
CREATE TABLE activations (
    id TEXT COLLATE "C" PRIMARY KEY,
    eligible_name TEXT COLLATE "C" NOT NULL,
    principal_id TEXT COLLATE "C" NOT NULL,
    assignment_name TEXT COLLATE "C" NOT NULL,
    justification TEXT COLLATE "C" NOT NULL,
    activated BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
