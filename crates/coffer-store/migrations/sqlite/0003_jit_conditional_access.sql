-- Just-in-time administration, conditional access and access review (issue 3).
ALTER TABLE role_assignments ADD COLUMN expires BIGINT;
ALTER TABLE role_assignments ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '[]';
ALTER TABLE role_assignments ADD COLUMN last_used BIGINT;
ALTER TABLE role_assignments ADD COLUMN justification TEXT;
ALTER TABLE principals ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '[]';

CREATE TABLE eligible_assignments (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    role_definition_id TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    max_duration_secs BIGINT NOT NULL,
    created BIGINT NOT NULL
);

-- Every activation of an eligible assignment, kept for the audit log.
CREATE TABLE activations (
    id TEXT PRIMARY KEY,
    eligible_name TEXT NOT NULL,
    principal_id TEXT NOT NULL,
    assignment_name TEXT NOT NULL,
    justification TEXT NOT NULL,
    activated BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
