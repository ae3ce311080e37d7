//! A minimal migration runner: embedded SQL files applied in order, each in its own transaction, recorded in
//! `schema_migrations`.
use sqlx::{Executor, Row, SqlitePool};

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
];

pub(crate) async fn run_sqlite(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    pool.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)")
        .await?;
    for (version, sql) in SQLITE {
        let mut tx = pool.begin().await?;
        let done = sqlx::query("SELECT COUNT(*) AS n FROM schema_migrations WHERE version = $1")
            .bind(version)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>("n")?;
        if done == 0 {
            tx.execute(*sql).await?;
            sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES ($1, strftime('%s','now'))")
                .bind(version)
                .execute(&mut *tx)
                .await?;
            tracing::info!(version, "applied schema migration");
        }
        tx.commit().await?;
    }
    Ok(())
}
