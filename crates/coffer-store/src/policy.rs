//! `PolicyStore` on SQL: key policy assignments (names case-insensitive).
use async_trait::async_trait;
use coffer_core::Error;
use sqlx::Row;

use crate::rows::storage;
use crate::sql::{SqlStore, write_tx};
use coffer_core::policy::{Effect, PolicyAssignment};
use coffer_core::store::{Kind, PolicyStore, Refusal};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;

#[async_trait]
impl PolicyStore for SqlStore {
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
        write_tx!(self, |tx| {
            let nk = a.name.to_ascii_lowercase();
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
                    let params =
                        serde_json::to_string(&stored.parameters).map_err(|e| Error::Corrupt(e.to_string()))?;
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
                        return Err(Refusal::Limit {
                            what: Kind::PolicyAssignment,
                            limit,
                        }
                        .into());
                    }
                    insert_policy_row(&mut tx, a).await?;
                    (a.clone(), true)
                }
            };
            Ok(stored)
        })
    }

    async fn delete_policy_assignment(&self, name: &str) -> Result<bool, Error> {
        let done = sqlx::query("DELETE FROM policy_assignments WHERE name_key = $1")
            .bind(name.to_ascii_lowercase())
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(done.rows_affected() > 0)
    }
}

fn policy_from_row(r: &AnyRow) -> Result<PolicyAssignment, Error> {
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

pub(crate) async fn insert_policy_row(conn: &mut AnyConnection, a: &PolicyAssignment) -> Result<(), Error> {
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
