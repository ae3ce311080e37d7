-- Coffer schema v1 (SQLite). Key material is stored only sealed (AES-256-GCM, see coffer-core::instance).
CREATE TABLE instance (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    instance_id TEXT NOT NULL,
    instance_name TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    created BIGINT NOT NULL,
    dev INTEGER NOT NULL,
    sealed_domain_secret BLOB NOT NULL,
    sealed_token_key BLOB NOT NULL,
    soft_delete_retention_days BIGINT NOT NULL,
    purge_protection INTEGER NOT NULL,
    bootstrap_object_id TEXT NOT NULL
);

CREATE TABLE principals (
    object_id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE principal_secrets (
    object_id TEXT NOT NULL REFERENCES principals(object_id) ON DELETE CASCADE,
    secret_hash BLOB NOT NULL
);

CREATE TABLE principal_certificates (
    object_id TEXT NOT NULL REFERENCES principals(object_id) ON DELETE CASCADE,
    der BLOB NOT NULL
);

-- One row per key name (case-insensitive: name_key is the lower-cased name).
CREATE TABLE keys (
    name_key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    latest_seq BIGINT NOT NULL,
    deleted_date BIGINT,
    scheduled_purge_date BIGINT
);

CREATE TABLE key_versions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name_key TEXT NOT NULL REFERENCES keys(name_key) ON DELETE CASCADE,
    version TEXT NOT NULL,
    kty TEXT NOT NULL,
    size_bits BIGINT NOT NULL,
    crv TEXT,
    pub_a BLOB,
    pub_b BLOB,
    key_ops TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    nbf BIGINT,
    exp BIGINT,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    exportable INTEGER NOT NULL,
    tags TEXT NOT NULL,
    release_policy TEXT,
    sealed_material BLOB NOT NULL,
    UNIQUE (name_key, version)
);
CREATE INDEX key_versions_by_name ON key_versions (name_key, version);
