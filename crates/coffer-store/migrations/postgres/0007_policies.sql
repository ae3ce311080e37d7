-- Key policy assignments (issue 7): a built-in definition with an effect and its parameters (JSON object).
-- name_key is the lowercase name (names are case-insensitive); name keeps the first spelling.
-- PostgreSQL translation of ../sqlite/0007_policies.sql (rules and SQLite-isms: 0001_initial.sql); nothing here
-- beyond those (parameters stays TEXT, not jsonb: the same bytes come back).
CREATE TABLE policy_assignments (
    name_key TEXT COLLATE "C" PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL,
    definition_id TEXT COLLATE "C" NOT NULL,
    effect TEXT COLLATE "C" NOT NULL,
    parameters TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
