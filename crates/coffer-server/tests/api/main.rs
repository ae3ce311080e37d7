//! HTTP API tests: the real server over real TLS on a loopback port, real SQLite in a temporary directory.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions may panic"
)]
mod access;
mod assertions;
mod audit;
mod auth;
mod byok;
mod errors;
mod escalation;
mod fast_path;
mod forwarded;
mod full_backup;
mod graph;
mod http_hardening;
mod issuers;
mod keys;
mod network;
mod outbound;
mod padding_oracle;
mod policy;
mod rbac_matrix;
mod release;
mod restart;
mod restore_custody;
mod rotation;
mod security_domain;
mod slow_clients;
mod store_metrics;
