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
    /// Trusted external OIDC issuers (`[[issuers]]` tables in coffer.toml).
    pub issuers: Vec<IssuerConfig>,
    /// Trusted attestation authorities for Secure Key Release (`[[attestation_authorities]]`, docs/KEY-RELEASE.md).
    pub attestation_authorities: Vec<AttestationAuthorityConfig>,
    /// Separation-of-duties check on new role assignments: `off`, `warn` (default) or `deny`.
    pub separation_of_duties: String,
    /// Create a new instance in recovery mode (waiting for a security-domain upload).
    pub recovery: bool,
    /// Azure's behaviour: an Administrator alone may download the security domain of an active instance again (to
    /// new certificates). Off by default: a new download then needs proof from a quorum of the current officers
    /// (docs/SECURITY-DOMAIN.md). Only here, never through the API; the posture report flags it.
    pub security_domain_redownload_without_quorum: bool,
    /// How the domain secret is sealed at rest (`[seal]` in coffer.toml).
    pub seal: SealConfig,
    /// Seconds between runs of the background jobs (purge of expired deleted keys, scheduled rotation).
    pub jobs_interval_secs: u64,
    /// Audit log sinks and failure policy (`[audit]` in coffer.toml).
    pub audit: AuditConfig,
    /// Prometheus metrics listener (`[metrics]` in coffer.toml).
    pub metrics: MetricsConfig,
    /// TLS policy: minimum version, client certificates, certificate reload (`[tls]` in coffer.toml).
    pub tls: TlsPolicyConfig,
    /// Network ACLs at start (`[network]` in coffer.toml); changeable at run time through `/coffer/v1/network-acls`.
    pub network: NetworkConfig,
    /// Request throttling (`[throttling]` in coffer.toml).
    pub throttling: ThrottlingConfig,
    /// Where full backups may be written and read from (`[backup]` in coffer.toml).
    pub backup: BackupConfig,
    /// Connection timeouts and caps (`[connections]` in coffer.toml).
    pub connections: ConnectionsConfig,
    /// Where the state lives (`[database]` in coffer.toml): SQLite in the data directory unless a PostgreSQL url
    /// is given.
    pub database: crate::database::DatabaseConfig,
}

/// Connection timeouts and caps (docs/NETWORK.md, `crate::connections`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsConfig {
    /// HTTP/1.1: a request head must be complete this long after its first byte.
    pub header_read_timeout_secs: u64,
    /// A request body must be complete this long after its head (else 408 and the connection is closed).
    pub body_read_timeout_secs: u64,
    /// A connection with no request in progress (after the TLS handshake, between requests; HTTP/1.1 and HTTP/2)
    /// is closed after this long.
    pub idle_timeout_secs: u64,
    /// Connections open at once, per listener.
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64); trusted proxies are exempt.
    pub max_connections_per_address: usize,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            idle_timeout_secs: 120,
            max_connections: 4096,
            max_connections_per_address: 256,
        }
    }
}

impl ConnectionsConfig {
    /// The limits of a listener.
    pub fn limits(&self) -> crate::connections::Limits {
        crate::connections::Limits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(self.idle_timeout_secs),
            max_connections: self.max_connections,
            max_connections_per_address: self.max_connections_per_address,
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if [
            self.header_read_timeout_secs,
            self.body_read_timeout_secs,
            self.idle_timeout_secs,
        ]
        .contains(&0)
            || self.max_connections == 0
            || self.max_connections_per_address == 0
        {
            anyhow::bail!("[connections]: every timeout and cap must be at least 1");
        }
        Ok(())
    }
}

/// The destinations full backups and restores may use (`coffer_core::outbound`): the caller names a target, the
/// configuration decides whether it may be used.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Blob endpoints as URL prefixes: `https://host[:port][/path]`, a leading `*.` in the host standing for one
    /// DNS label. Default: `https://*.blob.core.windows.net` (every storage account of the Azure public cloud).
    pub blob_endpoints: Vec<String>,
    /// Directories `file://` targets must be inside (absolute). Default: none (`file://` refused).
    pub file_roots: Vec<PathBuf>,
    /// Private, loopback or link-local networks (CIDR) a blob host may be or resolve to. Default: none.
    pub private_networks: Vec<String>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            blob_endpoints: coffer_core::outbound::DEFAULT_BLOB_ENDPOINTS
                .iter()
                .map(|e| (*e).to_string())
                .collect(),
            file_roots: Vec::new(),
            private_networks: Vec::new(),
        }
    }
}

impl BackupConfig {
    /// The outbound policy these settings describe.
    pub fn policy(&self) -> anyhow::Result<coffer_core::outbound::OutboundPolicy> {
        coffer_core::outbound::OutboundPolicy::new(&self.blob_endpoints, &self.file_roots, &self.private_networks)
            .map_err(|e| anyhow::anyhow!("[backup]: {e}"))
    }
}

/// TLS policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsPolicyConfig {
    /// `1.2` (default; 1.3 preferred when the client offers it) or `1.3`.
    pub min_version: String,
    /// Client certificates: `off` (default), `optional` (verified when presented) or `required` (mutual TLS: a
    /// client without a certificate from `client_ca` cannot connect; the bearer token is still required).
    pub client_auth: String,
    /// PEM file of the CA certificates client certificates must chain to.
    pub client_ca: Option<PathBuf>,
    /// Check `tls_cert`/`tls_key` (and `client_ca`) for changes this often and load them without a restart
    /// (0: only on SIGHUP).
    pub reload_interval_secs: u64,
}

impl Default for TlsPolicyConfig {
    fn default() -> Self {
        Self {
            min_version: "1.2".into(),
            client_auth: "off".into(),
            client_ca: None,
            reload_interval_secs: 60,
        }
    }
}

/// Network ACLs (the Managed HSM `networkAcls` model).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// `Allow` (default) or `Deny`: what happens to a client no rule matches.
    pub default_action: String,
    /// Allowed client ranges (CIDR, IPv4 or IPv6; a bare address is a /32 or /128).
    pub ip_rules: Vec<String>,
    /// `Enabled` (default) or `Disabled`: disabled admits only loopback and private ranges, whatever the rules.
    pub public_network_access: String,
    /// Reverse proxies whose `X-Forwarded-For` is believed (CIDR). Nobody else's is.
    pub trusted_proxies: Vec<String>,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            default_action: "Allow".into(),
            ip_rules: Vec::new(),
            public_network_access: "Enabled".into(),
            trusted_proxies: Vec::new(),
        }
    }
}

impl NetworkConfig {
    /// The ACL document these settings describe.
    pub fn to_doc(&self) -> coffer_core::network::NetworkAclsDoc {
        coffer_core::network::NetworkAclsDoc {
            default_action: self.default_action.clone(),
            ip_rules: self
                .ip_rules
                .iter()
                .map(|v| coffer_core::network::IpRule { value: v.clone() })
                .collect(),
            public_network_access: self.public_network_access.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            bypass: "None".into(),
        }
    }
}

/// Throttling (docs/NETWORK.md): weighted units per 10 seconds in token buckets that refill continuously. Signed-in
/// principals draw on the instance budget; requests without a valid token draw on their own budgets (per client
/// address and overall), and token-service requests on theirs, never on the instance's. Besides, each principal
/// has a number of concurrent request slots; its further requests wait (no 429).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ThrottlingConfig {
    pub enabled: bool,
    /// Units each principal may spend per 10 seconds (default: the instance budget, i.e. no separate limit;
    /// Azure Key Vault: 2,000).
    pub units_per_10s: u64,
    /// Units all principals together may spend per 10 seconds; while it is short, principals above their fair
    /// share wait.
    pub instance_units_per_10s: u64,
    /// Units each client address may spend per 10 seconds on requests without a valid token and token requests.
    pub address_units_per_10s: u64,
    /// Units all requests without a valid token together may spend per 10 seconds.
    pub unauthenticated_units_per_10s: u64,
    /// Units each client address may spend per 10 seconds on token-service requests.
    pub token_address_units_per_10s: u64,
    /// Units all token-service requests together may spend per 10 seconds.
    pub token_units_per_10s: u64,
    /// Requests of one principal handled at once; further ones wait for a slot (default: 4 × the CPU cores; 0 =
    /// no limit). Independent of `enabled`.
    pub concurrent_requests_per_principal: Option<usize>,
}

impl Default for ThrottlingConfig {
    fn default() -> Self {
        let d = coffer_core::throttle::ThrottleLimits::DEFAULT;
        Self {
            enabled: true,
            units_per_10s: d.per_principal,
            instance_units_per_10s: d.instance,
            address_units_per_10s: d.per_address,
            unauthenticated_units_per_10s: d.unauthenticated,
            token_address_units_per_10s: d.per_address_tokens,
            token_units_per_10s: d.token_service,
            concurrent_requests_per_principal: None,
        }
    }
}

impl ThrottlingConfig {
    /// The throttle's limits.
    pub fn limits(&self) -> coffer_core::throttle::ThrottleLimits {
        coffer_core::throttle::ThrottleLimits {
            per_principal: self.units_per_10s,
            instance: self.instance_units_per_10s,
            per_address: self.address_units_per_10s,
            unauthenticated: self.unauthenticated_units_per_10s,
            per_address_tokens: self.token_address_units_per_10s,
            token_service: self.token_units_per_10s,
        }
    }

    /// Concurrent requests per principal (`None`: no limit).
    pub fn principal_slots(&self) -> Option<usize> {
        match self.concurrent_requests_per_principal {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(4 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)),
        }
    }
}

/// Where audit records go and what happens when they cannot be written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Refuse requests with 503 when no sink can record them (default true). `false` serves unrecorded requests
    /// and only counts the failures.
    pub fail_closed: bool,
    /// Start even though the audit files end before the checkpoint stored in the database (records removed or
    /// lost): the server logs the gap as an error and continues the chain from what is left. Default false: the
    /// server refuses to start. Meant for one start after the loss was investigated (docs/AUDIT.md), also given as
    /// `coffer serve --accept-audit-truncation`.
    pub accept_truncation: bool,
    /// The `resourceId` of records (default derived from the instance name).
    pub resource_id: Option<String>,
    /// JSON Lines files (on by default, in `<data-dir>/audit`).
    pub file: FileSinkConfig,
    /// JSON Lines on standard output.
    pub stdout: bool,
    /// RFC 5424 syslog.
    pub syslog: Option<SyslogConfig>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            fail_closed: true,
            accept_truncation: false,
            resource_id: None,
            file: FileSinkConfig::default(),
            stdout: false,
            syslog: None,
        }
    }
}

/// The audit file sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FileSinkConfig {
    pub enabled: bool,
    /// Directory of the files (relative paths are under the data directory). Default `audit`.
    pub dir: PathBuf,
    /// Start a new file when the current one reaches this many bytes.
    pub max_file_bytes: u64,
    /// Start a new file every `hourly`, `daily`, or `never`.
    pub rotate: String,
    /// Delete files older than this many days (0 keeps every file).
    pub retention_days: u64,
    /// `always` (fsync before a request is answered; writes are group-committed), `interval` (once a second) or
    /// `never` (leave it to the OS).
    pub fsync: String,
}

impl Default for FileSinkConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            dir: PathBuf::from("audit"),
            max_file_bytes: 100 * 1024 * 1024,
            rotate: "hourly".into(),
            retention_days: 90,
            fsync: "always".into(),
        }
    }
}

/// The RFC 5424 syslog sink.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogConfig {
    /// `udp`, `tcp` (RFC 6587 octet counting) or `unix` (datagram socket such as /dev/log).
    pub transport: String,
    /// `host:port` for udp/tcp, a socket path for unix.
    pub address: String,
    /// Facility name (default `authpriv`).
    #[serde(default = "default_facility")]
    pub facility: String,
    /// APP-NAME (default `coffer`).
    #[serde(default = "default_app_name")]
    pub app_name: String,
    /// HOSTNAME field (default: the machine's host name).
    #[serde(default)]
    pub hostname: Option<String>,
}

fn default_facility() -> String {
    "authpriv".into()
}

fn default_app_name() -> String {
    "coffer".into()
}

/// The Prometheus metrics listener.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Address of a separate HTTPS listener serving `GET /metrics` (same certificate as the API). Off when unset.
    pub listen: Option<SocketAddr>,
}

/// The seal provider of the domain secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SealConfig {
    /// `file` (`<data-dir>/seal.key`) or `pkcs11`.
    pub provider: String,
    /// PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    pub module: Option<PathBuf>,
    /// Label of the token holding the seal key.
    pub token_label: Option<String>,
    /// Label of the AES-256 seal key inside the token.
    pub key_label: String,
    /// Environment variable holding the user PIN.
    pub pin_env: Option<String>,
    /// File holding the user PIN (first line).
    pub pin_file: Option<PathBuf>,
}

impl Default for SealConfig {
    fn default() -> Self {
        Self {
            provider: "file".into(),
            module: None,
            token_label: None,
            key_label: "coffer-seal".into(),
            pin_env: None,
            pin_file: None,
        }
    }
}

/// One trusted external OIDC issuer.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// Exact `iss` claim.
    pub issuer: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// HTTPS URL of the JWK Set.
    pub jwks_url: Option<String>,
    /// Or a local JWK Set file.
    pub jwks_file: Option<PathBuf>,
    /// Claim giving the object id (default `oid`, falling back to `sub`).
    #[serde(default = "default_oid_claim")]
    pub object_id_claim: String,
    /// Claim giving group object ids (default `groups`).
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Allowed JWS algorithms (default RS256 and ES256).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// A CA (PEM) to trust for `jwks_url`, besides the system roots.
    pub ca_cert: Option<PathBuf>,
}

/// One trusted attestation authority (Secure Key Release): tokens whose `iss` matches `issuer` (scheme and host
/// case-insensitive, one trailing `/` ignored) are verified with its JWK Set.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttestationAuthorityConfig {
    /// The authority URL as release policies name it (e.g. `https://sharedeus.eus.attest.azure.net`).
    pub issuer: String,
    /// HTTPS URL of the JWK Set (e.g. `{issuer}/certs`).
    pub jwks_url: Option<String>,
    /// Or a local JWK Set file (pinned keys).
    pub jwks_file: Option<PathBuf>,
    /// Allowed JWS algorithms (default RS256 and ES256).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// A CA (PEM) to trust for `jwks_url`, besides the system roots.
    pub ca_cert: Option<PathBuf>,
}

impl AttestationAuthorityConfig {
    /// The core form (an issuer without audiences).
    pub fn to_core(&self) -> anyhow::Result<coffer_core::issuers::ExternalIssuer> {
        IssuerConfig {
            issuer: self.issuer.clone(),
            audiences: vec![String::new()],
            jwks_url: self.jwks_url.clone(),
            jwks_file: self.jwks_file.clone(),
            object_id_claim: String::new(),
            groups_claim: String::new(),
            algorithms: self.algorithms.clone(),
            ca_cert: self.ca_cert.clone(),
        }
        .to_core()
        .map(|mut i| {
            i.audiences.clear();
            i
        })
    }
}

fn default_oid_claim() -> String {
    "oid".into()
}

fn default_groups_claim() -> String {
    "groups".into()
}

fn default_algorithms() -> Vec<String> {
    vec!["RS256".into(), "ES256".into()]
}

impl IssuerConfig {
    /// The core form, after checking the source and algorithms.
    pub fn to_core(&self) -> anyhow::Result<coffer_core::issuers::ExternalIssuer> {
        let jwks = match (&self.jwks_url, &self.jwks_file) {
            (Some(u), None) if u.starts_with("https://") => coffer_core::issuers::JwksSource::Url(u.clone()),
            (Some(u), None) => anyhow::bail!("issuer {}: jwks_url must be https ({u})", self.issuer),
            (None, Some(f)) => coffer_core::issuers::JwksSource::File(f.clone()),
            _ => anyhow::bail!("issuer {}: give exactly one of jwks_url and jwks_file", self.issuer),
        };
        const ALLOWED: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"];
        for a in &self.algorithms {
            if !ALLOWED.contains(&a.as_str()) {
                anyhow::bail!(
                    "issuer {}: algorithm {a} is not allowed (use one of {ALLOWED:?})",
                    self.issuer
                );
            }
        }
        if self.audiences.is_empty() {
            anyhow::bail!("issuer {}: at least one audience is required", self.issuer);
        }
        Ok(coffer_core::issuers::ExternalIssuer {
            issuer: self.issuer.clone(),
            audiences: self.audiences.clone(),
            jwks,
            object_id_claim: self.object_id_claim.clone(),
            groups_claim: self.groups_claim.clone(),
            algorithms: self.algorithms.clone(),
            ca_cert: self.ca_cert.clone(),
        })
    }
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
            issuers: Vec::new(),
            attestation_authorities: Vec::new(),
            separation_of_duties: "warn".into(),
            recovery: false,
            security_domain_redownload_without_quorum: false,
            seal: SealConfig::default(),
            jobs_interval_secs: 60,
            audit: AuditConfig::default(),
            metrics: MetricsConfig::default(),
            tls: TlsPolicyConfig::default(),
            network: NetworkConfig::default(),
            throttling: ThrottlingConfig::default(),
            backup: BackupConfig::default(),
            connections: ConnectionsConfig::default(),
            database: crate::database::DatabaseConfig::default(),
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
        self.database.validate()?;
        if !(7..=90).contains(&self.soft_delete_retention_days) {
            anyhow::bail!("soft-delete retention must be 7 to 90 days");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            anyhow::bail!("--tls-cert and --tls-key go together");
        }
        if self.dev && self.recovery {
            anyhow::bail!("--dev and --recovery exclude each other");
        }
        match self.seal.provider.as_str() {
            "file" => {}
            "pkcs11" => {
                if self.seal.module.is_none() || self.seal.token_label.is_none() {
                    anyhow::bail!("the pkcs11 seal needs module and token_label");
                }
                if self.seal.pin_env.is_none() == self.seal.pin_file.is_none() {
                    anyhow::bail!("the pkcs11 seal needs exactly one of pin_env and pin_file");
                }
            }
            other => anyhow::bail!("unknown seal provider '{other}' (use file or pkcs11)"),
        }
        if coffer_core::rbac::SeparationOfDuties::parse(&self.separation_of_duties).is_none() {
            anyhow::bail!("separation_of_duties must be off, warn or deny");
        }
        if !matches!(self.audit.file.rotate.as_str(), "hourly" | "daily" | "never") {
            anyhow::bail!("audit.file.rotate must be hourly, daily or never");
        }
        if !matches!(self.audit.file.fsync.as_str(), "always" | "interval" | "never") {
            anyhow::bail!("audit.file.fsync must be always, interval or never");
        }
        if self.audit.file.max_file_bytes < 4096 {
            anyhow::bail!("audit.file.max_file_bytes must be at least 4096");
        }
        if let Some(s) = &self.audit.syslog
            && !matches!(s.transport.as_str(), "udp" | "tcp" | "unix")
        {
            anyhow::bail!("audit.syslog.transport must be udp, tcp or unix");
        }
        if self.audit.fail_closed && !self.audit.file.enabled && !self.audit.stdout && self.audit.syslog.is_none() {
            anyhow::bail!(
                "auditing is fail-closed but no audit sink is configured: enable one or set fail_closed = false"
            );
        }
        coffer_core::network::NetworkAcls::parse(self.network.to_doc())
            .map_err(|e| anyhow::anyhow!("[network]: {e}"))?;
        self.backup.policy()?;
        self.connections.validate()?;
        let t = &self.throttling;
        if t.enabled
            && [
                t.units_per_10s,
                t.instance_units_per_10s,
                t.address_units_per_10s,
                t.unauthenticated_units_per_10s,
                t.token_address_units_per_10s,
                t.token_units_per_10s,
            ]
            .iter()
            .any(|u| *u < 10)
        {
            anyhow::bail!("throttling budgets must be at least 10 units per 10 seconds");
        }
        if !matches!(self.tls.min_version.as_str(), "1.2" | "1.3") {
            anyhow::bail!("tls.min_version must be 1.2 or 1.3");
        }
        match (self.tls.client_auth.as_str(), &self.tls.client_ca) {
            ("off", None) | ("optional" | "required", Some(_)) => {}
            ("off", Some(_)) => anyhow::bail!("tls.client_ca is set but tls.client_auth is off"),
            ("optional" | "required", None) => anyhow::bail!("tls.client_auth needs tls.client_ca"),
            _ => anyhow::bail!("tls.client_auth must be off, optional or required"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coffer_toml_with_issuers() {
        let c = ServeConfig::from_toml(
            r#"
listen = "127.0.0.1:9443"
data_dir = "/var/lib/coffer"
hostname = ["hsm1.mhsm.example"]
soft_delete_retention_days = 30

[[issuers]]
issuer = "https://login.example/tenant/v2.0"
audiences = ["https://mhsm.example"]
jwks_url = "https://login.example/tenant/discovery/v2.0/keys"
"#,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9443);
        assert_eq!(c.soft_delete_retention_days, 30);
        assert_eq!(c.public_url_for(9443), "https://hsm1.mhsm.example:9443");
        let i = c.issuers[0].to_core().unwrap();
        assert_eq!(i.object_id_claim, "oid");
        assert_eq!(i.algorithms, vec!["RS256", "ES256"]);
        c.validate().unwrap();
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(ServeConfig::from_toml("unknown_key = 1").is_err());
        let c = ServeConfig {
            soft_delete_retention_days: 5,
            ..ServeConfig::default()
        };
        assert!(c.validate().is_err());
        let http = IssuerConfig {
            issuer: "i".into(),
            audiences: vec!["a".into()],
            jwks_url: Some("http://plain".into()),
            jwks_file: None,
            object_id_claim: "oid".into(),
            groups_claim: "groups".into(),
            algorithms: vec!["RS256".into()],
            ca_cert: None,
        };
        assert!(http.to_core().is_err(), "JWKS must come over https");
        let none = IssuerConfig {
            jwks_url: Some("https://x".into()),
            algorithms: vec!["none".into()],
            ..http
        };
        assert!(none.to_core().is_err(), "alg none is never allowed");
    }
}
