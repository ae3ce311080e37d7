//! The adapter both databases share: [`SqlStore`] reads and writes through sqlx's `Any` driver with portable SQL
//! (`$n` placeholders, BIGINT/TEXT/BLOB columns); the few dialect differences are in [`Dialect`]. Each port of
//! coffer-core's `Store` is implemented in its own file (instance, keys, backup, identities, rbac, policy,
//! assertions); every write method is one transaction run by [`write_tx!`].
//!
//! - **SQLite** (the embedded default): one database file, WAL journal, `synchronous = FULL`, foreign keys on.
//!   Writes go through a single-connection pool so write transactions never contend; reads use a second pool.
//! - **PostgreSQL**: one pool; write transactions are `SERIALIZABLE`, so a check-then-insert cannot race (limits
//!   and unique names hold under concurrency), and a transaction that PostgreSQL aborts as a serialization failure
//!   or deadlock is run again from the start (at most [`MAX_ATTEMPTS`] times). A broken connection is dropped by
//!   the pool, which opens a new one for the next transaction.
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use coffer_core::Error;
use coffer_core::key::{Deletion, KeyName};
use coffer_core::store::Refusal;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Row, Transaction};

use crate::rows::storage;

/// How many times a write transaction is tried when PostgreSQL aborts it for a conflict with another one.
pub(crate) const MAX_ATTEMPTS: u32 = 12;

/// The database behind a [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A store on SQLite or PostgreSQL.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(crate) writer: AnyPool,
    pub(crate) reader: AnyPool,
    pub(crate) dialect: Dialect,
    /// PostgreSQL: the connection URL (with the password) for the change listener's own connection.
    pub(crate) listen_url: Option<std::sync::Arc<crate::postgres::SecretUrl>>,
    /// This process's name on its database connections (`application_name` on PostgreSQL), which the change feed
    /// records with each change.
    pub(crate) node_name: String,
}

pub(crate) type Tx = Transaction<'static, Any>;

/// Runs `$body` in a write transaction of `$store`, with `$tx` (a `Transaction`) in scope. The body evaluates to
/// (or `return`s) a `Result<T, Error>`; the transaction is committed when it is `Ok`, rolled back otherwise. On
/// PostgreSQL a serialization failure, deadlock or unique violation reruns the whole body in a new transaction, so
/// the body must do nothing but database work (it may run more than once).
macro_rules! write_tx {
    ($store:expr, |$tx:ident| $body:block) => {
        $store
            .run_write(|mut $tx| async move {
                let r = async { $body }.await;
                ($tx, r)
            })
            .await
    };
}
pub(crate) use write_tx;

impl SqlStore {
    /// Opens (creating if needed) the SQLite database at `path` and applies migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let url = format!("sqlite://{}", path.display());
        let writer = AnyPoolOptions::new()
            .max_connections(1)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                         PRAGMA busy_timeout = 10000;",
                    )
                    .await
                    .map(|_| ())
                })
            })
            .connect_with(any_options(&format!("{url}?mode=rwc"))?)
            .await
            .map_err(storage)?;
        crate::migrate::run(&writer, Dialect::Sqlite).await?;
        let reader = AnyPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    conn.execute("PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;")
                        .await
                        .map(|_| ())
                })
            })
            .connect_with(any_options(&format!("{url}?mode=ro"))?)
            .await
            .map_err(storage)?;
        Ok(Self {
            writer,
            reader,
            dialect: Dialect::Sqlite,
            listen_url: None,
            node_name: node_name(),
        })
    }

    /// Connects to PostgreSQL (see [`crate::PostgresConfig`]) and applies migrations under an advisory lock, so
    /// several nodes starting at once migrate exactly once.
    pub async fn connect_postgres(config: &crate::PostgresConfig) -> Result<Self, Error> {
        sqlx::any::install_default_drivers();
        let node_name = node_name();
        let url = config.url_with_password();
        let pool_url = config.url_with_password_and(&[("application_name", &node_name)]);
        let pool = AnyPoolOptions::new()
            .max_connections(config.max_connections)
            .min_connections(0)
            .acquire_timeout(Duration::from_secs(10))
            // A connection the server closed (failover, restart) fails this check and is replaced.
            .test_before_acquire(true)
            .connect_with(any_options(pool_url.expose())?)
            .await
            .map_err(storage)?;
        crate::migrate::run(&pool, Dialect::Postgres).await?;
        Ok(Self {
            reader: pool.clone(),
            writer: pool,
            dialect: Dialect::Postgres,
            listen_url: Some(std::sync::Arc::new(url)),
            node_name,
        })
    }

    /// The write pool, for tests and tools that must look at the database itself (never for Coffer's own
    /// queries, which go through the ports).
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> AnyPool {
        self.writer.clone()
    }

    /// Which database this is.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Closes the pools (waits for connections in use to be returned).
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }

    /// A write transaction: `SERIALIZABLE` on PostgreSQL (SQLite transactions are serializable, and there is one
    /// writer).
    async fn begin(&self) -> Result<Tx, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if self.dialect == Dialect::Postgres {
            tx.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .await
                .map_err(storage)?;
        }
        Ok(tx)
    }

    /// Runs one write transaction (see [`write_tx!`]): commits on `Ok`, and on a retryable PostgreSQL failure runs
    /// `attempt` again in a new transaction, after a short randomised pause.
    pub(crate) async fn run_write<T, F, Fut>(&self, mut attempt: F) -> Result<T, Error>
    where
        F: FnMut(Tx) -> Fut,
        Fut: Future<Output = (Tx, Result<T, Error>)>,
    {
        let mut tries = 0u32;
        loop {
            tries += 1;
            let tx = self.begin().await?;
            let (tx, result) = attempt(tx).await;
            let result = match result {
                Ok(v) => tx.commit().await.map(|()| v).map_err(storage),
                Err(e) => {
                    // Dropping the transaction also rolls it back; rolling back here returns the connection clean.
                    let _ = tx.rollback().await;
                    Err(e)
                }
            };
            match result {
                // A unique violation is retried a few times only: one met because another writer got there first
                // turns into the body's own refusal on the next run; a plain duplicate stays a duplicate.
                Err(e) if retryable(&e) && tries < if unique_violation(&e) { 3 } else { MAX_ATTEMPTS } => {
                    tracing::debug!(tries, "write transaction conflicted; retrying");
                    tokio::time::sleep(backoff(tries)).await;
                }
                // Still conflicting after every attempt: a conflict for the client (409), not a server error.
                Err(e) if retryable(&e) => {
                    tracing::warn!(error = %e, tries, "write transaction kept conflicting; answering 409");
                    return Err(Refusal::Duplicate.into());
                }
                other => return other,
            }
        }
    }
}

/// A name for this process's connections, distinct per start: `coffer-<pid>-<start time>`.
fn node_name() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("coffer-{}-{nanos:x}", std::process::id())
}

fn any_options(url: &str) -> Result<AnyConnectOptions, Error> {
    url.parse::<AnyConnectOptions>().map_err(storage)
}

/// The SQLSTATE of a database error wrapped in a storage error.
fn sqlstate(e: &Error) -> Option<String> {
    let Error::Storage(inner) = e else { return None };
    let sqlx_error = inner.downcast_ref::<sqlx::Error>()?;
    sqlx_error.as_database_error()?.code().map(|c| c.into_owned())
}

/// Serialization failure, deadlock, or a unique violation met by a transaction that conflicted with another.
fn retryable(e: &Error) -> bool {
    matches!(sqlstate(e).as_deref(), Some("40001" | "40P01" | "23505"))
}

fn unique_violation(e: &Error) -> bool {
    let Error::Storage(inner) = e else { return false };
    inner
        .downcast_ref::<sqlx::Error>()
        .and_then(|e| e.as_database_error())
        .is_some_and(|d| d.is_unique_violation())
}

/// 2, 4, 8 … ms (capped at 128), plus up to as much again at random, so retried transactions spread out.
fn backoff(tries: u32) -> Duration {
    let base = 1u64 << tries.min(7);
    let nanos = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos(),
    );
    Duration::from_micros(base * 1000 + nanos % (base * 1000))
}

/// The case-folded key of a key name (names are case-insensitive).
pub(crate) fn key_of(name: &KeyName) -> String {
    name.as_str().to_ascii_lowercase()
}

/// Whether a one-parameter existence query finds a row.
pub(crate) async fn exists(conn: &mut AnyConnection, sql: &'static str, param: &str) -> Result<bool, Error> {
    Ok(sqlx::query(sql)
        .bind(param)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?
        .is_some())
}

/// The deletion columns of a key row.
pub(crate) fn deletion_of(row: &sqlx::any::AnyRow) -> Result<Option<Deletion>, Error> {
    let d: Option<i64> = row.try_get("deleted_date").map_err(storage)?;
    let p: Option<i64> = row.try_get("scheduled_purge_date").map_err(storage)?;
    Ok(match (d, p) {
        (Some(deleted_date), Some(scheduled_purge_date)) => Some(Deletion {
            deleted_date,
            scheduled_purge_date,
        }),
        _ => None,
    })
}
