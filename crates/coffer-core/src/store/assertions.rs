//! Client-assertion ids (`jti`) seen, for replay protection.
use async_trait::async_trait;

use crate::Error;

/// Client-assertion ids (`jti`) seen, for replay protection.
#[async_trait]
pub trait AssertionStore: Send + Sync + 'static {
    /// Remembers that client `client_id` used the client-assertion id `jti`, until `expires` (Unix seconds), and
    /// prunes the ids that expired before `now`, in one transaction. Returns false (and changes nothing else) when
    /// the id is already remembered: a replay.
    async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires: i64, now: i64) -> Result<bool, Error>;
}
