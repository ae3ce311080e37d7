//! The change feed: which entities of the in-memory state other nodes changed (PostgreSQL records it with triggers in
//! the writing transaction; a single SQLite process has no other node and an empty feed).
use async_trait::async_trait;

use crate::Error;

/// One recorded change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the feed (assigned when the writing transaction recorded it, so not in commit order: a later
    /// position may commit first).
    pub seq: i64,
    /// `key`, `principal`, `member`, `assignee`, `role`, `instance` or `meta`.
    pub kind: String,
    /// The entity: a key's case-folded name, an object id, a role id, a fact's name.
    pub id: String,
    /// When it was recorded (Unix seconds, the database's clock).
    pub at: i64,
    /// Recorded by this node's own writes (already published here).
    pub own: bool,
}

/// The change feed.
#[async_trait]
pub trait ChangeStore: Send + Sync + 'static {
    /// The highest position recorded before `at` (Unix seconds; 0: none). A node starts following from the
    /// position recorded a while before its view was built, so that a transaction still running then (whose
    /// position is below later ones) is not skipped.
    async fn last_change_before(&self, at: i64) -> Result<i64, Error>;
    /// Changes at positions above `after`, in position order, at most `limit`.
    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>, Error>;
    /// Forgets changes recorded before `before` (Unix seconds). Returns how many.
    async fn prune_changes(&self, before: i64) -> Result<u64, Error>;
}
