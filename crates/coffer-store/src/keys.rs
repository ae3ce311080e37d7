//! `KeyStore` on SQL: keys (case-insensitive names), their versions, soft-delete, recovery, purge and rotation
//! policies.
use async_trait::async_trait;
use coffer_core::Error;
use sqlx::Row;

use crate::rows::storage;
use crate::sql::{SqlStore, exists, key_of, write_tx};
use coffer_core::key::{DeletedKey, Deletion, KeyName, KeyOrigin, KeyVersion, KeyVersionRecord};
use coffer_core::store::{KeyStore, NewVersionMode, Refusal};
use sqlx::AnyConnection;

use crate::rows::{VERSION_SELECT, columns, version_from_row};
use crate::sql::deletion_of;

impl SqlStore {
    /// Key versions matching `clause` (constant SQL after [`VERSION_SELECT`]; every value a bind parameter).
    async fn versions_where(&self, clause: &str, binds: &[&str]) -> Result<Vec<KeyVersionRecord>, Error> {
        let sql = format!("{VERSION_SELECT} {clause}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = q.bind(*b);
        }
        let rows = q.fetch_all(&self.reader).await.map_err(storage)?;
        rows.iter().map(version_from_row).collect()
    }
}

#[async_trait]
impl KeyStore for SqlStore {
    async fn rotation_policy(&self, name: &KeyName) -> Result<Option<(String, i64, i64)>, Error> {
        let row = sqlx::query("SELECT policy, created, updated FROM rotation_policies WHERE name_key = $1")
            .bind(key_of(name))
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.map(|r| {
            Ok((
                r.try_get("policy").map_err(storage)?,
                r.try_get("created").map_err(storage)?,
                r.try_get("updated").map_err(storage)?,
            ))
        })
        .transpose()
    }

    async fn put_rotation_policy(&self, name: &KeyName, policy: &str, now: i64) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            let nk = key_of(name);
            if !exists(
                &mut tx,
                "SELECT 1 AS one FROM keys WHERE name_key = $1 AND deleted_date IS NULL",
                &nk,
            )
            .await?
            {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO rotation_policies (name_key, policy, created, updated) VALUES ($1, $2, $3, $3) \
                 ON CONFLICT (name_key) DO UPDATE SET policy = excluded.policy, updated = excluded.updated",
            )
            .bind(&nk)
            .bind(policy)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            Ok(true)
        })
    }

    async fn rotation_policies(&self) -> Result<Vec<(KeyName, String)>, Error> {
        let rows = sqlx::query(
            "SELECT k.name AS name, p.policy AS policy FROM rotation_policies p JOIN keys k ON k.name_key = p.name_key \
             WHERE k.deleted_date IS NULL ORDER BY k.name_key",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| {
                let n: String = r.try_get("name").map_err(storage)?;
                Ok((KeyName::parse(&n)?, r.try_get("policy").map_err(storage)?))
            })
            .collect()
    }

    async fn purge_due(&self, now: i64) -> Result<Vec<KeyName>, Error> {
        let rows = sqlx::query("SELECT name FROM keys WHERE deleted_date IS NOT NULL AND scheduled_purge_date <= $1")
            .bind(now)
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| KeyName::parse(&r.try_get::<String, _>("name").map_err(storage)?))
            .collect()
    }

    async fn version_count(&self, name: &KeyName) -> Result<i64, Error> {
        sqlx::query("SELECT COUNT(*) AS n FROM key_versions WHERE name_key = $1")
            .bind(key_of(name))
            .fetch_one(&self.reader)
            .await
            .map_err(storage)?
            .try_get("n")
            .map_err(storage)
    }

    async fn key_counts(&self) -> Result<Vec<(String, i64)>, Error> {
        let rows = sqlx::query(
            "SELECT v.kty AS kty, COUNT(*) AS n FROM keys k JOIN key_versions v ON v.seq = k.latest_seq \
             WHERE k.deleted_date IS NULL GROUP BY v.kty ORDER BY v.kty",
        )
        .fetch_all(&self.reader)
        .await
        .map_err(storage)?;
        rows.iter()
            .map(|r| Ok((r.try_get("kty").map_err(storage)?, r.try_get("n").map_err(storage)?)))
            .collect()
    }

    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error> {
        write_tx!(self, |tx| {
            let Some(first) = versions.first() else {
                return Err(Error::Corrupt("no versions to insert".into()));
            };
            let mut stored_name = first.name.clone();
            let name_key = key_of(&first.name);
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
                    return Err(Refusal::KeyDeleted {
                        name: first.name.to_string(),
                    }
                    .into());
                }
                (Some(_), NewVersionMode::RestoreWholeKey) => {
                    return Err(Refusal::KeyExists {
                        name: first.name.to_string(),
                    }
                    .into());
                }
                (Some(row), NewVersionMode::AddVersion) => {
                    let n: String = row.try_get("name").map_err(storage)?;
                    stored_name = KeyName::parse(&n)?;
                }
                (Some(row), NewVersionMode::MergeFromBackup) => {
                    // The key keeps its versions and its latest; it gains the backup's versions it lacks.
                    let n: String = row.try_get("name").map_err(storage)?;
                    stored_name = KeyName::parse(&n)?;
                    for rec in versions {
                        let has: Option<i64> =
                            sqlx::query_scalar("SELECT seq FROM key_versions WHERE name_key = $1 AND version = $2")
                                .bind(&name_key)
                                .bind(rec.version.as_str())
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(storage)?;
                        if has.is_none() {
                            insert_version_row(&mut tx, &name_key, rec).await?;
                        }
                    }
                    return Ok(stored_name);
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
                last_seq = insert_version_row(&mut tx, &name_key, rec).await?;
            }
            sqlx::query("UPDATE keys SET latest_seq = $1 WHERE name_key = $2")
                .bind(last_seq)
                .bind(&name_key)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(stored_name)
        })
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

    async fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyVersionRecord>, Error> {
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
        write_tx!(self, |tx| {
            let c = columns(rec)?;
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
                return Err(Refusal::KeyNotFound {
                    name: rec.name.to_string(),
                }
                .into());
            }
            Ok(())
        })
    }

    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error> {
        write_tx!(self, |tx| {
            let nk = key_of(name);
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
            Ok(Some(rec))
        })
    }

    async fn deleted_key(&self, name: &KeyName) -> Result<Option<DeletedKey>, Error> {
        let sql =
            format!("{VERSION_SELECT} WHERE k.name_key = $1 AND k.deleted_date IS NOT NULL AND v.seq = k.latest_seq");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(key_of(name))
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        let Some(row) = row else { return Ok(None) };
        let latest = version_from_row(&row)?;
        Ok(deletion_of(&row)?.map(|deletion| DeletedKey { latest, deletion }))
    }

    async fn list_deleted(&self, after: Option<&str>, limit: usize) -> Result<Vec<DeletedKey>, Error> {
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
        write_tx!(self, |tx| {
            let nk = key_of(name);
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
            Ok(Some(rec))
        })
    }

    async fn purge(&self, name: &KeyName) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            let nk = key_of(name);
            let exists = sqlx::query("SELECT 1 AS one FROM keys WHERE name_key = $1 AND deleted_date IS NOT NULL")
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
            sqlx::query("DELETE FROM rotation_policies WHERE name_key = $1")
                .bind(&nk)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            sqlx::query("DELETE FROM keys WHERE name_key = $1")
                .bind(&nk)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(true)
        })
    }
}

pub(crate) async fn insert_version_row(
    conn: &mut AnyConnection,
    name_key: &str,
    rec: &KeyVersionRecord,
) -> Result<i64, Error> {
    let c = columns(rec)?;
    let row = sqlx::query(
        "INSERT INTO key_versions (name_key, version, kty, size_bits, crv, pub_a, pub_b, key_ops, enabled, \
         nbf, exp, created, updated, exportable, tags, release_policy, sealed_material, origin) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) RETURNING seq",
    )
    .bind(name_key)
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
    .bind(rec.origin.map(KeyOrigin::name))
    .fetch_one(&mut *conn)
    .await
    .map_err(storage)?;
    row.try_get("seq").map_err(storage)
}
