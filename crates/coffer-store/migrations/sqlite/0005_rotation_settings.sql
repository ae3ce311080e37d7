-- Rotation policies and settings (issue 5).
CREATE TABLE rotation_policies (
    name_key TEXT PRIMARY KEY,
    policy TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated BIGINT NOT NULL
);
