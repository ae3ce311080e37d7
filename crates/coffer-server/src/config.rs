//! `coffer serve` settings: command-line flags over an optional `coffer.toml` with the same keys.
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

/// Everything `coffer serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Data directory (database, seal key, certificates, bootstrap credentials).
    pub data_dir: PathBuf,
    /// Host names for the generated certificate and for URLs the server returns (the first one is used in URLs).
    pub hostname: Vec<String>,
    /// PEM certificate chain to serve instead of the generated one.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Public base URL override (default `https://{first hostname or listen IP}:{port}`).
    pub public_url: Option<String>,
    /// Challenge resource / token audience override (default: the public URL).
    pub resource: Option<String>,
    /// Development instance (a later issue auto-activates the security domain for these).
    pub dev: bool,
    /// Instance name (default "coffer").
    pub instance_name: String,
    /// Soft-delete retention in days, fixed at creation (7..=90).
    pub soft_delete_retention_days: i64,
    /// Purge protection, fixed at creation.
    pub purge_protection: bool,
    /// Object ids made Managed HSM Administrators at `/` when the instance is created.
    pub administrators: Vec<String>,
    /// Lifetime of issued tokens in seconds.
    pub token_lifetime_secs: i64,
    /// Largest accepted request body in bytes.
    pub max_body_bytes: usize,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            data_dir: PathBuf::from("./coffer-data"),
            hostname: Vec::new(),
            tls_cert: None,
            tls_key: None,
            public_url: None,
            resource: None,
            dev: false,
            instance_name: "coffer".into(),
            soft_delete_retention_days: 90,
            purge_protection: false,
            administrators: Vec::new(),
            token_lifetime_secs: 3600,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl ServeConfig {
    /// Parses a `coffer.toml`.
    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// Checks values that flags and files can get wrong.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(7..=90).contains(&self.soft_delete_retention_days) {
            anyhow::bail!("soft-delete retention must be 7 to 90 days");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            anyhow::bail!("--tls-cert and --tls-key go together");
        }
        if self.token_lifetime_secs < 600 {
            anyhow::bail!("token lifetime must be at least 600 seconds");
        }
        Ok(())
    }

    /// The public base URL for a bound port.
    pub fn public_url_for(&self, port: u16) -> String {
        if let Some(u) = &self.public_url {
            return u.trim_end_matches('/').to_string();
        }
        let host = match self.hostname.first() {
            Some(h) => h.clone(),
            None if self.listen.ip().is_unspecified() => "localhost".to_string(),
            None => match self.listen.ip() {
                std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                ip @ std::net::IpAddr::V4(_) => ip.to_string(),
            },
        };
        if port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{port}")
        }
    }
}
