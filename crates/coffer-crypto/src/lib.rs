//! Coffer's cryptography: the only crate that touches aws-lc-rs (and the crates that wrap it:
//! jsonwebtoken, rcgen). Everything here is pure computation: no I/O, no clock, no storage. (The one exception:
//! `x509::generate_ca` and `x509::issue_server_certificate` read the system clock for the validity period; their
//! `_at` variants take the time as a parameter.)
//!
//! Secrets are [`SecretBytes`]: zeroized on drop, no `Debug` output, constant-time comparison.

pub mod attestation;
pub mod byok;
pub mod error;
pub mod hash;
pub mod jwt;
pub mod kdf;
pub mod keys;
pub mod pkcs11;
pub mod random;
pub mod release;
pub mod seal;
pub mod secret;
pub mod security_domain;
pub mod x509;

mod aes;
mod ec;
mod kw192;
mod pkcs8;
mod rsa;
mod rsa_pkcs1;

pub use error::Error;
pub use secret::SecretBytes;
