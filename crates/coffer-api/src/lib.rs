//! Azure Key Vault Managed HSM wire types: the JSON shapes of requests and responses, exactly as the official
//! clients send and read them (mixed casing such as `key_ops`, `Hsm`, `recoveryId`). No logic lives here;
//! binary fields are base64url strings, decoded by the server's conversion layer.

pub mod error;
pub mod keys;
pub mod rbac;
pub mod token;

pub use error::{ErrorBody, ErrorDetail};
