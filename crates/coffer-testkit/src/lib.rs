//! Test support. Dev-only: never a normal dependency.
//!
//! - [`TestServer`] (feature `server`, on by default) boots the real server over TLS in a temporary data directory.
//! - [`store_conformance`]: the one suite every adapter of coffer-core's `Store` port passes
//!   ([`store_conformance_tests!`] expands it into tests), and [`store_conformance::fresh_postgres_url`] for the
//!   PostgreSQL adapter's run. It needs only coffer-core: an adapter's tests take this crate with
//!   `default-features = false`, so a change to the adapter rebuilds no server.

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::*;

pub mod store_conformance;
