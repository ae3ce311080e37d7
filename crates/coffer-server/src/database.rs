//! Where the instance's state lives (`[database]` in coffer.toml, `--database-url`): SQLite in the data directory
//! (the embedded default) or PostgreSQL. The data directory is used either way (seal key, TLS certificate, audit
//! files); with PostgreSQL it holds no database.
use std::path::PathBuf;

use anyhow::Context;
use coffer_store::{PasswordSource, PostgresConfig, SqlStore};
use serde::Deserialize;

use crate::datadir::DataDir;

/// What `coffer store migrate` renames the SQLite file to once its state is in PostgreSQL.
pub fn moved_marker(dir: &DataDir) -> PathBuf {
    dir.root.join("coffer.db.migrated-to-postgres")
}

/// `coffer store migrate`: copies the instance of the data directory `dir` (SQLite; the server stopped) into the
/// empty PostgreSQL database of `to`, then renames the SQLite file (see [`moved_marker`]) so that a server started
/// without `--database-url` refuses instead of running on the old state. Returns the rows copied per table.
pub async fn migrate_sqlite_to_postgres(
    dir: &DataDir,
    to: &DatabaseConfig,
) -> anyhow::Result<Vec<(&'static str, i64)>> {
    anyhow::ensure!(to.url.is_some(), "give the PostgreSQL database to migrate to (--to)");
    anyhow::ensure!(
        dir.database().exists(),
        "{} holds no SQLite database",
        dir.root.display()
    );
    let from = SqlStore::open_sqlite(&dir.database()).await?;
    let dest = to.open(dir).await?;
    let counts = coffer_store::copy::sqlite_to_postgres(&from, &dest).await?;
    from.close().await;
    dest.close().await;
    std::fs::rename(dir.database(), moved_marker(dir))
        .with_context(|| format!("renaming {}", dir.database().display()))?;
    for suffix in ["-wal", "-shm"] {
        let side = dir.root.join(format!("coffer.db{suffix}"));
        if side.exists() {
            std::fs::remove_file(&side).with_context(|| format!("removing {}", side.display()))?;
        }
    }
    Ok(counts)
}

/// `[database]`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `postgres://user@host:port/dbname?sslmode=verify-full&sslrootcert=…` (no password in it). Unset: SQLite in
    /// the data directory.
    pub url: Option<String>,
    /// A file whose first line is the database password (keep it mode 0600).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the database password.
    pub password_env: Option<String>,
    /// Connections per node (default 16).
    pub max_connections: Option<u32>,
}

impl DatabaseConfig {
    /// Checks the combination of settings.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !(self.password_file.is_some() && self.password_env.is_some()),
            "[database]: give password_file or password_env, not both"
        );
        anyhow::ensure!(
            self.url.is_some() || (self.password_file.is_none() && self.password_env.is_none()),
            "[database]: a password needs a url"
        );
        anyhow::ensure!(
            self.max_connections != Some(0),
            "[database] max_connections must be at least 1"
        );
        Ok(())
    }

    /// A description without credentials, for logs.
    pub fn describe(&self, dir: &DataDir) -> String {
        match &self.url {
            None => format!("sqlite {}", dir.database().display()),
            Some(u) => PostgresConfig::new(u, &PasswordSource::None)
                .map(|c| c.redacted_url())
                .unwrap_or_else(|_| "postgres (invalid url)".into()),
        }
    }

    /// Opens the store (applying migrations).
    pub async fn open(&self, dir: &DataDir) -> anyhow::Result<SqlStore> {
        self.validate()?;
        let Some(url) = &self.url else {
            anyhow::ensure!(
                dir.database().exists() || !moved_marker(dir).exists(),
                "the state of {} was moved to PostgreSQL by `coffer store migrate` ({} is the old SQLite file): \
                 start with --database-url (or [database] url)",
                dir.root.display(),
                moved_marker(dir).display()
            );
            return Ok(SqlStore::open_sqlite(&dir.database()).await?);
        };
        let source = match (&self.password_file, &self.password_env) {
            (Some(f), _) => PasswordSource::File(f.clone()),
            (None, Some(v)) => PasswordSource::Env(v.clone()),
            (None, None) => PasswordSource::None,
        };
        let mut config = PostgresConfig::new(url, &source)?;
        if let Some(n) = self.max_connections {
            config.max_connections = n;
        }
        let described = config.redacted_url();
        SqlStore::connect_postgres(&config)
            .await
            .with_context(|| format!("connecting to {described}"))
    }
}
