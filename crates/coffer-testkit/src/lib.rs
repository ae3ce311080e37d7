//! Test support. Dev-only: never a normal dependency.
//!
//! [`TestServer`] (feature `server`, on by default) boots the real server over TLS in a temporary data directory.

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::*;
