//! Moving an instance from SQLite to PostgreSQL (`coffer store migrate`): every table copied row for row, in one
//! PostgreSQL transaction, into a database that holds no instance yet. The rows move as they are (key material stays
//! sealed under the same domain secret, so the same seal opens it), then the copy is checked by counting.
use coffer_core::Error;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Column, Executor, Row, TypeInfo, ValueRef};

use crate::rows::storage;
use crate::sql::{Dialect, SqlStore};

/// The tables of the schema, parents before children (foreign keys).
pub const TABLES: &[&str] = &[
    "instance",
    "principals",
    "principal_secrets",
    "principal_certificates",
    "groups",
    "group_members",
    "keys",
    "key_versions",
    "rotation_policies",
    "role_definitions",
    "role_assignments",
    "eligible_assignments",
    "activations",
    "settings",
    "meta",
    "policy_assignments",
    "assertion_jti",
];

/// Tables not copied: the change feed (what other PostgreSQL nodes follow; empty on SQLite).
const NOT_COPIED: &[&str] = &["changes", "schema_migrations", "sqlite_sequence"];

fn refuse(msg: impl Into<String>) -> Error {
    Error::BadParameter(msg.into())
}

/// Copies every row of `from` (SQLite) into `to` (PostgreSQL, migrated, without an instance). Returns the number
/// of rows per table, after checking that `to` holds exactly as many.
pub async fn sqlite_to_postgres(from: &SqlStore, to: &SqlStore) -> Result<Vec<(&'static str, i64)>, Error> {
    if from.dialect() != Dialect::Sqlite || to.dialect() != Dialect::Postgres {
        return Err(refuse("a migration copies a SQLite store into a PostgreSQL one"));
    }
    // One read transaction on the source: every table from the same snapshot.
    let mut src = from.reader.begin().await.map_err(storage)?;
    let source_tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(&mut *src)
            .await
            .map_err(storage)?;
    let unknown: Vec<&String> = source_tables
        .iter()
        .filter(|t| !TABLES.contains(&t.as_str()) && !NOT_COPIED.contains(&t.as_str()))
        .collect();
    if !unknown.is_empty() {
        return Err(Error::Corrupt(format!(
            "the SQLite database has tables this migration does not know: {unknown:?}"
        )));
    }
    let mut tx = to.writer.begin().await.map_err(storage)?;
    let taken: i64 = sqlx::query("SELECT COUNT(*) AS n FROM instance")
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?
        .try_get("n")
        .map_err(storage)?;
    if taken != 0 {
        return Err(refuse(
            "the PostgreSQL database already holds an instance: migrate into an empty database",
        ));
    }
    // Nothing but the schema's own rows may be there (a half-finished earlier copy rolled back entirely).
    let mut counts = Vec::new();
    for table in TABLES {
        let columns = column_types(&mut tx, table).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
            .fetch_all(&mut *src)
            .await
            .map_err(storage)?;
        for row in &rows {
            insert(&mut tx, table, &columns, row).await?;
        }
        counts.push((*table, i64::try_from(rows.len()).unwrap_or(i64::MAX)));
    }
    // Identity numbering goes on after the copied sequence numbers.
    tx.execute(
        "SELECT setval(pg_get_serial_sequence('key_versions', 'seq'), COALESCE((SELECT MAX(seq) FROM key_versions), 0) + 1, false)",
    )
    .await
    .map_err(storage)?;
    for (table, n) in &counts {
        let there: i64 = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?
            .try_get("n")
            .map_err(storage)?;
        if there != *n {
            return Err(Error::Corrupt(format!(
                "{table}: copied {n} rows but {there} are there"
            )));
        }
    }
    tx.commit().await.map_err(storage)?;
    Ok(counts)
}

/// The destination's columns of `table` with their PostgreSQL types (`bigint`, `text`, `bytea`).
async fn column_types(conn: &mut AnyConnection, table: &str) -> Result<Vec<(String, String)>, Error> {
    let rows = sqlx::query(
        "SELECT column_name::text AS name, data_type::text AS ty FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await
    .map_err(storage)?;
    rows.iter()
        .map(|r| Ok((r.try_get("name").map_err(storage)?, r.try_get("ty").map_err(storage)?)))
        .collect()
}

/// Inserts one source row; each value is read as the destination column's type (a SQLite column holding another
/// type is refused rather than converted).
async fn insert(
    conn: &mut AnyConnection,
    table: &str,
    columns: &[(String, String)],
    row: &AnyRow,
) -> Result<(), Error> {
    let present: Vec<&(String, String)> = columns
        .iter()
        .filter(|(name, _)| row.columns().iter().any(|c| c.name() == name))
        .collect();
    if present.len() != row.columns().len() {
        let extra: Vec<&str> = row
            .columns()
            .iter()
            .map(|c| c.name())
            .filter(|n| !columns.iter().any(|(c, _)| c == n))
            .collect();
        return Err(Error::Corrupt(format!(
            "{table}: source columns {extra:?} have no destination"
        )));
    }
    let names: Vec<&str> = present.iter().map(|(n, _)| n.as_str()).collect();
    let marks: Vec<String> = (1..=present.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        names.join(", "),
        marks.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (name, ty) in &present {
        let raw = row.try_get_raw(name.as_str()).map_err(storage)?;
        let null = raw.is_null();
        let what = || Error::Corrupt(format!("{table}.{name}: not a {ty} ({})", raw.type_info().name()));
        q = match ty.as_str() {
            "bigint" => q.bind(if null {
                None
            } else {
                Some(row.try_get::<i64, _>(name.as_str()).map_err(|_| what())?)
            }),
            "text" => q.bind(if null {
                None
            } else {
                Some(row.try_get::<String, _>(name.as_str()).map_err(|_| what())?)
            }),
            "bytea" => q.bind(if null {
                None
            } else {
                Some(row.try_get::<Vec<u8>, _>(name.as_str()).map_err(|_| what())?)
            }),
            other => {
                return Err(Error::Corrupt(format!(
                    "{table}.{name}: unexpected column type {other}"
                )));
            }
        };
    }
    q.execute(&mut *conn).await.map_err(storage)?;
    Ok(())
}
