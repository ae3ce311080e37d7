//! The SQLite adapter: one database file in the data directory, WAL journal, `synchronous = FULL`, foreign keys
//! on. Writes go through a single-connection pool so write transactions never contend; reads use a second pool.
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::Error;
use coffer_core::key::{DeletedKey, Deletion, KeyName, KeyOrigin, KeyVersion, KeyVersionRecord};
use coffer_core::policy::{Effect, PolicyAssignment};
use coffer_core::rbac::{Activation, EligibleAssignment, Network, RoleAssignment, RoleDefinition};
use coffer_core::store::{
    ClientSecretRecord, GroupRecord, InstanceRecord, KeyDump, LifecycleState, NewVersionMode, PrincipalRecord,
    RestoreSet, Store,
};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

use crate::identities as ids;
use crate::rows::{columns, storage, version_from_row};

const VERSION_SELECT: &str = "SELECT k.name AS name, k.deleted_date AS deleted_date, \
    k.scheduled_purge_date AS scheduled_purge_date, v.version, v.kty, v.size_bits, v.crv, v.pub_a, v.pub_b, \
    v.key_ops, v.enabled, v.nbf, v.exp, v.created, v.updated, v.exportable, v.tags, v.release_policy, \
    v.sealed_material, v.origin FROM key_versions v JOIN keys k ON k.name_key = v.name_key";

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

    async fn versions_where(&self, clause: &str, binds: &[&str]) -> Result<Vec<KeyVersionRecord>, Error> {
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
            state: LifecycleState::parse(&s("state")?).ok_or_else(|| Error::Corrupt("instance state".into()))?,
            sealed_exchange_key: r.try_get("sealed_exchange_key").map_err(storage)?,
            exchange_cert: r.try_get("exchange_cert").map_err(storage)?,
            activated: r.try_get("activated").map_err(storage)?,
        }))
    }

    async fn create_instance(
        &self,
        ins: &InstanceRecord,
        p: &PrincipalRecord,
        assignments: &[RoleAssignment],
    ) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        sqlx::query(
            "INSERT INTO instance (id, instance_id, instance_name, tenant_id, created, dev, sealed_domain_secret, \
             sealed_token_key, soft_delete_retention_days, purge_protection, bootstrap_object_id, state, \
             sealed_exchange_key, exchange_cert, activated) \
             VALUES (1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
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
        .bind(ins.state.name())
        .bind(&ins.sealed_exchange_key)
        .bind(&ins.exchange_cert)
        .bind(ins.activated)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        ids::insert_principal(&mut tx, p).await?;
        for a in assignments {
            ids::insert_assignment(&mut tx, a).await?;
        }
        tx.commit().await.map_err(storage)
    }

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
        let nk = key_of(name);
        let mut tx = self.writer.begin().await.map_err(storage)?;
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
        tx.commit().await.map_err(storage)?;
        Ok(true)
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

    async fn settings(&self) -> Result<Vec<(String, String)>, Error> {
        let rows = sqlx::query("SELECT name, value FROM settings ORDER BY name")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("name").map_err(storage)?,
                    r.try_get("value").map_err(storage)?,
                ))
            })
            .collect()
    }

    async fn put_setting(&self, name: &str, value: &str, now: i64) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO settings (name, value, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn meta(&self, name: &str) -> Result<Option<String>, Error> {
        let row = sqlx::query("SELECT value FROM meta WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.map(|r| r.try_get("value").map_err(storage)).transpose()
    }

    async fn put_meta(&self, name: &str, value: &str, now: i64) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO meta (name, value, updated) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(storage)?;
        Ok(())
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

    async fn enable_purge_protection(&self) -> Result<(), Error> {
        sqlx::query("UPDATE instance SET purge_protection = 1 WHERE id = 1")
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error> {
        // One read transaction: a consistent snapshot while the data plane keeps serving. A sqlx transaction, so
        // that an error or a dropped future rolls it back instead of returning a connection with an open snapshot.
        let mut conn = self.reader.begin().await.map_err(storage)?;
        let result = async {
            let sql = format!("{VERSION_SELECT} ORDER BY k.name_key, v.seq");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *conn)
                .await
                .map_err(storage)?;
            let policies = sqlx::query("SELECT name_key, policy, created, updated FROM rotation_policies")
                .fetch_all(&mut *conn)
                .await
                .map_err(storage)?;
            let mut out: Vec<KeyDump> = Vec::new();
            for row in &rows {
                let rec = version_from_row(row)?;
                let deletion = deletion_of(row)?;
                let same = out
                    .last()
                    .and_then(|d| d.versions.first())
                    .is_some_and(|f| f.name.as_str().eq_ignore_ascii_case(rec.name.as_str()));
                if same {
                    if let Some(d) = out.last_mut() {
                        d.versions.push(rec);
                    }
                } else {
                    let nk = key_of(&rec.name);
                    let policy = policies
                        .iter()
                        .find(|p| p.try_get::<String, _>("name_key").is_ok_and(|n| n == nk))
                        .map(|p| -> Result<(String, i64, i64), Error> {
                            Ok((
                                p.try_get("policy").map_err(storage)?,
                                p.try_get("created").map_err(storage)?,
                                p.try_get("updated").map_err(storage)?,
                            ))
                        })
                        .transpose()?;
                    out.push(KeyDump {
                        versions: vec![rec],
                        deletion,
                        rotation_policy: policy,
                    });
                }
            }
            Ok(out)
        }
        .await;
        let _ = conn.rollback().await;
        result
    }

    async fn restore_full(&self, set: &RestoreSet) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let mut in_backup = std::collections::HashSet::new();
        for k in &set.keys {
            let Some(first) = k.versions.first() else { continue };
            let nk = key_of(&first.name);
            in_backup.insert(nk.clone());
            restore_key(&mut tx, &nk, k).await?;
        }
        // Live keys the backup lacks were created after it: soft-deleted, so they stay recoverable (and purge
        // protection holds), never erased.
        let live: Vec<String> = sqlx::query_scalar("SELECT name_key FROM keys WHERE deleted_date IS NULL")
            .fetch_all(&mut *tx)
            .await
            .map_err(storage)?;
        for nk in live.iter().filter(|nk| !in_backup.contains(*nk)) {
            sqlx::query("UPDATE keys SET deleted_date = $1, scheduled_purge_date = $2 WHERE name_key = $3")
                .bind(set.deletion_for_missing.deleted_date)
                .bind(set.deletion_for_missing.scheduled_purge_date)
                .bind(nk)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        for role in &set.custom_roles {
            sqlx::query(
                "INSERT INTO role_definitions (id, role_name, description, permissions, assignable_scopes, created, \
                 updated) VALUES ($1, $2, $3, $4, $5, 0, 0) ON CONFLICT (id) DO NOTHING",
            )
            .bind(&role.id)
            .bind(&role.role_name)
            .bind(&role.description)
            .bind(ids::permissions_json(&role.permissions)?)
            .bind(serde_json::to_string(&role.assignable_scopes).map_err(|e| Error::Corrupt(e.to_string()))?)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        let identities: &[PrincipalRecord] = if set.identities { &set.principals } else { &[] };
        for p in identities {
            if !exists(
                &mut tx,
                "SELECT 1 AS one FROM principals WHERE object_id = $1",
                &p.object_id,
            )
            .await?
                && !exists(
                    &mut tx,
                    "SELECT 1 AS one FROM principals WHERE client_id = $1",
                    &p.client_id,
                )
                .await?
            {
                ids::insert_principal(&mut tx, p).await?;
            }
        }
        let groups: &[GroupRecord] = if set.identities { &set.groups } else { &[] };
        for g in groups {
            if !exists(
                &mut tx,
                "SELECT 1 AS one FROM groups WHERE object_id = $1",
                &g.object_id,
            )
            .await?
            {
                sqlx::query("INSERT INTO groups (object_id, display_name, created) VALUES ($1, $2, $3)")
                    .bind(&g.object_id)
                    .bind(&g.display_name)
                    .bind(g.created)
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
            for m in &g.members {
                sqlx::query("INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(&g.object_id)
                    .bind(m)
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
        }
        let assignments: &[RoleAssignment] = if set.identities { &set.assignments } else { &[] };
        for a in assignments {
            if !exists(
                &mut tx,
                "SELECT 1 AS one FROM role_assignments WHERE name = $1",
                &a.name,
            )
            .await?
            {
                ids::insert_assignment(&mut tx, a).await?;
            }
        }
        if let Some(policies) = &set.policies {
            for a in policies {
                if !exists(
                    &mut tx,
                    "SELECT 1 AS one FROM policy_assignments WHERE name_key = $1",
                    &a.name.to_ascii_lowercase(),
                )
                .await?
                {
                    insert_policy_row(&mut tx, a).await?;
                }
            }
        }
        for (name, value) in &set.settings {
            sqlx::query(
                "INSERT INTO settings (name, value, updated) VALUES ($1, $2, 0) \
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            )
            .bind(name)
            .bind(value)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn record_download(&self, now: i64) -> Result<(), Error> {
        sqlx::query(
            "UPDATE instance SET sd_downloads = sd_downloads + 1, \
             activated = COALESCE(activated, $1), state = CASE WHEN state = 'provisioned' THEN 'active' ELSE state END \
             WHERE id = 1",
        )
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(storage)?;
        Ok(())
    }

    async fn install_domain_secret(&self, sealed_ds: &[u8], sealed_token_key: &[u8], now: i64) -> Result<(), Error> {
        let done = sqlx::query(
            "UPDATE instance SET sealed_domain_secret = $1, sealed_token_key = $2, state = 'active', activated = $3, \
             sealed_exchange_key = NULL WHERE id = 1 AND state = 'recovery'",
        )
        .bind(sealed_ds)
        .bind(sealed_token_key)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(storage)?;
        if done.rows_affected() != 1 {
            return Err(Error::Conflict("The HSM is not in recovery mode.".into()));
        }
        Ok(())
    }

    async fn reseal_domain_secret(&self, sealed_ds: &[u8]) -> Result<(), Error> {
        sqlx::query("UPDATE instance SET sealed_domain_secret = $1 WHERE id = 1")
            .bind(sealed_ds)
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn insert_versions(&self, versions: &[KeyVersionRecord], mode: NewVersionMode) -> Result<KeyName, Error> {
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
                tx.commit().await.map_err(storage)?;
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

    async fn soft_delete(&self, name: &KeyName, deletion: Deletion) -> Result<Option<KeyVersionRecord>, Error> {
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
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM principals WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        match row {
            Some(r) => Ok(Some(ids::principal_from_row(&mut conn, &r).await?)),
            None => Ok(None),
        }
    }

    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if !exists(
            &mut tx,
            "SELECT 1 AS one FROM principals WHERE object_id = $1",
            object_id,
        )
        .await?
        {
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

    async fn principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM principals WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        match row {
            Some(r) => Ok(Some(ids::principal_from_row(&mut conn, &r).await?)),
            None => Ok(None),
        }
    }

    async fn principal_networks(&self, object_id: &str) -> Result<Option<Vec<Network>>, Error> {
        let row = sqlx::query("SELECT allowed_networks FROM principals WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.map(|r| ids::networks_from(&r.try_get::<String, _>("allowed_networks").map_err(storage)?))
            .transpose()
    }

    async fn list_principals(&self) -> Result<Vec<PrincipalRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let rows = sqlx::query("SELECT * FROM principals ORDER BY object_id")
            .fetch_all(&mut *conn)
            .await
            .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(ids::principal_from_row(&mut conn, r).await?);
        }
        Ok(out)
    }

    async fn create_principal(&self, principal: &PrincipalRecord) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        ids::insert_principal(&mut tx, principal).await?;
        tx.commit().await.map_err(storage)
    }

    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if !exists(
            &mut tx,
            "SELECT 1 AS one FROM principals WHERE object_id = $1",
            object_id,
        )
        .await?
        {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM principal_secrets WHERE object_id = $1",
            "DELETE FROM principal_certificates WHERE object_id = $1",
            "DELETE FROM group_members WHERE member_id = $1",
            "DELETE FROM role_assignments WHERE principal_id = $1",
            "DELETE FROM principals WHERE object_id = $1",
        ] {
            sqlx::query(sql)
                .bind(object_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if !exists(
            &mut tx,
            "SELECT 1 AS one FROM principals WHERE object_id = $1",
            object_id,
        )
        .await?
        {
            return Ok(false);
        }
        ids::insert_secret(&mut tx, object_id, secret).await?;
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let done = sqlx::query("DELETE FROM principal_secrets WHERE object_id = $1 AND secret_id = $2")
            .bind(object_id)
            .bind(secret_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if exists(
            &mut tx,
            "SELECT 1 AS one FROM groups WHERE object_id = $1",
            &group.object_id,
        )
        .await?
        {
            return Err(Error::Conflict("A group with this object id exists.".into()));
        }
        sqlx::query("INSERT INTO groups (object_id, display_name, created) VALUES ($1, $2, $3)")
            .bind(&group.object_id)
            .bind(&group.display_name)
            .bind(group.created)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM groups WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        match row {
            Some(r) => Ok(Some(ids::group_from_row(&mut conn, &r).await?)),
            None => Ok(None),
        }
    }

    async fn list_groups(&self) -> Result<Vec<GroupRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let rows = sqlx::query("SELECT * FROM groups ORDER BY object_id")
            .fetch_all(&mut *conn)
            .await
            .map_err(storage)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(ids::group_from_row(&mut conn, r).await?);
        }
        Ok(out)
    }

    async fn delete_group(&self, object_id: &str) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if !exists(&mut tx, "SELECT 1 AS one FROM groups WHERE object_id = $1", object_id).await? {
            return Ok(false);
        }
        for sql in [
            "DELETE FROM group_members WHERE group_id = $1",
            "DELETE FROM role_assignments WHERE principal_id = $1",
            "DELETE FROM groups WHERE object_id = $1",
        ] {
            sqlx::query(sql)
                .bind(object_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if !exists(&mut tx, "SELECT 1 AS one FROM groups WHERE object_id = $1", group_id).await? {
            return Ok(false);
        }
        sqlx::query("INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .bind(group_id)
            .bind(member_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(true)
    }

    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
            .bind(group_id)
            .bind(member_id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(done.rows_affected() > 0)
    }

    async fn groups_of(&self, member_id: &str) -> Result<Vec<String>, Error> {
        sqlx::query("SELECT group_id FROM group_members WHERE member_id = $1 ORDER BY group_id")
            .bind(member_id)
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?
            .iter()
            .map(|r| r.try_get::<String, _>("group_id").map_err(storage))
            .collect()
    }

    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error> {
        let rows = sqlx::query("SELECT * FROM role_definitions ORDER BY id")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter().map(ids::role_from_row).collect()
    }

    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        let row = sqlx::query("SELECT * FROM role_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.as_ref().map(ids::role_from_row).transpose()
    }

    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error> {
        let perms = ids::permissions_json(&role.permissions)?;
        let scopes = serde_json::to_string(&role.assignable_scopes).map_err(|e| Error::Corrupt(e.to_string()))?;
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let existing = exists(&mut tx, "SELECT 1 AS one FROM role_definitions WHERE id = $1", &role.id).await?;
        if existing {
            sqlx::query(
                "UPDATE role_definitions SET role_name = $1, description = $2, permissions = $3, \
                 assignable_scopes = $4, updated = $5 WHERE id = $6",
            )
            .bind(&role.role_name)
            .bind(&role.description)
            .bind(&perms)
            .bind(&scopes)
            .bind(now)
            .bind(&role.id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        } else {
            let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM role_definitions")
                .fetch_one(&mut *tx)
                .await
                .map_err(storage)?
                .try_get("n")
                .map_err(storage)?;
            if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
                return Err(Error::BadParameter(format!(
                    "An HSM may hold at most {limit} custom role definitions."
                )));
            }
            sqlx::query(
                "INSERT INTO role_definitions (id, role_name, description, permissions, assignable_scopes, created, \
                 updated) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&role.id)
            .bind(&role.role_name)
            .bind(&role.description)
            .bind(&perms)
            .bind(&scopes)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM role_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?;
        let Some(row) = row else { return Ok(None) };
        let def = ids::role_from_row(&row)?;
        if exists(
            &mut tx,
            "SELECT 1 AS one FROM role_assignments WHERE role_definition_id = $1",
            id,
        )
        .await?
        {
            return Err(Error::Conflict(format!(
                "The role definition '{id}' is referenced by role assignments; delete them first."
            )));
        }
        sqlx::query("DELETE FROM role_definitions WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(def))
    }

    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error> {
        let Some(ids) = principal_ids else {
            let rows = sqlx::query("SELECT * FROM role_assignments ORDER BY created, name")
                .fetch_all(&self.reader)
                .await
                .map_err(storage)?;
            return rows.iter().map(ids::assignment_from_row).collect();
        };
        // One indexed read per id (ids compare case-insensitively, as everywhere).
        let mut out = Vec::new();
        for id in ids {
            let rows = sqlx::query(
                "SELECT * FROM role_assignments WHERE principal_id = $1 COLLATE NOCASE ORDER BY created, name",
            )
            .bind(id)
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
            for r in &rows {
                out.push(ids::assignment_from_row(r)?);
            }
        }
        out.sort_by(|a, b| (a.created, &a.name).cmp(&(b.created, &b.name)));
        out.dedup_by(|a, b| a.name == b.name);
        Ok(out)
    }

    async fn role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        let row = sqlx::query("SELECT * FROM role_assignments WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.as_ref().map(ids::assignment_from_row).transpose()
    }

    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if custom_role
            && !exists(
                &mut tx,
                "SELECT 1 AS one FROM role_definitions WHERE id = $1",
                &assignment.role_definition_id,
            )
            .await?
        {
            return Err(Error::BadParameter(format!(
                "The role definition '{}' does not exist.",
                assignment.role_definition_id
            )));
        }
        ids::insert_assignment(&mut tx, assignment).await?;
        tx.commit().await.map_err(storage)
    }

    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM role_assignments WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?;
        let Some(row) = row else { return Ok(None) };
        let a = ids::assignment_from_row(&row)?;
        sqlx::query("DELETE FROM role_assignments WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(Some(a))
    }

    async fn touch_role_assignment(&self, name: &str, now: i64) -> Result<(), Error> {
        sqlx::query("UPDATE role_assignments SET last_used = $1 WHERE name = $2")
            .bind(now)
            .bind(name)
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(())
    }

    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE principals SET allowed_networks = $1 WHERE object_id = $2")
            .bind(ids::networks_json(networks))
            .bind(object_id)
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_eligible(&self, e: &EligibleAssignment) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        if exists(
            &mut tx,
            "SELECT 1 AS one FROM eligible_assignments WHERE name = $1",
            &e.name,
        )
        .await?
        {
            return Err(Error::Conflict(format!(
                "The eligible assignment '{}' already exists.",
                e.name
            )));
        }
        sqlx::query(
            "INSERT INTO eligible_assignments (name, scope, role_definition_id, principal_id, max_duration_secs, \
             created) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&e.name)
        .bind(e.scope.as_string())
        .bind(&e.role_definition_id)
        .bind(&e.principal_id)
        .bind(e.max_duration_secs)
        .bind(e.created)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn list_eligible(&self) -> Result<Vec<EligibleAssignment>, Error> {
        let rows = sqlx::query("SELECT * FROM eligible_assignments ORDER BY created, name")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter().map(ids::eligible_from_row).collect()
    }

    async fn eligible(&self, name: &str) -> Result<Option<EligibleAssignment>, Error> {
        let row = sqlx::query("SELECT * FROM eligible_assignments WHERE name = $1")
            .bind(name.to_ascii_lowercase())
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.as_ref().map(ids::eligible_from_row).transpose()
    }

    async fn delete_eligible(&self, name: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM eligible_assignments WHERE name = $1")
            .bind(name.to_ascii_lowercase())
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected() > 0)
    }

    async fn activate(&self, a: &Activation, assignment: &RoleAssignment) -> Result<(), Error> {
        let mut tx = self.writer.begin().await.map_err(storage)?;
        ids::insert_assignment(&mut tx, assignment).await?;
        sqlx::query(
            "INSERT INTO activations (id, eligible_name, principal_id, assignment_name, justification, activated, \
             expires) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(&a.eligible_name)
        .bind(&a.principal_id)
        .bind(&a.assignment_name)
        .bind(&a.justification)
        .bind(a.activated)
        .bind(a.expires)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)
    }

    async fn activations(&self) -> Result<Vec<Activation>, Error> {
        let rows = sqlx::query("SELECT * FROM activations ORDER BY activated DESC")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter()
            .map(|r| {
                Ok(Activation {
                    id: r.try_get("id").map_err(storage)?,
                    eligible_name: r.try_get("eligible_name").map_err(storage)?,
                    principal_id: r.try_get("principal_id").map_err(storage)?,
                    assignment_name: r.try_get("assignment_name").map_err(storage)?,
                    justification: r.try_get("justification").map_err(storage)?,
                    activated: r.try_get("activated").map_err(storage)?,
                    expires: r.try_get("expires").map_err(storage)?,
                })
            })
            .collect()
    }

    async fn policy_assignments(&self) -> Result<Vec<PolicyAssignment>, Error> {
        let rows = sqlx::query("SELECT * FROM policy_assignments ORDER BY name_key")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter().map(policy_from_row).collect()
    }

    async fn policy_assignment(&self, name: &str) -> Result<Option<PolicyAssignment>, Error> {
        let row = sqlx::query("SELECT * FROM policy_assignments WHERE name_key = $1")
            .bind(name.to_ascii_lowercase())
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.as_ref().map(policy_from_row).transpose()
    }

    async fn put_policy_assignment(
        &self,
        a: &PolicyAssignment,
        limit: usize,
    ) -> Result<(PolicyAssignment, bool), Error> {
        let nk = a.name.to_ascii_lowercase();
        let mut tx = self.writer.begin().await.map_err(storage)?;
        let existing = sqlx::query("SELECT * FROM policy_assignments WHERE name_key = $1")
            .bind(&nk)
            .fetch_optional(&mut *tx)
            .await
            .map_err(storage)?
            .as_ref()
            .map(policy_from_row)
            .transpose()?;
        let stored = match existing {
            Some(old) => {
                let stored = PolicyAssignment {
                    name: old.name,
                    created: old.created,
                    ..a.clone()
                };
                let params = serde_json::to_string(&stored.parameters).map_err(|e| Error::Corrupt(e.to_string()))?;
                sqlx::query(
                    "UPDATE policy_assignments SET definition_id = $1, effect = $2, parameters = $3, updated = $4 \
                     WHERE name_key = $5",
                )
                .bind(&stored.definition_id)
                .bind(stored.effect.name())
                .bind(params)
                .bind(stored.updated)
                .bind(&nk)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
                (stored, false)
            }
            None => {
                let count: i64 = sqlx::query("SELECT COUNT(*) AS n FROM policy_assignments")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(storage)?
                    .try_get("n")
                    .map_err(storage)?;
                if usize::try_from(count).unwrap_or(usize::MAX) >= limit {
                    return Err(Error::BadParameter(format!(
                        "An HSM may hold at most {limit} policy assignments."
                    )));
                }
                insert_policy_row(&mut tx, a).await?;
                (a.clone(), true)
            }
        };
        tx.commit().await.map_err(storage)?;
        Ok(stored)
    }

    async fn delete_policy_assignment(&self, name: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM policy_assignments WHERE name_key = $1")
            .bind(name.to_ascii_lowercase())
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected() > 0)
    }

    async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires: i64, now: i64) -> Result<bool, Error> {
        crate::assertions::consume_jti(&self.writer, client_id, jti, expires, now).await
    }
}

fn policy_from_row(r: &SqliteRow) -> Result<PolicyAssignment, Error> {
    let effect: String = r.try_get("effect").map_err(storage)?;
    let params: String = r.try_get("parameters").map_err(storage)?;
    Ok(PolicyAssignment {
        name: r.try_get("name").map_err(storage)?,
        definition_id: r.try_get("definition_id").map_err(storage)?,
        effect: Effect::parse(&effect).map_err(|_| Error::Corrupt("policy assignment effect".into()))?,
        parameters: serde_json::from_str(&params).map_err(|_| Error::Corrupt("policy assignment parameters".into()))?,
        created: r.try_get("created").map_err(storage)?,
        updated: r.try_get("updated").map_err(storage)?,
    })
}

async fn insert_policy_row(conn: &mut sqlx::SqliteConnection, a: &PolicyAssignment) -> Result<(), Error> {
    let params = serde_json::to_string(&a.parameters).map_err(|e| Error::Corrupt(e.to_string()))?;
    sqlx::query(
        "INSERT INTO policy_assignments (name_key, name, definition_id, effect, parameters, created, updated) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.name.to_ascii_lowercase())
    .bind(&a.name)
    .bind(&a.definition_id)
    .bind(a.effect.name())
    .bind(params)
    .bind(a.created)
    .bind(a.updated)
    .execute(&mut *conn)
    .await
    .map_err(storage)?;
    Ok(())
}

/// Inserts one key version row; returns its sequence number.
/// Restores one key of a full backup: an absent key is inserted as the backup has it; a present one (live or
/// deleted) keeps its state, attributes and latest version and only gains the versions it lacks.
async fn restore_key(conn: &mut sqlx::SqliteConnection, nk: &str, k: &KeyDump) -> Result<(), Error> {
    let Some(first) = k.versions.first() else {
        return Ok(());
    };
    let present = exists(conn, "SELECT 1 AS one FROM keys WHERE name_key = $1", nk).await?;
    if present {
        for rec in &k.versions {
            let has: Option<i64> =
                sqlx::query_scalar("SELECT seq FROM key_versions WHERE name_key = $1 AND version = $2")
                    .bind(nk)
                    .bind(rec.version.as_str())
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(storage)?;
            if has.is_none() {
                insert_version_row(conn, nk, rec).await?;
            }
        }
    } else {
        sqlx::query(
            "INSERT INTO keys (name_key, name, latest_seq, deleted_date, scheduled_purge_date) VALUES ($1, $2, 0, $3, $4)",
        )
        .bind(nk)
        .bind(first.name.as_str())
        .bind(k.deletion.map(|d| d.deleted_date))
        .bind(k.deletion.map(|d| d.scheduled_purge_date))
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
        let mut last = 0i64;
        for rec in &k.versions {
            last = insert_version_row(conn, nk, rec).await?;
        }
        sqlx::query("UPDATE keys SET latest_seq = $1 WHERE name_key = $2")
            .bind(last)
            .bind(nk)
            .execute(&mut *conn)
            .await
            .map_err(storage)?;
    }
    if let Some((policy, created, updated)) = &k.rotation_policy {
        sqlx::query(
            "INSERT INTO rotation_policies (name_key, policy, created, updated) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name_key) DO NOTHING",
        )
        .bind(nk)
        .bind(policy)
        .bind(created)
        .bind(updated)
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
    }
    Ok(())
}

async fn insert_version_row(
    conn: &mut sqlx::SqliteConnection,
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

/// Whether a one-parameter existence query finds a row.
async fn exists(conn: &mut sqlx::SqliteConnection, sql: &'static str, param: &str) -> Result<bool, Error> {
    Ok(sqlx::query(sql)
        .bind(param)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?
        .is_some())
}
