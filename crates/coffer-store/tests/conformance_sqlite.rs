//! The store conformance suite (coffer-testkit's `store_conformance`) against SQLite: each test gets a new database
//! file in a temporary directory of its own, removed when the test ends.
#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions may panic")]
use std::sync::Arc;

use coffer_core::store::Store;
use coffer_store::SqlStore;

async fn fresh_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqlStore::open_sqlite(&dir.path().join("coffer.db"))
        .await
        .expect("open SQLite");
    (Arc::new(store), dir)
}

coffer_testkit::store_conformance_tests!(fresh_store);
