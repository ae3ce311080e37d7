//! `IdentityStore` on SQL: principals, their secrets, certificates and networks, and groups with their members.
use async_trait::async_trait;
use coffer_core::Error;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::rows::storage;
use crate::sql::{Dialect, SqlStore, exists, write_tx};
use coffer_core::rbac::Network;
use coffer_core::store::{ClientSecretRecord, GroupRecord, IdentityStore, Kind, PrincipalRecord, Refusal};

impl SqlStore {
    /// Deletes the role assignments naming one principal or group (`$1`), in any case.
    fn assignments_of_principal_delete(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "DELETE FROM role_assignments WHERE principal_id = $1 COLLATE NOCASE",
            Dialect::Postgres => "DELETE FROM role_assignments WHERE lower(principal_id) = lower($1 COLLATE \"C\")",
        }
    }
}

#[async_trait]
impl IdentityStore for SqlStore {
    async fn principal_by_client_id(&self, client_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM principals WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        match row {
            Some(r) => Ok(Some(principal_from_row(&mut conn, &r).await?)),
            None => Ok(None),
        }
    }

    async fn add_certificate(&self, object_id: &str, der: &[u8]) -> Result<bool, Error> {
        write_tx!(self, |tx| {
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
            Ok(true)
        })
    }

    async fn principal(&self, object_id: &str) -> Result<Option<PrincipalRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM principals WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        match row {
            Some(r) => Ok(Some(principal_from_row(&mut conn, &r).await?)),
            None => Ok(None),
        }
    }

    async fn principal_networks(&self, object_id: &str) -> Result<Option<Vec<Network>>, Error> {
        let row = sqlx::query("SELECT allowed_networks FROM principals WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.map(|r| networks_from(&r.try_get::<String, _>("allowed_networks").map_err(storage)?))
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
            out.push(principal_from_row(&mut conn, r).await?);
        }
        Ok(out)
    }

    async fn create_principal(&self, principal: &PrincipalRecord) -> Result<(), Error> {
        write_tx!(self, |tx| {
            insert_principal(&mut tx, principal).await?;
            Ok(())
        })
    }

    async fn delete_principal(&self, object_id: &str) -> Result<bool, Error> {
        write_tx!(self, |tx| {
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
                // Assignments name principals in any case (ids compare case-insensitively everywhere).
                self.assignments_of_principal_delete(),
                "DELETE FROM principals WHERE object_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(object_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
            Ok(true)
        })
    }

    async fn add_secret(&self, object_id: &str, secret: &ClientSecretRecord) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            if !exists(
                &mut tx,
                "SELECT 1 AS one FROM principals WHERE object_id = $1",
                object_id,
            )
            .await?
            {
                return Ok(false);
            }
            insert_secret(&mut tx, object_id, secret).await?;
            Ok(true)
        })
    }

    async fn delete_secret(&self, object_id: &str, secret_id: &str) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            let done = sqlx::query("DELETE FROM principal_secrets WHERE object_id = $1 AND secret_id = $2")
                .bind(object_id)
                .bind(secret_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(done.rows_affected() > 0)
        })
    }

    async fn create_group(&self, group: &GroupRecord) -> Result<(), Error> {
        write_tx!(self, |tx| {
            if exists(
                &mut tx,
                "SELECT 1 AS one FROM groups WHERE object_id = $1",
                &group.object_id,
            )
            .await?
            {
                return Err(Refusal::Taken {
                    what: Kind::Group,
                    id: group.object_id.clone(),
                }
                .into());
            }
            sqlx::query("INSERT INTO groups (object_id, display_name, created) VALUES ($1, $2, $3)")
                .bind(&group.object_id)
                .bind(&group.display_name)
                .bind(group.created)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(())
        })
    }

    async fn group(&self, object_id: &str) -> Result<Option<GroupRecord>, Error> {
        let mut conn = self.reader.acquire().await.map_err(storage)?;
        let row = sqlx::query("SELECT * FROM groups WHERE object_id = $1")
            .bind(object_id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(storage)?;
        match row {
            Some(r) => Ok(Some(group_from_row(&mut conn, &r).await?)),
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
            out.push(group_from_row(&mut conn, r).await?);
        }
        Ok(out)
    }

    async fn delete_group(&self, object_id: &str) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            if !exists(&mut tx, "SELECT 1 AS one FROM groups WHERE object_id = $1", object_id).await? {
                return Ok(false);
            }
            for sql in [
                "DELETE FROM group_members WHERE group_id = $1",
                // Assignments name principals in any case (ids compare case-insensitively everywhere).
                self.assignments_of_principal_delete(),
                "DELETE FROM groups WHERE object_id = $1",
            ] {
                sqlx::query(sql)
                    .bind(object_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(storage)?;
            }
            Ok(true)
        })
    }

    async fn add_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            if !exists(&mut tx, "SELECT 1 AS one FROM groups WHERE object_id = $1", group_id).await? {
                return Ok(false);
            }
            sqlx::query("INSERT INTO group_members (group_id, member_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(group_id)
                .bind(member_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(true)
        })
    }

    async fn remove_group_member(&self, group_id: &str, member_id: &str) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            let done = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
                .bind(group_id)
                .bind(member_id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(done.rows_affected() > 0)
        })
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

    async fn set_principal_networks(&self, object_id: &str, networks: &[Network]) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE principals SET allowed_networks = $1 WHERE object_id = $2")
            .bind(networks_json(networks))
            .bind(object_id)
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected() == 1)
    }
}

pub(crate) fn networks_json(n: &[Network]) -> String {
    let list: Vec<String> = n.iter().map(ToString::to_string).collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn networks_from(text: &str) -> Result<Vec<Network>, Error> {
    let list: Vec<String> = serde_json::from_str(text).map_err(|_| Error::Corrupt("networks".into()))?;
    list.iter()
        .map(|n| Network::parse(n).map_err(|_| Error::Corrupt("network".into())))
        .collect()
}

/// Loads a principal's credentials onto a principal row.
pub(crate) async fn principal_from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<PrincipalRecord, Error> {
    let object_id: String = r.try_get("object_id").map_err(storage)?;
    let secrets = sqlx::query("SELECT secret_id, secret_hash, created FROM principal_secrets WHERE object_id = $1")
        .bind(&object_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?
        .iter()
        .map(|r| {
            Ok(ClientSecretRecord {
                id: r
                    .try_get::<Option<String>, _>("secret_id")
                    .map_err(storage)?
                    .unwrap_or_default(),
                hash: r.try_get("secret_hash").map_err(storage)?,
                created: r.try_get::<Option<i64>, _>("created").map_err(storage)?.unwrap_or(0),
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let certificates = sqlx::query("SELECT der FROM principal_certificates WHERE object_id = $1")
        .bind(&object_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?
        .iter()
        .map(|r| r.try_get::<Vec<u8>, _>("der").map_err(storage))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(PrincipalRecord {
        object_id,
        client_id: r.try_get("client_id").map_err(storage)?,
        display_name: r.try_get("display_name").map_err(storage)?,
        secrets,
        certificates,
        created: r.try_get("created").map_err(storage)?,
        allowed_networks: networks_from(&r.try_get::<String, _>("allowed_networks").map_err(storage)?)?,
    })
}

pub(crate) async fn insert_principal(conn: &mut AnyConnection, p: &PrincipalRecord) -> Result<(), Error> {
    let taken = sqlx::query("SELECT 1 AS one FROM principals WHERE object_id = $1 OR client_id = $2")
        .bind(&p.object_id)
        .bind(&p.client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?;
    if taken.is_some() {
        return Err(Refusal::Taken {
            what: Kind::Principal,
            id: p.object_id.clone(),
        }
        .into());
    }
    sqlx::query(
        "INSERT INTO principals (object_id, client_id, display_name, created, allowed_networks) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&p.object_id)
    .bind(&p.client_id)
    .bind(&p.display_name)
    .bind(p.created)
    .bind(networks_json(&p.allowed_networks))
    .execute(&mut *conn)
    .await
    .map_err(storage)?;
    for s in &p.secrets {
        insert_secret(conn, &p.object_id, s).await?;
    }
    for der in &p.certificates {
        sqlx::query("INSERT INTO principal_certificates (object_id, der) VALUES ($1, $2)")
            .bind(&p.object_id)
            .bind(der)
            .execute(&mut *conn)
            .await
            .map_err(storage)?;
    }
    Ok(())
}

pub(crate) async fn insert_secret(
    conn: &mut AnyConnection,
    object_id: &str,
    s: &ClientSecretRecord,
) -> Result<(), Error> {
    sqlx::query("INSERT INTO principal_secrets (object_id, secret_hash, secret_id, created) VALUES ($1, $2, $3, $4)")
        .bind(object_id)
        .bind(&s.hash)
        .bind(&s.id)
        .bind(s.created)
        .execute(&mut *conn)
        .await
        .map_err(storage)?;
    Ok(())
}

pub(crate) async fn group_members(conn: &mut AnyConnection, group_id: &str) -> Result<Vec<String>, Error> {
    sqlx::query("SELECT member_id FROM group_members WHERE group_id = $1 ORDER BY member_id")
        .bind(group_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?
        .iter()
        .map(|r| r.try_get::<String, _>("member_id").map_err(storage))
        .collect()
}

pub(crate) async fn group_from_row(conn: &mut AnyConnection, r: &AnyRow) -> Result<GroupRecord, Error> {
    let object_id: String = r.try_get("object_id").map_err(storage)?;
    let members = group_members(conn, &object_id).await?;
    Ok(GroupRecord {
        display_name: r.try_get("display_name").map_err(storage)?,
        created: r.try_get("created").map_err(storage)?,
        object_id,
        members,
    })
}
