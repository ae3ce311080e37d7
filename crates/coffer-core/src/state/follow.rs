//! Following other nodes (high availability): the changes they commit reach this node's view through the store's
//! change feed ([`crate::store::ChangeStore`]). [`Follower`] remembers how far the feed has been applied; each
//! [`crate::Hsm::catch_up`] reads what is new, re-reads the entities it names from the store and publishes them, as
//! the node's own writes are published. Applying a change is idempotent (a re-read), so a change seen twice (this
//! node's own, or one read again after a gap) costs a read, never a wrong state.
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::View;
use crate::Error;
use crate::key::KeyName;
use crate::store::{Change, Store};

/// Feed positions are handed out when a transaction records its change, not when it commits: a position may stay
/// missing for a while (its transaction still running) and appear later. A gap older than this is a transaction
/// that rolled back, and the follower stops waiting for it.
/// It is generous (a full restore is one long transaction); a change seen late is applied when it appears anyway
/// until the watermark passes it.
pub const GAP_PATIENCE_SECS: i64 = 300;

/// How far a node has applied the feed.
#[derive(Debug, Clone, Default)]
pub struct Follower {
    /// Every position at or below it has been applied (or was a rolled-back gap).
    watermark: i64,
    /// Positions above the watermark already applied.
    applied: BTreeSet<i64>,
}

impl Follower {
    /// Starts after `seq` (read before the view was built, so nothing between is missed).
    pub fn after(seq: i64) -> Self {
        Self {
            watermark: seq,
            applied: BTreeSet::new(),
        }
    }

    /// Every position at or below it has been applied.
    pub fn watermark(&self) -> i64 {
        self.watermark
    }

    /// The changes of `rows` (positions above the watermark, ascending) not applied yet; marks them applied and
    /// moves the watermark over what is settled at `now`.
    pub fn take_new(&mut self, rows: &[Change], now: i64) -> Vec<Change> {
        let new: Vec<Change> = rows
            .iter()
            .filter(|c| c.seq > self.watermark && !self.applied.contains(&c.seq))
            .cloned()
            .collect();
        self.applied.extend(new.iter().map(|c| c.seq));
        let mut w = self.watermark;
        for c in rows {
            if c.seq <= w {
                continue;
            }
            // A missing position before `c` belongs to a transaction that started before `c` was recorded.
            if c.seq == w + 1 || c.at < now - GAP_PATIENCE_SECS {
                w = c.seq;
            } else {
                break;
            }
        }
        self.watermark = w;
        self.applied = self.applied.split_off(&(w + 1));
        new
    }
}

/// Re-reads into `view` every entity `changes` name (each once). Returns the key names changed (their cached
/// material must go).
pub(crate) async fn apply(store: &dyn Store, view: &mut View, changes: &[Change]) -> Result<Vec<String>, Error> {
    let mut seen = HashSet::new();
    let mut keys = Vec::new();
    for c in changes {
        if !seen.insert((c.kind.as_str(), c.id.as_str())) {
            continue;
        }
        match c.kind.as_str() {
            "key" => {
                let name = KeyName::parse(&c.id)?;
                super::refresh_key(store, view, &name).await?;
                keys.push(c.id.clone());
            }
            "principal" => super::refresh_principal(store, view, &c.id).await?,
            "member" => super::refresh_memberships(store, view, &c.id).await?,
            "assignee" => super::refresh_assignments(store, view, &c.id).await?,
            "role" => super::refresh_custom_role(store, view, &c.id).await?,
            "instance" | "meta" => refresh_instance_facts(store, view).await?,
            "full" => {
                *view = super::rebuild(store, view.clone()).await?;
            }
            other => tracing::warn!(kind = other, "unknown change kind in the feed: ignored"),
        }
    }
    Ok(keys)
}

/// Re-reads what the instance row and the instance facts decide: lifecycle, purge protection, network ACLs, the
/// restore lease.
async fn refresh_instance_facts(store: &dyn Store, view: &mut View) -> Result<(), Error> {
    let instance = store
        .instance()
        .await?
        .ok_or_else(|| Error::Corrupt("no instance in the store".into()))?;
    view.lifecycle = instance.state;
    view.purge_protection = instance.purge_protection;
    if let Some(json) = store.meta(crate::network::META_KEY).await? {
        let doc = serde_json::from_str(&json).map_err(|e| Error::Corrupt(format!("stored network ACLs: {e}")))?;
        view.network = Arc::new(crate::network::NetworkAcls::parse(doc)?);
    }
    view.restore_lease_until = store
        .meta(super::RESTORE_LEASE)
        .await?
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(seq: i64, at: i64) -> Change {
        Change {
            seq,
            kind: "key".into(),
            id: format!("k{seq}"),
            at,
            own: false,
        }
    }

    #[test]
    fn contiguous_positions_move_the_watermark_and_are_applied_once() {
        let mut f = Follower::after(10);
        let rows = [c(11, 100), c(12, 100)];
        assert_eq!(f.take_new(&rows, 100).len(), 2);
        assert_eq!(f.watermark(), 12);
        assert!(f.take_new(&rows, 100).is_empty(), "read again: nothing new");
    }

    #[test]
    fn a_recent_gap_holds_the_watermark_and_its_late_commit_is_applied() {
        let mut f = Follower::after(10);
        // 12 committed before 11 (still running).
        assert_eq!(f.take_new(&[c(12, 100)], 101).len(), 1);
        assert_eq!(f.watermark(), 10, "11 may still commit");
        // 11 commits; the next read returns both: only 11 is new.
        let new = f.take_new(&[c(11, 99), c(12, 100)], 102);
        assert_eq!(new.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![11]);
        assert_eq!(f.watermark(), 12);
    }

    #[test]
    fn an_old_gap_is_a_rollback_and_is_passed() {
        let mut f = Follower::after(10);
        assert_eq!(f.take_new(&[c(12, 100)], 100 + GAP_PATIENCE_SECS - 1).len(), 1);
        assert_eq!(f.watermark(), 10);
        assert!(f.take_new(&[c(12, 100)], 100 + GAP_PATIENCE_SECS + 1).is_empty());
        assert_eq!(f.watermark(), 12, "11 rolled back");
    }
}
