//! `BackupStore` on SQL: the content of a full backup, and a full restore in one transaction.
use async_trait::async_trait;
use coffer_core::Error;
use sqlx::Row;

use crate::rows::storage;
use crate::sql::{Dialect, SqlStore, exists, key_of, write_tx};
use coffer_core::rbac::RoleAssignment;
use coffer_core::store::{BackupStore, GroupRecord, KeyDump, PrincipalRecord, RestoreSet};
use sqlx::AnyConnection;

use crate::identities as ids;
use crate::rbac as rb;
use crate::rows::{VERSION_SELECT, version_from_row};
use crate::sql::deletion_of;

#[async_trait]
impl BackupStore for SqlStore {
    async fn dump_keys(&self) -> Result<Vec<KeyDump>, Error> {
        // One read transaction: a consistent snapshot while the data plane keeps serving. A sqlx transaction, so
        // that an error or a dropped future rolls it back instead of returning a connection with an open snapshot.
        let mut conn = self.reader.begin().await.map_err(storage)?;
        if self.dialect == Dialect::Postgres {
            // PostgreSQL's default (read committed) takes a new snapshot per statement; a backup needs one.
            sqlx::Executor::execute(&mut *conn, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await
                .map_err(storage)?;
        }
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
        write_tx!(self, |tx| {
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
                .bind(rb::permissions_json(&role.permissions)?)
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
                    sqlx::query(
                        "INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    )
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
                    rb::insert_assignment(&mut tx, a).await?;
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
                        crate::policy::insert_policy_row(&mut tx, a).await?;
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
            Ok(())
        })
    }
}

async fn restore_key(conn: &mut AnyConnection, nk: &str, k: &KeyDump) -> Result<(), Error> {
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
                crate::keys::insert_version_row(conn, nk, rec).await?;
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
            last = crate::keys::insert_version_row(conn, nk, rec).await?;
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
