-- Key policy assignments (issue 7): a built-in definition with an effect and its parameters (JSON object).
-- name_key is the lowercase name (names are case-insensitive); name keeps the first spelling.
CREATE TABLE policy_assignments (
    name_key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    definition_id TEXT NOT NULL,
    effect TEXT NOT NULL,
    parameters TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
