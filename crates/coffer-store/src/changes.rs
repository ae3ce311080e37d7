//! `ChangeStore` on SQL: the change feed (table `changes`, migration 0012; written by PostgreSQL triggers), and on
//! PostgreSQL a [`ChangeListener`] that wakes a node as soon as another one commits a change.
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::Error;
use coffer_core::store::{Change, ChangeStore};
use sqlx::Row;

use crate::rows::storage;
use crate::sql::{Dialect, SqlStore};

#[async_trait]
impl ChangeStore for SqlStore {
    async fn last_change_before(&self, at: i64) -> Result<i64, Error> {
        sqlx::query("SELECT COALESCE(MAX(seq), 0) AS n FROM changes WHERE at < $1")
            .bind(at)
            .fetch_one(&self.reader)
            .await
            .map_err(storage)?
            .try_get("n")
            .map_err(storage)
    }

    async fn changes_after(&self, after: i64, limit: usize) -> Result<Vec<Change>, Error> {
        let rows = sqlx::query("SELECT seq, kind, id, at, node FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| {
                Ok(Change {
                    seq: r.try_get("seq").map_err(storage)?,
                    kind: r.try_get("kind").map_err(storage)?,
                    id: r.try_get("id").map_err(storage)?,
                    at: r.try_get("at").map_err(storage)?,
                    own: r
                        .try_get::<Option<String>, _>("node")
                        .map_err(storage)?
                        .is_some_and(|n| n == self.node_name),
                })
            })
            .collect()
    }

    async fn prune_changes(&self, before: i64) -> Result<u64, Error> {
        Ok(sqlx::query("DELETE FROM changes WHERE at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(storage)?
            .rows_affected())
    }
}

/// Wakes on PostgreSQL's `coffer_changes` notifications (sent at commit by the feed's triggers). A dropped
/// connection is re-opened and re-LISTENed by the next wait; notifications sent meanwhile are lost, which is why
/// nodes also read the feed every second.
pub struct ChangeListener {
    inner: sqlx::postgres::PgListener,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeListener").finish_non_exhaustive()
    }
}

impl SqlStore {
    /// A listener for other nodes' changes: PostgreSQL only (`None` on SQLite, which serves one process).
    pub async fn change_listener(&self) -> Result<Option<ChangeListener>, Error> {
        let (Dialect::Postgres, Some(url)) = (self.dialect, &self.listen_url) else {
            return Ok(None);
        };
        let mut inner = sqlx::postgres::PgListener::connect(url.expose())
            .await
            .map_err(storage)?;
        inner.listen("coffer_changes").await.map_err(storage)?;
        Ok(Some(ChangeListener { inner }))
    }
}

impl ChangeListener {
    /// Waits at most `timeout` for a notification; true when one came. Errors (a dropped connection) are logged
    /// and answered false after a short pause: the caller reads the feed anyway.
    pub async fn wait(&mut self, timeout: Duration) -> bool {
        match tokio::time::timeout(timeout, self.inner.try_recv()).await {
            Ok(Ok(Some(_))) => {
                // Coalesce a burst: take whatever else is already queued.
                while let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::ZERO, self.inner.try_recv()).await {}
                true
            }
            Ok(Ok(None)) => false, // the connection was lost; the next try_recv reconnects and re-listens
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "change listener failed; reading the feed by polling until it is back");
                tokio::time::sleep(Duration::from_millis(500)).await;
                false
            }
            Err(_) => false,
        }
    }
}
