//! Who is calling: an authenticated identity, built only by the identity module from a validated token.

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token issuer (our own token service, or later an external OIDC issuer).
    pub issuer: String,
    /// Tenant id (`tid`).
    pub tenant_id: String,
    /// Object id (`oid`): the identity that role assignments name.
    pub object_id: String,
    /// Application (client) id (`appid`/`azp`).
    pub client_id: String,
}
