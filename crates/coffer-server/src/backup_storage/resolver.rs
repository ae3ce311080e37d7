//! Name resolution for backup storage requests: every address a name resolves to must be allowed by the outbound
//! policy (no private, loopback or link-local address unless configured), and the connection goes to exactly the
//! addresses checked here (reqwest connects to what its resolver returns and looks nothing up again), so a name
//! cannot be re-pointed between the check and the connection (DNS rebinding). Literal addresses in URLs never
//! reach a resolver: the policy checks them with the URL.
use std::net::SocketAddr;
use std::sync::Arc;

use coffer_core::outbound::OutboundPolicy;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The system resolver, filtered by the policy.
pub(super) struct CheckedResolver {
    pub(super) policy: Arc<OutboundPolicy>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addrs.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            // One address that is not allowed refuses the name: no falling back to the others.
            if let Some(refused) = addrs.iter().find(|a| !policy.address_allowed(a.ip())) {
                return Err(format!(
                    "{host} resolves to {}, which is not an allowed backup destination ([backup] private_networks)",
                    refused.ip()
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}
