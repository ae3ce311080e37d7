//! Shared request state.
use std::sync::Arc;

use coffer_core::Hsm;

/// What every request handler can see.
#[derive(Debug)]
pub struct AppState {
    pub hsm: Arc<Hsm>,
    /// `https://host:port`, no trailing slash.
    pub public_url: String,
    /// The challenge resource.
    pub resource: String,
    pub max_body_bytes: usize,
    /// How long a request body may take to arrive (`[connections] body_read_timeout_secs`).
    pub body_read_timeout: std::time::Duration,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Calls of each store method (`coffer_store_queries_total`).
    pub store_queries: Arc<coffer_core::store_metrics::StoreCounters>,
    /// Request throttling (`None` when disabled).
    pub throttle: Option<Arc<coffer_core::throttle::Throttle>>,
    /// Concurrent request slots per principal (`None`: no limit).
    pub principal_slots: Option<Arc<crate::principal_slots::PrincipalSlots>>,
    /// Deployment facts for the posture report.
    pub facts: ServerFacts,
    /// The TLS side: among others the signer of Secure Key Release responses
    /// ([`crate::tls::TlsManager::release_signer`]), which follows certificate reloads.
    pub tls: Arc<crate::tls::TlsManager>,
}

/// Deployment facts core cannot see.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    pub data_dir: std::path::PathBuf,
    pub seal_provider: String,
    pub tls_min_version: String,
    pub client_auth: String,
}

impl AppState {
    /// The facts the posture report needs from the server.
    pub fn posture_facts(&self) -> coffer_core::ops::posture::PostureFacts {
        let dev_dir = self.facts.data_dir.join("dev-security-domain");
        let dev_keys_on_disk = std::fs::read_dir(&dev_dir).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .any(|e| e.file_name().to_string_lossy().ends_with(".pem"))
        });
        coffer_core::ops::posture::PostureFacts {
            seal_provider: self.facts.seal_provider.clone(),
            tls_not_after: self.metrics.tls_not_after(),
            tls_min_version: self.facts.tls_min_version.clone(),
            client_auth: self.facts.client_auth.clone(),
            dev_keys_on_disk,
            throttling: self.throttle.is_some(),
        }
    }
}
