//! What only the PostgreSQL adapter has to prove, against the real cluster of `scripts/postgres start`
//! (COFFER_TEST_PG_URL, COFFER_TEST_PG_PASSWORD_FILE, COFFER_TEST_PG_CA): nodes starting at once migrate exactly once;
//! a schema from a newer Coffer is refused with a clear message; connections the server drops are replaced; TLS
//! with certificate verification works, and a wrong CA is refused; the password never shows in an error.
//!
//! Without the cluster the tests pass without doing anything, unless COFFER_REQUIRE_POSTGRES=1 (as in
//! `./scripts/test`), which makes them fail.
#![expect(clippy::unwrap_used, reason = "test helpers outside #[test] functions may panic")]
use std::sync::Arc;

use coffer_core::store::prelude::*;
use coffer_store::{PasswordSource, PostgresConfig, SqlStore};
use sqlx::{AnyPool, Executor, Row};

struct Cluster {
    admin_url: url::Url,
    password_file: std::path::PathBuf,
    ca: String,
}

fn cluster() -> Option<Cluster> {
    let Ok(url) = std::env::var("COFFER_TEST_PG_URL") else {
        assert!(
            std::env::var("COFFER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "COFFER_REQUIRE_POSTGRES=1 but COFFER_TEST_PG_URL is not set: run scripts/postgres start"
        );
        return None;
    };
    Some(Cluster {
        admin_url: url::Url::parse(&url).unwrap(),
        password_file: std::env::var("COFFER_TEST_PG_PASSWORD_FILE").unwrap().into(),
        ca: std::env::var("COFFER_TEST_PG_CA").unwrap(),
    })
}

impl Cluster {
    fn password(&self) -> String {
        std::fs::read_to_string(&self.password_file)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_owned()
    }

    async fn admin(&self) -> AnyPool {
        sqlx::any::install_default_drivers();
        let mut u = self.admin_url.clone();
        u.set_password(Some(&self.password())).unwrap();
        AnyPool::connect(u.as_str()).await.unwrap()
    }

    /// A new empty database; its URL (no password in it) with TLS verified against the cluster's CA.
    async fn fresh(&self) -> String {
        let name = format!("adapter_{}", uuid_like());
        self.admin()
            .await
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .unwrap();
        let mut u = self.admin_url.clone();
        u.set_path(&name);
        u.set_query(Some(&format!("sslmode=verify-full&sslrootcert={}", self.ca)));
        u.to_string()
    }

    fn config(&self, url: &str) -> PostgresConfig {
        PostgresConfig::new(url, &PasswordSource::File(self.password_file.clone())).unwrap()
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{nanos:x}_{}", std::process::id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_starting_at_once_migrate_exactly_once() {
    let Some(c) = cluster() else { return };
    let url = c.fresh().await;
    let c = Arc::new(c);
    let mut starts = Vec::new();
    for _ in 0..6 {
        let (c, url) = (Arc::clone(&c), url.clone());
        starts.push(tokio::spawn(async move {
            SqlStore::connect_postgres(&c.config(&url)).await
        }));
    }
    let mut stores = Vec::new();
    for s in starts {
        stores.push(s.await.unwrap().unwrap());
    }
    let rows = sqlx::query("SELECT version, COUNT(*) AS n FROM schema_migrations GROUP BY version ORDER BY version")
        .fetch_all(&stores[0].pool_for_tests())
        .await
        .unwrap();
    let versions: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.try_get("version").unwrap(), r.try_get("n").unwrap()))
        .collect();
    assert_eq!(
        versions.iter().map(|(v, _)| *v).max(),
        Some(coffer_store::migrate::latest_version())
    );
    assert!(versions.iter().all(|(_, n)| *n == 1), "{versions:?}");
    // Every node works on the one schema.
    for s in &stores {
        assert!(s.instance().await.unwrap().is_none());
        s.put_setting("k", "v", 1).await.unwrap();
    }
}

#[tokio::test]
async fn a_schema_from_a_newer_coffer_is_refused() {
    let Some(c) = cluster() else { return };
    let url = c.fresh().await;
    let store = SqlStore::connect_postgres(&c.config(&url)).await.unwrap();
    sqlx::query("INSERT INTO schema_migrations (version, applied) VALUES (9999, 0)")
        .execute(&store.pool_for_tests())
        .await
        .unwrap();
    store.close().await;
    let e = SqlStore::connect_postgres(&c.config(&url)).await.unwrap_err();
    let text = e.to_string();
    assert!(text.contains("[9999]") && text.contains("newer Coffer"), "{text}");
}

#[tokio::test]
async fn connections_the_server_drops_are_replaced() {
    let Some(c) = cluster() else { return };
    let url = c.fresh().await;
    let store = SqlStore::connect_postgres(&c.config(&url)).await.unwrap();
    store.put_meta("before", "1", 1).await.unwrap();
    // What a restart or failover does to the pool: every connection of this database is closed by the server.
    let db = url::Url::parse(&url).unwrap().path().trim_start_matches('/').to_owned();
    let killed: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1) t",
    )
    .bind(&db)
    .fetch_one(&c.admin().await)
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert!(killed >= 1, "no connection of the store was open");
    store.put_meta("after", "2", 2).await.unwrap();
    assert_eq!(store.meta("before").await.unwrap().as_deref(), Some("1"));
    assert_eq!(store.meta("after").await.unwrap().as_deref(), Some("2"));
}

#[tokio::test]
async fn tls_is_verified_and_the_password_never_shows() {
    let Some(c) = cluster() else { return };
    let url = c.fresh().await;
    // The server's certificate checked against another CA: refused.
    let dir = tempfile::tempdir().unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, unrelated_ca()).unwrap();
    let wrong = url.replace(&c.ca, other_ca.to_str().unwrap());
    assert!(SqlStore::connect_postgres(&c.config(&wrong)).await.is_err());
    // A wrong password: refused, and the error does not carry it.
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "not-the-password-xyzzy\n").unwrap();
    let e = SqlStore::connect_postgres(&PostgresConfig::new(&url, &PasswordSource::File(pw)).unwrap())
        .await
        .unwrap_err();
    let text = format!("{e} {e:?}");
    assert!(!text.contains("xyzzy"), "{text}");
    // The right CA and password: connected over TLS.
    let store = SqlStore::connect_postgres(&c.config(&url)).await.unwrap();
    let ssl: bool = sqlx::query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&store.pool_for_tests())
        .await
        .unwrap()
        .try_get("ssl")
        .unwrap();
    assert!(ssl);
}

/// A self-signed certificate that did not sign the cluster's server certificate.
fn unrelated_ca() -> String {
    rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .cert
        .pem()
}
