//! HTTP API tests: the real server over real TLS on a loopback port, real SQLite in a temporary directory.
mod auth;
mod errors;
mod keys;
mod restart;
