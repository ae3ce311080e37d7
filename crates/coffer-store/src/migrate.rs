//! A minimal migration runner: embedded SQL files (one list per dialect, with the same version numbers) applied in
//! order, each in its own transaction, recorded in `schema_migrations`.
//!
//! On PostgreSQL the whole run holds a session advisory lock, so nodes starting at once migrate exactly once (the
//! others wait, then find every version applied). A database that records a version this binary does not know (a
//! newer Coffer migrated it) is refused with a clear message instead of being used: rolling upgrades rely on that.
use coffer_core::Error;
use sqlx::{AnyPool, Executor, Row};

use crate::rows::storage;
use crate::sql::Dialect;

/// (version, SQL) for SQLite.
const SQLITE: &[(i64, &str)] = &[
    (1, include_str!("../migrations/sqlite/0001_initial.sql")),
    (2, include_str!("../migrations/sqlite/0002_rbac_identities.sql")),
    (3, include_str!("../migrations/sqlite/0003_jit_conditional_access.sql")),
    (4, include_str!("../migrations/sqlite/0004_security_domain.sql")),
    (5, include_str!("../migrations/sqlite/0005_rotation_settings.sql")),
    (6, include_str!("../migrations/sqlite/0006_meta.sql")),
    (7, include_str!("../migrations/sqlite/0007_policies.sql")),
    (
        8,
        include_str!("../migrations/sqlite/0008_assignments_by_principal_nocase.sql"),
    ),
    (9, include_str!("../migrations/sqlite/0009_assertion_jti.sql")),
    (11, include_str!("../migrations/sqlite/0011_key_origin.sql")),
    (12, include_str!("../migrations/sqlite/0012_changes.sql")),
];

/// (version, SQL) for PostgreSQL: the same schema, version for version.
const POSTGRES: &[(i64, &str)] = &[
    (1, include_str!("../migrations/postgres/0001_initial.sql")),
    (2, include_str!("../migrations/postgres/0002_rbac_identities.sql")),
    (
        3,
        include_str!("../migrations/postgres/0003_jit_conditional_access.sql"),
    ),
    (4, include_str!("../migrations/postgres/0004_security_domain.sql")),
    (5, include_str!("../migrations/postgres/0005_rotation_settings.sql")),
    (6, include_str!("../migrations/postgres/0006_meta.sql")),
    (7, include_str!("../migrations/postgres/0007_policies.sql")),
    (
        8,
        include_str!("../migrations/postgres/0008_assignments_by_principal_nocase.sql"),
    ),
    (9, include_str!("../migrations/postgres/0009_assertion_jti.sql")),
    (11, include_str!("../migrations/postgres/0011_key_origin.sql")),
    (12, include_str!("../migrations/postgres/0012_changes.sql")),
];

/// Any number identifying Coffer's migration lock among the database's advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x436f_6666_6572_4d67; // "CofferMg"

/// The highest schema version this binary understands.
pub fn latest_version() -> i64 {
    SQLITE.last().map_or(0, |(v, _)| *v)
}

/// Applies the migrations `pool`'s database lacks; refuses a database with versions this binary does not know.
pub(crate) async fn run(pool: &AnyPool, dialect: Dialect) -> Result<(), Error> {
    let steps = match dialect {
        Dialect::Sqlite => SQLITE,
        Dialect::Postgres => POSTGRES,
    };
    // One connection for the whole run: a PostgreSQL session lock belongs to the connection that took it.
    let mut conn = pool.acquire().await.map_err(storage)?;
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await
            .map_err(storage)?;
    }
    let result = apply(&mut conn, steps, dialect).await;
    if dialect == Dialect::Postgres {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(PG_MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // The lock dies with the session: make sure this connection is not reused while holding it.
            conn.detach();
        }
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, steps: &[(i64, &'static str)], dialect: Dialect) -> Result<(), Error> {
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
        .await
        .map_err(storage)?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?
        .iter()
        .map(|r| r.try_get::<i64, _>("version"))
        .collect::<Result<_, _>>()
        .map_err(storage)?;
    check_known(&applied, steps)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    for (version, sql) in steps {
        if applied.contains(version) {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(storage)?;
        tx.execute(*sql).await.map_err(storage)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)")
            .bind(version)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        tracing::info!(version, ?dialect, "applied schema migration");
    }
    Ok(())
}

/// Refuses a schema this binary cannot serve: a version it does not know (written by a newer Coffer).
fn check_known(applied: &[i64], steps: &[(i64, &str)]) -> Result<(), Error> {
    let known: Vec<i64> = steps.iter().map(|(v, _)| *v).collect();
    let unknown: Vec<i64> = applied.iter().copied().filter(|v| !known.contains(v)).collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(Error::Corrupt(format!(
        "the database schema has version(s) {unknown:?}, which this Coffer does not know (it understands up to {}): \
         it was migrated by a newer Coffer. Run that version, or restore a backup made for this one.",
        known.last().copied().unwrap_or(0)
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_have_the_same_versions() {
        let s: Vec<i64> = SQLITE.iter().map(|(v, _)| *v).collect();
        let p: Vec<i64> = POSTGRES.iter().map(|(v, _)| *v).collect();
        assert_eq!(s, p);
    }

    #[test]
    fn a_newer_schema_is_refused_with_its_version() {
        assert!(check_known(&[1, 2], SQLITE).is_ok());
        let e = check_known(&[1, 2, 99], SQLITE).unwrap_err();
        assert!(e.to_string().contains("[99]"), "{e}");
        assert!(e.to_string().contains("newer Coffer"), "{e}");
    }
}
