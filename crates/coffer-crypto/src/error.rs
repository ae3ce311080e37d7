//! The crypto crate's one error type. Messages never contain key material.

/// A failed cryptographic operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The algorithm cannot be used with this key type or size (e.g. RS256 on an EC key).
    #[error("algorithm {alg} is not valid for this key: {reason}")]
    AlgorithmMismatch { alg: &'static str, reason: &'static str },
    /// Authentication failed while opening sealed data, decrypting (GCM tag, padding, RSA) or unwrapping.
    /// One variant for all of these so that callers cannot leak a padding oracle.
    #[error("decryption failed")]
    DecryptFailed,
    /// A parameter has the wrong length or form (IV, tag, digest length, plaintext size, key size).
    #[error("invalid parameter: {0}")]
    InvalidParameter(&'static str),
    /// Key material given for import or loaded from storage is malformed or inconsistent.
    #[error("invalid key material: {0}")]
    InvalidKey(&'static str),
    /// A JWT failed validation (signature, issuer, audience, time, algorithm).
    #[error("token rejected: {0}")]
    TokenRejected(String),
    /// A PKCS#11 module, token, login or key problem (the message says which; it never contains the PIN).
    #[error("PKCS#11: {0}")]
    Pkcs11(String),
    /// A security-domain file or restore blob is malformed, does not fit the keys given, or failed authentication
    /// (the message says which, in words an administrator can act on; it never contains key material).
    #[error("security domain: {0}")]
    SecurityDomain(String),
    /// The underlying library reported an unexpected failure (RNG, key generation).
    #[error("cryptographic library failure")]
    Unspecified,
}
