-- Small instance facts that are not settings (issue 6): e.g. the time of the last successful full backup.
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated BIGINT NOT NULL
);
