//! How Coffer reaches PostgreSQL: a `postgres://` URL without a password, and the password from a file or an
//! environment variable (never on the command line, where `ps` shows it, and never in a log line). TLS is chosen in
//! the URL the libpq way: `?sslmode=verify-full&sslrootcert=/etc/coffer/db-ca.pem` (also `require`, `verify-ca`,
//! and `sslcert`/`sslkey` for a client certificate).
use coffer_core::Error;
use coffer_crypto::SecretBytes;

/// Where the database password comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// No password (for example a client certificate, or `trust` on a private socket).
    None,
    /// The first line of this file.
    File(std::path::PathBuf),
    /// This environment variable.
    Env(String),
}

/// A PostgreSQL connection configuration.
pub struct PostgresConfig {
    url: url::Url,
    password: Option<SecretBytes>,
    /// Pool size per node.
    pub max_connections: u32,
}

impl std::fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.redacted_url())
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_connections", &self.max_connections)
            .finish()
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadParameter(msg.into())
}

impl PostgresConfig {
    /// Parses `url` (`postgres://` or `postgresql://`, no password in it) and reads the password from `source`.
    pub fn new(url: &str, source: &PasswordSource) -> Result<Self, Error> {
        let url = url::Url::parse(url).map_err(|e| bad(format!("database url: {e}")))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("database url: the scheme must be postgres:// (or postgresql://)"));
        }
        if url.password().is_some() || url.query_pairs().any(|(k, _)| k.eq_ignore_ascii_case("password")) {
            return Err(bad(
                "database url: do not put the password in the URL; give a password file or environment variable",
            ));
        }
        let password = match source {
            PasswordSource::None => None,
            PasswordSource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| bad(format!("database password file {}: {e}", path.display())))?;
                let first = text.lines().next().unwrap_or("").to_owned();
                let mut text = text;
                zeroize::Zeroize::zeroize(&mut text);
                Some(SecretBytes::new(first.into_bytes()))
            }
            PasswordSource::Env(var) => Some(SecretBytes::new(
                std::env::var(var)
                    .map_err(|_| bad(format!("database password: environment variable {var} is not set")))?
                    .into_bytes(),
            )),
        };
        Ok(Self {
            url,
            password,
            max_connections: 16,
        })
    }

    /// The URL without credentials, for logs and messages (no password can be in it: [`PostgresConfig::new`]
    /// refuses one, in the user part or as a `password` parameter).
    pub fn redacted_url(&self) -> String {
        let mut u = self.url.clone();
        let _ = u.set_password(None);
        u.to_string()
    }

    /// The URL the driver connects with (the password percent-encoded into it), as a secret.
    pub(crate) fn url_with_password(&self) -> SecretUrl {
        self.url_with_password_and(&[])
    }

    /// As [`PostgresConfig::url_with_password`], with these query parameters set (replacing the URL's own).
    pub(crate) fn url_with_password_and(&self, params: &[(&str, &str)]) -> SecretUrl {
        let mut u = self.url.clone();
        if !params.is_empty() {
            let kept: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| !params.iter().any(|(p, _)| k == p))
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut q = u.query_pairs_mut();
            q.clear();
            for (k, v) in &kept {
                q.append_pair(k, v);
            }
            for (k, v) in params {
                q.append_pair(k, v);
            }
        }
        if let Some(p) = &self.password {
            let p = String::from_utf8_lossy(p.expose_secret());
            let _ = u.set_password(Some(&p));
        }
        SecretUrl(SecretBytes::new(u.to_string().into_bytes()))
    }
}

/// A connection URL holding a password: zeroized when dropped, never printed.
pub(crate) struct SecretUrl(SecretBytes);

impl std::fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretUrl(<redacted>)")
    }
}

impl SecretUrl {
    pub(crate) fn expose(&self) -> &str {
        std::str::from_utf8(self.0.expose_secret()).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_the_url_is_refused_and_never_printed() {
        let e = PostgresConfig::new("postgres://coffer:hunter2@db/coffer", &PasswordSource::None).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = PostgresConfig::new(
            "postgres://coffer@db/coffer?sslmode=require&Password=hunter2",
            &PasswordSource::None,
        )
        .unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = PostgresConfig::new("mysql://db/coffer", &PasswordSource::None).unwrap_err();
        assert!(e.to_string().contains("postgres://"), "{e}");
    }

    #[test]
    fn the_password_file_goes_into_the_connection_url_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cr3t/:@x\nignored\n").unwrap();
        let c = PostgresConfig::new(
            "postgres://coffer@127.0.0.1:5432/coffer?sslmode=require",
            &PasswordSource::File(file),
        )
        .unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(!c.redacted_url().contains("s3cr3t"));
        let url = c.url_with_password();
        let parsed = url::Url::parse(url.expose()).unwrap();
        assert_eq!(parsed.password(), Some("s3cr3t%2F%3A%40x"));
        assert_eq!(parsed.query(), Some("sslmode=require"));
    }

    #[test]
    fn a_missing_environment_variable_is_named() {
        let e = PostgresConfig::new(
            "postgres://coffer@db/coffer",
            &PasswordSource::Env("COFFER_TEST_SURELY_UNSET_VAR".into()),
        )
        .unwrap_err();
        assert!(e.to_string().contains("COFFER_TEST_SURELY_UNSET_VAR"), "{e}");
    }
}
