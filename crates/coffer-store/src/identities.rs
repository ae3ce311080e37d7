//! SQLite: principals, secrets, certificates, groups, custom roles and role assignments.
use coffer_core::Error;
use coffer_core::rbac::{EligibleAssignment, Network, Permission, RoleAssignment, RoleDefinition, RoleType, Scope};
use coffer_core::store::{ClientSecretRecord, GroupRecord, PrincipalRecord};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqliteConnection};

use crate::rows::storage;

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

pub(crate) fn role_from_row(r: &SqliteRow) -> Result<RoleDefinition, Error> {
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

pub(crate) fn assignment_from_row(r: &SqliteRow) -> Result<RoleAssignment, Error> {
    let scope: String = r.try_get("scope").map_err(storage)?;
    Ok(RoleAssignment {
        name: r.try_get("name").map_err(storage)?,
        scope: Scope::parse(&scope).map_err(|_| Error::Corrupt(format!("assignment scope {scope}")))?,
        role_definition_id: r.try_get("role_definition_id").map_err(storage)?,
        principal_id: r.try_get("principal_id").map_err(storage)?,
        created: r.try_get("created").map_err(storage)?,
        expires: r.try_get("expires").map_err(storage)?,
        allowed_networks: networks_from(&r.try_get::<String, _>("allowed_networks").map_err(storage)?)?,
        last_used: r.try_get("last_used").map_err(storage)?,
        justification: r.try_get("justification").map_err(storage)?,
    })
}

pub(crate) fn eligible_from_row(r: &SqliteRow) -> Result<EligibleAssignment, Error> {
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

/// Loads a principal's credentials onto a principal row.
pub(crate) async fn principal_from_row(conn: &mut SqliteConnection, r: &SqliteRow) -> Result<PrincipalRecord, Error> {
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

pub(crate) async fn insert_principal(conn: &mut SqliteConnection, p: &PrincipalRecord) -> Result<(), Error> {
    let taken = sqlx::query("SELECT 1 AS one FROM principals WHERE object_id = $1 OR client_id = $2")
        .bind(&p.object_id)
        .bind(&p.client_id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?;
    if taken.is_some() {
        return Err(Error::Conflict(
            "A principal with this object id or client id exists.".into(),
        ));
    }
    sqlx::query("INSERT INTO principals (object_id, client_id, display_name, created) VALUES ($1, $2, $3, $4)")
        .bind(&p.object_id)
        .bind(&p.client_id)
        .bind(&p.display_name)
        .bind(p.created)
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
    conn: &mut SqliteConnection,
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

pub(crate) async fn insert_assignment(conn: &mut SqliteConnection, a: &RoleAssignment) -> Result<(), Error> {
    let taken = sqlx::query("SELECT 1 AS one FROM role_assignments WHERE name = $1")
        .bind(&a.name)
        .fetch_optional(&mut *conn)
        .await
        .map_err(storage)?;
    if taken.is_some() {
        return Err(Error::Conflict(format!(
            "The role assignment '{}' already exists.",
            a.name
        )));
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
    .bind(networks_json(&a.allowed_networks))
    .bind(a.last_used)
    .bind(&a.justification)
    .execute(&mut *conn)
    .await
    .map_err(storage)?;
    Ok(())
}

pub(crate) async fn group_members(conn: &mut SqliteConnection, group_id: &str) -> Result<Vec<String>, Error> {
    sqlx::query("SELECT member_id FROM group_members WHERE group_id = $1 ORDER BY member_id")
        .bind(group_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(storage)?
        .iter()
        .map(|r| r.try_get::<String, _>("member_id").map_err(storage))
        .collect()
}

pub(crate) async fn group_from_row(conn: &mut SqliteConnection, r: &SqliteRow) -> Result<GroupRecord, Error> {
    let object_id: String = r.try_get("object_id").map_err(storage)?;
    let members = group_members(conn, &object_id).await?;
    Ok(GroupRecord {
        display_name: r.try_get("display_name").map_err(storage)?,
        created: r.try_get("created").map_err(storage)?,
        object_id,
        members,
    })
}
