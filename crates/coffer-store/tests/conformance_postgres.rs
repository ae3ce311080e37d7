//! The store conformance suite (coffer-testkit's `store_conformance`) against PostgreSQL: each test gets a new
//! database of the cluster of `scripts/postgres start` (COFFER_TEST_PG_URL, COFFER_TEST_PG_PASSWORD_FILE), over TLS
//! verified against COFFER_TEST_PG_CA. Without the cluster every test passes at once saying it was skipped, unless
//! COFFER_REQUIRE_POSTGRES=1 (as in `./scripts/test`), which makes them fail.
#![expect(clippy::expect_used, reason = "test helpers outside #[test] functions may panic")]
use std::sync::Arc;

use coffer_core::store::Store;
use coffer_store::{PasswordSource, PostgresConfig, SqlStore};
use coffer_testkit::store_conformance::{PG_PASSWORD_FILE_ENV, fresh_postgres_url};

async fn fresh_store() -> Option<Arc<dyn Store>> {
    let url = fresh_postgres_url().await?;
    let password_file = std::env::var_os(PG_PASSWORD_FILE_ENV).expect("password file");
    let mut config = PostgresConfig::new(&url, &PasswordSource::File(password_file.into())).expect("config");
    // 67 tests run at once, each with a database of its own: a few connections each is enough.
    config.max_connections = 4;
    Some(Arc::new(SqlStore::connect_postgres(&config).await.expect("connect")))
}

coffer_testkit::store_conformance_tests!(fresh_store);
