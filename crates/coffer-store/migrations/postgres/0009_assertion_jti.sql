-- Client-assertion ids already accepted (issue 12): each jti is accepted once per client, remembered until the
-- assertion can no longer be accepted (`expires`, Unix seconds), then pruned.
-- PostgreSQL translation of ../sqlite/0009_assertion_jti.sql (rules and SQLite-isms: 0001_initial.sql); nothing
-- here beyond those.
CREATE TABLE assertion_jti (
    client_id TEXT COLLATE "C" NOT NULL,
    jti TEXT COLLATE "C" NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX assertion_jti_expires ON assertion_jti (expires);
