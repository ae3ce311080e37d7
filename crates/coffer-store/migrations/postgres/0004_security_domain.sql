-- Security-domain lifecycle (issue 4). PostgreSQL translation of ../sqlite/0004_security_domain.sql (rules and
-- SQLite-isms: 0001_initial.sql); nothing here beyond those.
ALTER TABLE instance ADD COLUMN state TEXT COLLATE "C" NOT NULL DEFAULT 'active';
ALTER TABLE instance ADD COLUMN sealed_exchange_key BYTEA;
ALTER TABLE instance ADD COLUMN exchange_cert BYTEA;
ALTER TABLE instance ADD COLUMN activated BIGINT;
ALTER TABLE instance ADD COLUMN sd_downloads BIGINT NOT NULL DEFAULT 0;
