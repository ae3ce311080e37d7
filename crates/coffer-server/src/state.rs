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
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
}
