//! `InstanceStore` on SQL: the instance row (lifecycle, sealed domain secret), settings and instance facts.
use async_trait::async_trait;
use coffer_core::Error;
use sqlx::Row;

use crate::rows::storage;
use crate::sql::{SqlStore, write_tx};
use coffer_core::rbac::RoleAssignment;
use coffer_core::store::{InstanceRecord, InstanceStore, LifecycleState, PrincipalRecord, Refusal};

use crate::identities as ids;
use crate::rbac as rb;

#[async_trait]
impl InstanceStore for SqlStore {
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
        write_tx!(self, |tx| {
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
                rb::insert_assignment(&mut tx, a).await?;
            }
            Ok(())
        })
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

    async fn enable_purge_protection(&self) -> Result<(), Error> {
        sqlx::query("UPDATE instance SET purge_protection = 1 WHERE id = 1")
            .execute(&self.writer)
            .await
            .map_err(storage)?;
        Ok(())
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
            return Err(Refusal::NotInRecovery.into());
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
}
