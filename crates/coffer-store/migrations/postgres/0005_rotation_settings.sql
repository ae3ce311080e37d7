-- Rotation policies and settings (issue 5). PostgreSQL translation of ../sqlite/0005_rotation_settings.sql (rules
-- and SQLite-isms: 0001_initial.sql); nothing here beyond those.
CREATE TABLE rotation_policies (
    name_key TEXT COLLATE "C" PRIMARY KEY,
    policy TEXT COLLATE "C" NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);

CREATE TABLE settings (
    name TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL,
    updated BIGINT NOT NULL
);
