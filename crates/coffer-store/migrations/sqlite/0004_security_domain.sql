-- Security-domain lifecycle (issue 4).
ALTER TABLE instance ADD COLUMN state TEXT NOT NULL DEFAULT 'active';
ALTER TABLE instance ADD COLUMN sealed_exchange_key BLOB;
ALTER TABLE instance ADD COLUMN exchange_cert BLOB;
ALTER TABLE instance ADD COLUMN activated BIGINT;
ALTER TABLE instance ADD COLUMN sd_downloads BIGINT NOT NULL DEFAULT 0;
