//! The SQLite adapter: one database file in the data directory, WAL journal, `synchronous = FULL`, foreign keys
//! on. Writes go through a single-connection pool so write transactions never contend; reads use a second pool.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::Error;
use coffer_core::key::{DeletedKey, Deletion, KeyName, KeyVersion, KeyVersionRecord};
use coffer_core::store::{InstanceRecord, NewVersionMode, PrincipalRecord, Store};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};

use crate::rows::{columns, storage, version_from_row};

const VERSION_SELECT: &str = "SELECT k.name AS name, k.deleted_date AS deleted_date, \
    k.scheduled_purge_date AS scheduled_purge_date, v.version, v.kty, v.size_bits, v.crv, v.pub_a, v.pub_b, \
    v.key_ops, v.enabled, v.nbf, v.exp, v.created, v.updated, v.exportable, v.tags, v.release_policy, \
    v.sealed_material FROM key_versions v JOIN keys k ON k.name_key = v.name_key";

/// SQLite-backed store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

fn key_of(name: &KeyName) -> String {
    name.as_str().to_ascii_lowercase()
}

fn deleted_conflict(name: &str) -> Error {
    Error::Conflict(format!(
        "Key {name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, \
         the key can only be recovered or purged."
    ))
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, Error> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(storage)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await
            .map_err(storage)?;
        crate::migrate::run_sqlite(&writer).await.map_err(storage)?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts.read_only(true))
            .await
            .map_err(storage)?;
        Ok(Self { writer, reader })
    }

    async fn versions_where(
        &self,
        clause: &str,
        binds: &[&str],
    ) -> Result<Vec<KeyVersionRecord>, Error> {
        // Only constant SQL fragments are concatenated here; every value is a bind parameter.
        let sql = format!("{VERSION_SELECT} {clause}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&self.reader).await.map_err(storage)?;
        rows.iter().map(version_from_row).collect()
    }
}

fn deletion_of(row: &SqliteRow) -> Result<Option<Deletion>, Error> {
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

#[async_trait]
impl Store for SqliteStore {
    async fn instance(&self) -> Result<Option<InstanceRecord>, Error> {
        let row = sqlx::query("SELECT * FROM instance WHERE id = 1")
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        let Some(r) = row else { return Ok(None) };
        let i = |c: &str| r.try_get::<i64, _>(c).map_err(storage);
        let s = |c: &str| r.try_get::<String, _>(c).map_err(storage);
        Ok(Some(InstanceRecord {
            instance_id: s("instance_id")?,
            instance_name: s("instance_name")?,
            tenant_id: s("tenant_id")?,
            created: i("created")?,
            dev: i("dev")? != 0,
            sealed_domain_secret: r.try_get("sealed_domain_secret").map_err(storage)?,
            sealed_token_key: r.try_get("sealed_token_key").map_err(storage)?,
            soft_delete_retention_days: i("soft_delete_retention_days")?,
            purge_protection: i("purge_protection")? != 0,
            bootstrap_object_id: s("bootstrap_object_id")?,
        }))
    }

    async fn create_instance(
        &self,
        ins: &InstanceRecord,
        p: &PrincipalRecord,
    ) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO instance (id, instance_id, instance_name, tenant_id, created, dev, sealed_domain_secret, \
             sealed_token_key, soft_delete_retention_days, purge_protection, bootstrap_object_id) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&ins.instance_id)
        .bind(&ins.instance_name)
        .bind(&ins.tenant_id)
        .bind(ins.created)
        .bind(i64::from(ins.dev))
        .bind(&ins.sealed_domain_secret)
        .bind(&ins.sealed_token_key)
        .bind(ins.soft_delete_retention_days)
        .bind(i64::from(ins.purge_protection))
        .bind(&ins.bootstrap_object_id)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        sqlx::query("INSERT INTO principals (object_id, client_id, display_name, created) VALUES ($1, $2, $3, $4)")
            .bind(&p.object_id)
            .bind(&p.client_id)
            .bind(&p.display_name)
            .bind(p.created)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        for h in &p.secret_hashes {
            sqlx::query("INSERT INTO principal_secrets (object_id, secret_hash) VALUES ($1, $2)")
                .bind(&p.object_id)
                .bind(h)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn insert_versions(
        &self,
        versions: &[KeyVersionRecord],
        mode: NewVersionMode,
    ) -> Result<KeyName, Error> {
        let Some(first) = versions.first() else {
            return Err(Error::Corrupt("no versions to insert".into()));
        };
        let mut stored_name = first.name.clone();
        let name_key = key_of(&first.name);
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let existing = sqlx::query("SELECT name, deleted_date FROM keys WHERE name_key = $1")
            .bind(&name_key)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?;
        match (&existing, mode) {
            (Some(row), _)
                if row
                    .try_get::<Option<i64>, _>("deleted_date")
                    .map_err(storage)?
                    .is_some() =>
            {
                return Err(deleted_conflict(first.name.as_str()));
            }
            (Some(_), NewVersionMode::RestoreWholeKey) => {
                return Err(Error::Conflict(format!(
                    "A key named {} already exists; delete and purge it before restoring.",
                    first.name
                )));
            }
            (Some(row), NewVersionMode::AddVersion) => {
                let n: String = row.try_get("name").map_err(storage)?;
                stored_name = KeyName::parse(&n)?;
            }
            (None, _) => {
                sqlx::query("INSERT INTO keys (name_key, name, latest_seq) VALUES ($1, $2, 0)")
                    .bind(&name_key)
                    .bind(first.name.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
        }
        let mut last_seq = 0i64;
        for rec in versions {
            let c = columns(rec)?;
            let row = sqlx::query(
                "INSERT INTO key_versions (name_key, version, kty, size_bits, crv, pub_a, pub_b, key_ops, enabled, \
                 nbf, exp, created, updated, exportable, tags, release_policy, sealed_material) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING seq",
            )
            .bind(&name_key)
            .bind(rec.version.as_str())
            .bind(c.kty)
            .bind(c.size_bits)
            .bind(c.crv)
            .bind(c.pub_a)
            .bind(c.pub_b)
            .bind(c.key_ops)
            .bind(i64::from(rec.attributes.enabled))
            .bind(rec.attributes.not_before)
            .bind(rec.attributes.expires)
            .bind(rec.attributes.created)
            .bind(rec.attributes.updated)
            .bind(i64::from(rec.attributes.exportable))
            .bind(c.tags)
            .bind(&rec.release_policy)
            .bind(&rec.sealed_material)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
            last_seq = row.try_get("seq").map_err(storage)?;
        }
        sqlx::query("UPDATE keys SET latest_seq = $1 WHERE name_key = $2")
            .bind(last_seq)
            .bind(&name_key)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(stored_name)
    }

    async fn key_version(
        &self,
        name: &KeyName,
        version: Option<&KeyVersion>,
    ) -> Result<Option<KeyVersionRecord>, Error> {
        let nk = key_of(name);
        let rows = match version {
            None => {
                self.versions_where(
                    "WHERE k.name_key = $1 AND k.deleted_date IS NULL AND v.seq = k.latest_seq",
                    &[&nk],
                )
                .await?
            }
            Some(v) => {
                self.versions_where(
                    "WHERE k.name_key = $1 AND k.deleted_date IS NULL AND v.version = $2",
                    &[&nk, v.as_str()],
                )
                .await?
            }
        };
        Ok(rows.into_iter().next())
    }

    async fn all_versions(&self, name: &KeyName) -> Result<Vec<KeyVersionRecord>, Error> {
        self.versions_where(
            "WHERE k.name_key = $1 AND k.deleted_date IS NULL ORDER BY v.seq",
            &[&key_of(name)],
        )
        .await
    }

    async fn list_keys(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error> {
        let after = after.unwrap_or("").to_ascii_lowercase();
        let limit = limit.to_string();
        self.versions_where(
            "WHERE k.deleted_date IS NULL AND v.seq = k.latest_seq AND k.name_key > $1 ORDER BY k.name_key \
             LIMIT CAST($2 AS INTEGER)",
            &[&after, &limit],
        )
        .await
    }

    async fn list_versions(
        &self,
        name: &KeyName,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<KeyVersionRecord>, Error> {
        let after = after.unwrap_or("").to_ascii_lowercase();
        let limit = limit.to_string();
        self.versions_where(
            "WHERE k.name_key = $1 AND k.deleted_date IS NULL AND v.version > $2 ORDER BY v.version \
             LIMIT CAST($3 AS INTEGER)",
            &[&key_of(name), &after, &limit],
        )
        .await
    }

    async fn update_version(&self, rec: &KeyVersionRecord) -> Result<(), Error> {
        let c = columns(rec)?;
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let done = sqlx::query(
            "UPDATE key_versions SET key_ops = $1, enabled = $2, nbf = $3, exp = $4, updated = $5, tags = $6, \
             release_policy = $7 WHERE name_key = $8 AND version = $9 AND name_key IN \
             (SELECT name_key FROM keys WHERE deleted_date IS NULL)",
        )
        .bind(c.key_ops)
        .bind(i64::from(rec.attributes.enabled))
        .bind(rec.attributes.not_before)
        .bind(rec.attributes.expires)
        .bind(rec.attributes.updated)
        .bind(c.tags)
        .bind(&rec.release_policy)
        .bind(key_of(&rec.name))
        .bind(rec.version.as_str())
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() != 1 {
            return Err(Error::KeyNotFound(format!(
                "A key with (name/id) {} was not found in this key vault.",
                rec.name
            )));
        }
        tx.commit().await.map_err(storage)
    }

    async fn soft_delete(
        &self,
        name: &KeyName,
        deletion: Deletion,
    ) -> Result<Option<KeyVersionRecord>, Error> {
        let nk = key_of(name);
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let done = sqlx::query(
            "UPDATE keys SET deleted_date = $1, scheduled_purge_date = $2 WHERE name_key = $3 AND deleted_date IS NULL",
        )
        .bind(deletion.deleted_date)
        .bind(deletion.scheduled_purge_date)
        .bind(&nk)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let sql = format!("{VERSION_SELECT} WHERE k.name_key = $1 AND v.seq = k.latest_seq");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&nk)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        let rec = version_from_row(&row)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(rec))
    }

    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error> {
        let sql = format!(
            "{VERSION_SELECT} WHERE k.name_key = $1 AND k.deleted_date IS NOT NULL AND v.seq = k.latest_seq"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key_of(name))
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        let Some(row) = row else { return Ok(None) };
        let latest = version_from_row(&row)?;
        Ok(deletion_of(&row)?.map(|deletion| DeletedKey { latest, deletion }))
    }

    async fn list_deleted(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeletedKey>, Error> {
        let sql = format!(
            "{VERSION_SELECT} WHERE k.deleted_date IS NOT NULL AND v.seq = k.latest_seq AND k.name_key > $1 \
             ORDER BY k.name_key LIMIT CAST($2 AS INTEGER)"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(after.unwrap_or("").to_ascii_lowercase())
            .bind(limit.to_string())
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let latest = version_from_row(row)?;
            if let Some(deletion) = deletion_of(row)? {
                out.push(DeletedKey { latest, deletion });
            }
        }
        Ok(out)
    }

    async fn recover(&self, name: &KeyName) -> Result<Option<KeyVersionRecord>, Error> {
        let nk = key_of(name);
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let done = sqlx::query(
            "UPDATE keys SET deleted_date = NULL, scheduled_purge_date = NULL WHERE name_key = $1 AND deleted_date IS NOT NULL",
        )
        .bind(&nk)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        let sql = format!("{VERSION_SELECT} WHERE k.name_key = $1 AND v.seq = k.latest_seq");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&nk)
            .fetch_one(&mut *tx)
            .await
            .map_err(storage)?;
        let rec = version_from_row(&row)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(rec))
    }

    async fn purge(&self, name: &KeyName) -> Result<bool, Error> {
        let nk = key_of(name);
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let exists = sqlx::query(
            "SELECT 1 AS one FROM keys WHERE name_key = $1 AND deleted_date IS NOT NULL",
        )
        .bind(&nk)
        .fetch_optional(&mut *tx)
        .await
        .map_err(storage)?
        .is_some();
        if !exists {
            return Ok(false);
        }
        sqlx::query("DELETE FROM key_versions WHERE name_key = $1")
            .bind(&nk)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        sqlx::query("DELETE FROM keys WHERE name_key = $1")
            .bind(&nk)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn principal_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<PrincipalRecord>, Error> {
        let row = sqlx::query("SELECT object_id, client_id, display_name, created FROM principals WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        let Some(r) = row else { return Ok(None) };
        let object_id: String = r.try_get("object_id").map_err(storage)?;
        let secret_hashes =
            sqlx::query("SELECT secret_hash FROM principal_secrets WHERE object_id = $1")
                .bind(&object_id)
                .fetch_all(&self.reader)
                .await
                .map_err(storage)?
                .iter()
                .map(|r| r.try_get::<Vec<u8>, _>("secret_hash").map_err(storage))
                .collect::<Result<Vec<_>, _>>()?;
        let certificates =
            sqlx::query("SELECT der FROM principal_certificates WHERE object_id = $1")
                .bind(&object_id)
                .fetch_all(&self.reader)
                .await
                .map_err(storage)?
                .iter()
                .map(|r| r.try_get::<Vec<u8>, _>("der").map_err(storage))
                .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(PrincipalRecord {
            object_id,
            client_id: r.try_get("client_id").map_err(storage)?,
            display_name: r.try_get("display_name").map_err(storage)?,
            secret_hashes,
            certificates,
            created: r.try_get("created").map_err(storage)?,
        }))
    }

    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let exists = sqlx::query("SELECT 1 AS one FROM principals WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?
            .is_some();
        if !exists {
            return Ok(false);
        }
        sqlx::query("INSERT INTO principal_certificates (object_id, der) VALUES ($1, $2)")
            .bind(object_id)
            .bind(der)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }
}
