//! The client-assertion id memory (`Store::consume_assertion_jti`) in a real SQLite file: an id is accepted once
//! per client, survives reopening the database, and ids whose assertions expired are pruned.
use coffer_core::store::prelude::*;
use coffer_store::SqlStore;

#[tokio::test]
async fn a_jti_is_accepted_once_across_reopening_and_expired_ones_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("coffer.db");
    let store = SqlStore::open_sqlite(&db).await.unwrap();
    assert!(
        store
            .consume_assertion_jti("client-a", "j1", 2_000, 1_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .consume_assertion_jti("client-a", "j1", 2_000, 1_001)
            .await
            .unwrap(),
        "replay"
    );
    // Per client: another client's equal jti is its own.
    assert!(
        store
            .consume_assertion_jti("client-b", "j1", 2_000, 1_001)
            .await
            .unwrap()
    );
    drop(store);

    let store = SqlStore::open_sqlite(&db).await.unwrap();
    assert!(
        !store
            .consume_assertion_jti("client-a", "j1", 2_000, 2_000)
            .await
            .unwrap(),
        "replay after reopening, up to the second it expires"
    );
    // After `expires` the next write prunes the row: the id is forgotten (the assertion itself no longer verifies
    // by then), and a live one is still remembered.
    assert!(
        store
            .consume_assertion_jti("client-a", "j2", 9_000, 2_001)
            .await
            .unwrap()
    );
    assert!(
        store
            .consume_assertion_jti("client-a", "j1", 9_000, 2_002)
            .await
            .unwrap(),
        "pruned"
    );
    assert!(
        store
            .consume_assertion_jti("client-b", "j1", 9_000, 2_002)
            .await
            .unwrap(),
        "pruned"
    );
    assert!(
        !store
            .consume_assertion_jti("client-a", "j2", 9_000, 2_003)
            .await
            .unwrap()
    );
}
