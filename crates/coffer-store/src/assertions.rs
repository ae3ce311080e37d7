//! `AssertionStore` on SQL: the client-assertion ids already accepted (`assertion_jti`, migration 0009).
use async_trait::async_trait;
use coffer_core::Error;
use coffer_core::store::AssertionStore;

use crate::rows::storage;
use crate::sql::{SqlStore, write_tx};

#[async_trait]
impl AssertionStore for SqlStore {
    /// Prunes the expired ids and remembers this one, in one transaction; false when it is already remembered.
    async fn consume_assertion_jti(&self, client_id: &str, jti: &str, expires: i64, now: i64) -> Result<bool, Error> {
        write_tx!(self, |tx| {
            sqlx::query("DELETE FROM assertion_jti WHERE expires < $1")
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(storage)?;
            let done = sqlx::query(
                "INSERT INTO assertion_jti (client_id, jti, expires) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, jti) DO NOTHING",
            )
            .bind(client_id)
            .bind(jti)
            .bind(expires)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
            Ok(done.rows_affected() == 1)
        })
    }
}
