-- Client-assertion ids already accepted (issue 12): each jti is accepted once per client, remembered until the
-- assertion can no longer be accepted (`expires`, Unix seconds), then pruned.
CREATE TABLE assertion_jti (
    client_id TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires BIGINT NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX assertion_jti_expires ON assertion_jti (expires);
