//! `core::Error`: every failure an operation can report. The server maps it to HTTP in one exhaustive match.
//! Storage and crypto failures keep their source for the log; their text never reaches a client.

/// A failed core operation.
/// Not `#[non_exhaustive]`: the server maps it with an exhaustive match, so a new variant forces a mapping.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or names something invalid (Azure `BadParameter`).
    #[error("{0}")]
    BadParameter(String),
    /// The name is taken, or is held by a soft-deleted key (Azure `Conflict`).
    #[error("{0}")]
    Conflict(String),
    /// Decryption or unwrapping failed (one message for every cause, so there is no padding oracle).
    #[error("the ciphertext could not be decrypted with this key and algorithm")]
    DecryptFailed,
    /// The caller may not do this, or the key does not allow it (disabled, expired, not in `key_ops`).
    #[error("{0}")]
    Forbidden(String),
    /// Internal: the storage backend failed.
    #[error("storage failure")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Internal: a cryptographic primitive failed unexpectedly, or sealed data did not open.
    #[error("cryptographic failure")]
    Crypto(#[source] coffer_crypto::Error),
    /// Internal: an invariant of stored data does not hold (e.g. a row that does not parse).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The key (or deleted key) does not exist.
    #[error("{0}")]
    KeyNotFound(String),
    /// Authentication failed (no token, bad token): the server answers with the challenge.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Token endpoint: the client could not be authenticated (OAuth2 `invalid_client`).
    #[error("{0}")]
    InvalidClient(String),
    /// Token endpoint: the request is malformed (OAuth2 `invalid_request` / `unsupported_grant_type` / `invalid_scope`).
    #[error("{description}")]
    InvalidTokenRequest { code: &'static str, description: String },
    /// A full restore is running; other calls wait for it.
    #[error("{0}")]
    RestoreInProgress(String),
    /// The HSM's lifecycle state does not allow the operation (not activated, or in recovery mode).
    #[error("{0}")]
    NotActivated(String),
    /// A non-key resource does not exist; `code` is the Azure error code (e.g. `RoleAssignmentNotFound`).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A key policy assignment with the `Deny` effect refuses the operation (HTTP 403 `ForbiddenByPolicy`).
    #[error("{0}")]
    PolicyDenied(String),
}

impl Error {
    /// Maps a crypto error met while serving a request: parameter problems are the caller's, the rest is ours.
    pub fn from_request_crypto(e: coffer_crypto::Error) -> Self {
        match e {
            coffer_crypto::Error::AlgorithmMismatch { alg, reason } => {
                Self::BadParameter(format!("Algorithm {alg} is not valid for this key: {reason}"))
            }
            coffer_crypto::Error::DecryptFailed => Self::DecryptFailed,
            coffer_crypto::Error::InvalidParameter(m) => Self::BadParameter(m.to_string()),
            coffer_crypto::Error::InvalidKey(m) => Self::BadParameter(format!("Invalid key material: {m}")),
            other => Self::Crypto(other),
        }
    }
}

impl From<coffer_crypto::Error> for Error {
    fn from(e: coffer_crypto::Error) -> Self {
        Self::Crypto(e)
    }
}
