-- The change feed other nodes follow (high availability): one row per changed entity. A single SQLite process has no
-- other node, so nothing writes here on SQLite; the table exists so both dialects have the same schema.
CREATE TABLE changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    at BIGINT NOT NULL,
    node TEXT
);
