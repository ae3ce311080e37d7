//! `RbacStore` on SQL: custom role definitions, role assignments, eligible assignments and activations.
use async_trait::async_trait;
use coffer_core::Error;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::rows::storage;
use crate::sql::{SqlStore, exists, write_tx};
use coffer_core::rbac::{Activation, EligibleAssignment, Permission, RoleAssignment, RoleDefinition, RoleType, Scope};
use coffer_core::store::{Kind, RbacStore, Refusal};
use serde::{Deserialize, Serialize};

use crate::identities as ids;
use crate::sql::Dialect;

#[async_trait]
impl RbacStore for SqlStore {
    async fn custom_roles(&self) -> Result<Vec<RoleDefinition>, Error> {
        let rows = sqlx::query("SELECT * FROM role_definitions ORDER BY id")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter().map(role_from_row).collect()
    }

    async fn custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        let row = sqlx::query("SELECT * FROM role_definitions WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.as_ref().map(role_from_row).transpose()
    }

    async fn put_custom_role(&self, role: &RoleDefinition, now: i64, limit: usize) -> Result<(), Error> {
        write_tx!(self, |tx| {
            let perms = permissions_json(&role.permissions)?;
            let scopes = serde_json::to_string(&role.assignable_scopes).map_err(|e| Error::Corrupt(e.to_string()))?;
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
                    return Err(Refusal::Limit {
                        what: Kind::CustomRole,
                        limit,
                    }
                    .into());
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
            Ok(())
        })
    }

    async fn delete_custom_role(&self, id: &str) -> Result<Option<RoleDefinition>, Error> {
        write_tx!(self, |tx| {
            let row = sqlx::query("SELECT * FROM role_definitions WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
            let Some(row) = row else { return Ok(None) };
            let def = role_from_row(&row)?;
            if exists(
                &mut tx,
                "SELECT 1 AS one FROM role_assignments WHERE role_definition_id = $1",
                id,
            )
            .await?
            {
                return Err(Refusal::RoleInUse { id: id.to_owned() }.into());
            }
            sqlx::query("DELETE FROM role_definitions WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(Some(def))
        })
    }

    async fn role_assignments(&self, principal_ids: Option<&[String]>) -> Result<Vec<RoleAssignment>, Error> {
        let Some(ids) = principal_ids else {
            let rows = sqlx::query("SELECT * FROM role_assignments ORDER BY created, name")
                .fetch_all(&self.reader)
                .await
                .map_err(storage)?;
            return rows.iter().map(assignment_from_row).collect();
        };
        // One indexed read per id (ids compare case-insensitively, as everywhere).
        // Both use the index `role_assignments_by_principal_nocase` (on `lower(principal_id)` in PostgreSQL).
        let sql = match self.dialect {
            Dialect::Sqlite => {
                "SELECT * FROM role_assignments WHERE principal_id = $1 COLLATE NOCASE ORDER BY created, name"
            }
            Dialect::Postgres => {
                "SELECT * FROM role_assignments WHERE lower(principal_id) = lower($1 COLLATE \"C\") \
                 ORDER BY created, name"
            }
        };
        let mut out = Vec::new();
        for id in ids {
            let rows = sqlx::query(sql)
                .bind(id)
                .fetch_all(&self.reader)
                .await
                .map_err(storage)?;
            for r in &rows {
                out.push(assignment_from_row(r)?);
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
        row.as_ref().map(assignment_from_row).transpose()
    }

    async fn create_role_assignment(&self, assignment: &RoleAssignment, custom_role: bool) -> Result<(), Error> {
        write_tx!(self, |tx| {
            if custom_role
                && !exists(
                    &mut tx,
                    "SELECT 1 AS one FROM role_definitions WHERE id = $1",
                    &assignment.role_definition_id,
                )
                .await?
            {
                return Err(Refusal::NoSuchRole {
                    id: assignment.role_definition_id.clone(),
                }
                .into());
            }
            insert_assignment(&mut tx, assignment).await?;
            Ok(())
        })
    }

    async fn delete_role_assignment(&self, name: &str) -> Result<Option<RoleAssignment>, Error> {
        write_tx!(self, |tx| {
            let row = sqlx::query("SELECT * FROM role_assignments WHERE name = $1")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(storage)?;
            let Some(row) = row else { return Ok(None) };
            let a = assignment_from_row(&row)?;
            sqlx::query("DELETE FROM role_assignments WHERE name = $1")
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            Ok(Some(a))
        })
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

    async fn create_eligible(&self, e: &EligibleAssignment) -> Result<(), Error> {
        write_tx!(self, |tx| {
            if exists(
                &mut tx,
                "SELECT 1 AS one FROM eligible_assignments WHERE name = $1",
                &e.name,
            )
            .await?
            {
                return Err(Refusal::Taken {
                    what: Kind::EligibleAssignment,
                    id: e.name.clone(),
                }
                .into());
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
            Ok(())
        })
    }

    async fn list_eligible(&self) -> Result<Vec<EligibleAssignment>, Error> {
        let rows = sqlx::query("SELECT * FROM eligible_assignments ORDER BY created, name")
            .fetch_all(&self.reader)
            .await
            .map_err(storage)?;
        rows.iter().map(eligible_from_row).collect()
    }

    async fn eligible(&self, name: &str) -> Result<Option<EligibleAssignment>, Error> {
        let row = sqlx::query("SELECT * FROM eligible_assignments WHERE name = $1")
            .bind(name.to_ascii_lowercase())
            .fetch_optional(&self.reader)
            .await
            .map_err(storage)?;
        row.as_ref().map(eligible_from_row).transpose()
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
        write_tx!(self, |tx| {
            insert_assignment(&mut tx, assignment).await?;
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
            Ok(())
        })
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
}

#[derive(Serialize, Deserialize)]
struct PermissionRow {
    actions: Vec<String>,
    not_actions: Vec<String>,
    data_actions: Vec<String>,
    not_data_actions: Vec<String>,
}

pub(crate) fn permissions_json(p: &[Permission]) -> Result<String, Error> {
    let rows: Vec<PermissionRow> = p
        .iter()
        .map(|p| PermissionRow {
            actions: p.actions.clone(),
            not_actions: p.not_actions.clone(),
            data_actions: p.data_actions.clone(),
            not_data_actions: p.not_data_actions.clone(),
        })
        .collect();
    serde_json::to_string(&rows).map_err(|e| Error::Corrupt(e.to_string()))
}

pub(crate) fn role_from_row(r: &AnyRow) -> Result<RoleDefinition, Error> {
    let perms: Vec<PermissionRow> = serde_json::from_str(&r.try_get::<String, _>("permissions").map_err(storage)?)
        .map_err(|_| Error::Corrupt("role permissions".into()))?;
    let scopes: Vec<String> = serde_json::from_str(&r.try_get::<String, _>("assignable_scopes").map_err(storage)?)
        .map_err(|_| Error::Corrupt("role scopes".into()))?;
    Ok(RoleDefinition {
        id: r.try_get("id").map_err(storage)?,
        role_name: r.try_get("role_name").map_err(storage)?,
        description: r.try_get("description").map_err(storage)?,
        role_type: RoleType::Custom,
        permissions: perms
            .into_iter()
            .map(|p| Permission {
                actions: p.actions,
                not_actions: p.not_actions,
                data_actions: p.data_actions,
                not_data_actions: p.not_data_actions,
            })
            .collect(),
        assignable_scopes: scopes,
    })
}

pub(crate) fn assignment_from_row(r: &AnyRow) -> Result<RoleAssignment, Error> {
    let scope: String = r.try_get("scope").map_err(storage)?;
    Ok(RoleAssignment {
        name: r.try_get("name").map_err(storage)?,
        scope: Scope::parse(&scope).map_err(|_| Error::Corrupt(format!("assignment scope {scope}")))?,
        role_definition_id: r.try_get("role_definition_id").map_err(storage)?,
        principal_id: r.try_get("principal_id").map_err(storage)?,
        created: r.try_get("created").map_err(storage)?,
        expires: r.try_get("expires").map_err(storage)?,
        allowed_networks: ids::networks_from(&r.try_get::<String, _>("allowed_networks").map_err(storage)?)?,
        last_used: r.try_get("last_used").map_err(storage)?,
        justification: r.try_get("justification").map_err(storage)?,
    })
}

pub(crate) fn eligible_from_row(r: &AnyRow) -> Result<EligibleAssignment, Error> {
    let scope: String = r.try_get("scope").map_err(storage)?;
    Ok(EligibleAssignment {
        name: r.try_get("name").map_err(storage)?,
        scope: Scope::parse(&scope).map_err(|_| Error::Corrupt(format!("eligible scope {scope}")))?,
        role_definition_id: r.try_get("role_definition_id").map_err(storage)?,
        principal_id: r.try_get("principal_id").map_err(storage)?,
        max_duration_secs: r.try_get("max_duration_secs").map_err(storage)?,
        created: r.try_get("created").map_err(storage)?,
    })
}

pub(crate) async fn insert_assignment(conn: &mut AnyConnection, a: &RoleAssignment) -> Result<(), Error> {
    let taken = sqlx::query("SELECT 1 AS one FROM role_assignments WHERE name = $1")
        .bind(&a.name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?;
    if taken.is_some() {
        return Err(Refusal::Taken {
            what: Kind::RoleAssignment,
            id: a.name.clone(),
        }
        .into());
    }
    sqlx::query(
        "INSERT INTO role_assignments (name, scope, role_definition_id, principal_id, created, expires, \
         allowed_networks, last_used, justification) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&a.name)
    .bind(a.scope.as_string())
    .bind(&a.role_definition_id)
    .bind(&a.principal_id)
    .bind(a.created)
    .bind(a.expires)
    .bind(ids::networks_json(&a.allowed_networks))
    .bind(a.last_used)
    .bind(&a.justification)
    .execute(&mut *conn)
    .await
    .map_err(storage)?;
    Ok(())
}
