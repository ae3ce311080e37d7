//! A fresh PostgreSQL database per test, for the PostgreSQL adapter's run of the suite.
use std::str::FromStr;
use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};

/// The admin URL of a PostgreSQL server to test against, without a password (e.g.
/// `postgres://coffer@127.0.0.1:55432/postgres`): its user must be allowed to create databases.
pub const PG_URL_ENV: &str = "COFFER_TEST_PG_URL";
/// A file holding that user's password (a trailing newline is ignored).
pub const PG_PASSWORD_FILE_ENV: &str = "COFFER_TEST_PG_PASSWORD_FILE";

/// Creates a new, uniquely named, empty database on the server named by `COFFER_TEST_PG_URL` (connecting with the
/// password in `COFFER_TEST_PG_PASSWORD_FILE`) and returns its URL: the admin URL with the new database's name as
/// its path, and no password (the adapter reads the password from the file). `None` when neither variable is set,
/// so a run without PostgreSQL skips its tests; panics when only one is set or the database cannot be created (a
/// misconfigured run must fail, not skip). The databases are left behind for inspection; the script that starts
/// the server discards the whole cluster.
///
/// The PostgreSQL adapter's `crates/coffer-store/tests/conformance_postgres.rs` calls it once per test (a test
/// whose constructor gives `None` passes at once, saying on stderr that it was skipped):
///
/// ```ignore
/// use std::sync::Arc;
/// use coffer_core::store::Store;
///
/// async fn fresh_store() -> Option<Arc<dyn Store>> {
///     let url = coffer_testkit::store_conformance::fresh_postgres_url().await?;
///     let password_file = std::env::var_os(coffer_testkit::store_conformance::PG_PASSWORD_FILE_ENV)?;
///     let config = PostgresConfig::new(&url, &PasswordSource::File(password_file.into())).unwrap();
///     Some(Arc::new(SqlStore::connect_postgres(&config).await.unwrap()))
/// }
///
/// coffer_testkit::store_conformance_tests!(fresh_store);
/// ```
pub async fn fresh_postgres_url() -> Option<String> {
    let admin = std::env::var(PG_URL_ENV).ok();
    let password_file = std::env::var(PG_PASSWORD_FILE_ENV).ok();
    match (admin, password_file) {
        (None, None) => {
            assert!(
                std::env::var("COFFER_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "COFFER_REQUIRE_POSTGRES=1 but {PG_URL_ENV} is not set: run scripts/postgres start"
            );
            None
        }
        (Some(admin), Some(password_file)) => Some(
            create_database(&admin, &password_file)
                .await
                .unwrap_or_else(|e| panic!("creating a test database over {PG_URL_ENV}={admin}: {e}")),
        ),
        _ => panic!("set both {PG_URL_ENV} and {PG_PASSWORD_FILE_ENV}, or neither"),
    }
}

async fn create_database(admin: &str, password_file: &str) -> Result<String, Box<dyn std::error::Error>> {
    let password = std::fs::read_to_string(password_file)
        .map_err(|e| format!("reading {PG_PASSWORD_FILE_ENV}={password_file}: {e}"))?;
    let password = password.trim_end_matches(['\n', '\r']);
    let mut url = url::Url::parse(admin)?;
    if url.password().is_some() {
        return Err(format!("{PG_URL_ENV} must not hold a password: give it in {PG_PASSWORD_FILE_ENV}").into());
    }
    let options = PgConnectOptions::from_str(admin)?.password(password);
    let mut conn = PgConnection::connect_with(&options).await?;
    let db = unique_name();
    // `db` is made of [a-z0-9_] only; identifiers cannot be bind parameters.
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{db}\"")))
        .await?;
    conn.close().await?;
    url.set_path(&format!("/{db}"));
    // TLS verified against the test cluster's CA when it has one (scripts/postgres).
    if let Ok(ca) = std::env::var("COFFER_TEST_PG_CA") {
        url.set_query(Some(&format!("sslmode=verify-full&sslrootcert={ca}")));
    }
    Ok(url.to_string())
}

/// `coffer_conf_<pid>_<n>_<ns>`: distinct within a process (`n`) and across processes and runs (pid, clock).
fn unique_name() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("coffer_conf_{}_{n}_{ns}", std::process::id())
}
