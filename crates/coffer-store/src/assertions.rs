//! SQLite: the client-assertion ids already accepted (`assertion_jti`, migration 0009).
use coffer_core::Error;
use sqlx::SqlitePool;

use crate::rows::storage;

/// `Store::consume_assertion_jti`: prunes the expired ids and remembers this one, in one transaction; false when
/// it is already remembered.
pub(crate) async fn consume_jti(
    writer: &SqlitePool,
    client_id: &str,
    jti: &str,
    expires: i64,
    now: i64,
) -> Result<bool, Error> {
    let mut tx = writer.begin().await.map_err(storage)?;
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
    tx.commit().await.map_err(storage)?;
    Ok(done.rows_affected() == 1)
}
