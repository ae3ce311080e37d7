-- Small instance facts that are not settings (issue 6): e.g. the time of the last successful full backup.
-- PostgreSQL translation of ../sqlite/0006_meta.sql (rules and SQLite-isms: 0001_initial.sql); nothing here beyond
-- those.
CREATE TABLE meta (
    name TEXT COLLATE "C" PRIMARY KEY,
    value TEXT COLLATE "C" NOT NULL,
    updated BIGINT NOT NULL
);
