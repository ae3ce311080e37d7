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
    /// Object ids of the groups the token names (`groups` claim).
    pub groups: Vec<String>,
    /// The client's address, when the transport knows it (for conditional access).
    pub client_ip: Option<std::net::IpAddr>,
}

impl Principal {
    /// The object ids role assignments may name for this caller: its own and its groups'.
    pub fn assignee_ids(&self) -> Vec<String> {
        let mut ids = vec![self.object_id.clone()];
        ids.extend(self.groups.iter().cloned());
        ids
    }
}
