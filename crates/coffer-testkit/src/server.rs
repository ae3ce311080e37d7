//! [`TestServer`] boots the real server (real TLS, real SQLite) in a temporary data directory on a free loopback
//! port, reads the bootstrap credentials it wrote, and gives a `reqwest` client that trusts the server's CA.
use std::path::PathBuf;

use anyhow::Context;
use coffer_server::{Running, ServeConfig};

/// Managed HSM Crypto User.
pub const CRYPTO_USER: &str = "21dbd100-6940-42c2-9190-5d6cb909625b";
/// Managed HSM Crypto Officer.
pub const CRYPTO_OFFICER: &str = "515eb02d-2335-4d2d-92f2-b1cbdf9c3778";

/// A random GUID-shaped name.
pub fn uuid_like() -> String {
    let b: [u8; 16] = std::array::from_fn(|_| rand_byte());
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0xfff,
        u16::from_be_bytes([b[8], b[9]]) & 0xfff,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn rand_byte() -> u8 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    (h.finish() & 0xff) as u8
}

/// Builder for a test server.
#[derive(Debug, Default)]
pub struct TestServerBuilder {
    retention_days: Option<i64>,
    purge_protection: bool,
    data_dir: Option<PathBuf>,
    bare: bool,
    sod: Option<String>,
    provisioned: bool,
    recovery: bool,
    issuers: Vec<coffer_server::config::IssuerConfig>,
    attestation_authorities: Vec<coffer_server::config::AttestationAuthorityConfig>,
    audit: Option<coffer_server::config::AuditConfig>,
    metrics: Option<std::net::SocketAddr>,
    tls_policy: Option<coffer_server::config::TlsPolicyConfig>,
    tls_files: Option<(PathBuf, PathBuf)>,
    trust_ca: Option<PathBuf>,
    client_identity: Option<Vec<u8>>,
    configure: Option<fn(&mut ServeConfig)>,
    backup: Option<coffer_server::config::BackupConfig>,
}

/// The backup destinations a test server allows unless told otherwise ([`TestServerBuilder::backup`]): `file://`
/// under the system's temporary directory (where tests make their containers), the Azurite account of
/// `COFFER_AZURITE_URL` when set, and loopback addresses (Azurite listens there).
pub fn test_backup_config() -> coffer_server::config::BackupConfig {
    let mut blob_endpoints = coffer_server::config::BackupConfig::default().blob_endpoints;
    if let Ok(url) = std::env::var("COFFER_AZURITE_URL") {
        blob_endpoints.push(url.trim_end_matches('/').to_string());
    }
    coffer_server::config::BackupConfig {
        blob_endpoints,
        file_roots: vec![std::env::temp_dir()],
        private_networks: vec!["127.0.0.0/8".into(), "::1".into()],
    }
}

impl TestServerBuilder {
    /// Soft-delete retention in days.
    pub fn retention_days(mut self, days: i64) -> Self {
        self.retention_days = Some(days);
        self
    }
    /// Purge protection on.
    pub fn purge_protection(mut self) -> Self {
        self.purge_protection = true;
        self
    }
    /// Do not give the bootstrap principal the crypto roles (it keeps only Administrator and Identity
    /// Administrator at `/`, as a new instance has).
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }
    /// Create the instance without `--dev`: provisioned, not activated (implies `bare`).
    pub fn provisioned(mut self) -> Self {
        self.provisioned = true;
        self.bare = true;
        self
    }
    /// Create the instance in recovery mode (implies `bare`).
    pub fn recovery(mut self) -> Self {
        self.recovery = true;
        self.bare = true;
        self
    }
    /// Separation-of-duties policy (`off`, `warn`, `deny`).
    pub fn separation_of_duties(mut self, policy: &str) -> Self {
        self.sod = Some(policy.to_string());
        self
    }
    /// Trusts an external OIDC issuer.
    pub fn trust_issuer(mut self, issuer: coffer_server::config::IssuerConfig) -> Self {
        self.issuers.push(issuer);
        self
    }
    /// Trusts an attestation authority for Secure Key Release.
    pub fn attestation_authority(mut self, authority: coffer_server::config::AttestationAuthorityConfig) -> Self {
        self.attestation_authorities.push(authority);
        self
    }
    /// Audit settings (default: the file sink in `<data-dir>/audit`, fail-closed).
    pub fn audit(mut self, audit: coffer_server::config::AuditConfig) -> Self {
        self.audit = Some(audit);
        self
    }
    /// Serve `/metrics` on a separate listener at `addr` (port 0 picks one; see `TestServer::metrics_url`).
    pub fn metrics(mut self, addr: std::net::SocketAddr) -> Self {
        self.metrics = Some(addr);
        self
    }
    /// TLS policy (`[tls]`: minimum version, client certificates, reload interval).
    pub fn tls_policy(mut self, policy: coffer_server::config::TlsPolicyConfig) -> Self {
        self.tls_policy = Some(policy);
        self
    }
    /// Serve this PEM certificate chain and key (`tls_cert`/`tls_key`) instead of a generated certificate. The
    /// data directory then has no `ca.pem`: give the CA the client should trust with [`Self::trust_ca`].
    pub fn tls_files(mut self, cert: PathBuf, key: PathBuf) -> Self {
        self.tls_files = Some((cert, key));
        self
    }
    /// The CA certificate (PEM file) [`TestServer::client`] trusts (default: the data directory's `ca.pem`).
    pub fn trust_ca(mut self, ca: PathBuf) -> Self {
        self.trust_ca = Some(ca);
        self
    }
    /// A client certificate and key (one PEM) that [`TestServer::client`] presents (for `client_auth = required`).
    pub fn client_identity(mut self, pem: Vec<u8>) -> Self {
        self.client_identity = Some(pem);
        self
    }
    /// Adjusts the configuration before start (network ACLs, throttling, TLS policy …).
    pub fn configure(mut self, f: fn(&mut ServeConfig)) -> Self {
        self.configure = Some(f);
        self
    }
    /// Backup destinations (`[backup]`; default: [`test_backup_config`]).
    pub fn backup(mut self, backup: coffer_server::config::BackupConfig) -> Self {
        self.backup = Some(backup);
        self
    }
    /// Use an existing data directory (e.g. to open an instance created earlier).
    pub fn data_dir(mut self, dir: PathBuf) -> Self {
        self.data_dir = Some(dir);
        self
    }
    /// Starts the server.
    pub async fn start(self) -> anyhow::Result<TestServer> {
        let tmp = tempfile::tempdir()?;
        let dir = self.data_dir.clone().unwrap_or_else(|| tmp.path().join("data"));
        let config = ServeConfig {
            listen: "127.0.0.1:0".parse()?,
            data_dir: dir.clone(),
            dev: !self.provisioned && !self.recovery,
            recovery: self.recovery,
            soft_delete_retention_days: self.retention_days.unwrap_or(90),
            purge_protection: self.purge_protection,
            issuers: self.issuers.clone(),
            attestation_authorities: self.attestation_authorities.clone(),
            separation_of_duties: self.sod.clone().unwrap_or_else(|| "warn".into()),
            audit: self.audit.clone().unwrap_or_default(),
            metrics: coffer_server::config::MetricsConfig { listen: self.metrics },
            tls: self.tls_policy.clone().unwrap_or_default(),
            tls_cert: self.tls_files.as_ref().map(|(c, _)| c.clone()),
            tls_key: self.tls_files.as_ref().map(|(_, k)| k.clone()),
            backup: self.backup.clone().unwrap_or_else(test_backup_config),
            ..ServeConfig::default()
        };
        let mut config = config;
        if let Some(f) = self.configure {
            f(&mut config);
        }
        let running = coffer_server::start(config.clone()).await?;
        let creds_text = std::fs::read_to_string(running.data_dir.join("admin-credentials.json"))
            .context("reading admin-credentials.json")?;
        let creds: serde_json::Value = serde_json::from_str(&creds_text)?;
        let ca_path = self.trust_ca.clone().unwrap_or_else(|| running.data_dir.join("ca.pem"));
        let ca = std::fs::read(&ca_path).with_context(|| format!("reading {}", ca_path.display()))?;
        let mut client = reqwest::Client::builder().tls_certs_only([reqwest::Certificate::from_pem(&ca)?]);
        if let Some(pem) = &self.client_identity {
            client = client.identity(reqwest::Identity::from_pem(pem)?);
        }
        let client = client.build()?;
        let server = TestServer {
            running: Some(running),
            config,
            creds,
            client,
            _tmp: tmp,
        };
        if !self.bare {
            let oid = server.cred("object_id");
            for role in [CRYPTO_USER, CRYPTO_OFFICER] {
                server.assign(role, "/", &oid).await?;
            }
        }
        Ok(server)
    }
}

/// A principal made by [`TestServer::new_principal`].
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub object_id: String,
    pub client_id: String,
    pub secret: String,
    /// A token for it (audience: this instance).
    pub token: String,
}

/// A running test server.
#[derive(Debug)]
pub struct TestServer {
    running: Option<Running>,
    config: ServeConfig,
    /// The bootstrap credentials (`admin-credentials.json`).
    pub creds: serde_json::Value,
    /// A client trusting the server's CA.
    pub client: reqwest::Client,
    _tmp: tempfile::TempDir,
}

impl TestServer {
    /// A builder.
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// The public base URL.
    pub fn url(&self) -> String {
        self.running.as_ref().map(|r| r.url.clone()).unwrap_or_default()
    }

    /// A credential field.
    pub fn cred(&self, k: &str) -> String {
        self.creds[k].as_str().unwrap_or_default().to_string()
    }

    /// The issuer of this instance's tokens.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.url(), self.cred("tenant_id"))
    }

    /// The JWKS URL of this instance's token service.
    pub fn jwks_url(&self) -> String {
        format!("{}/{}/discovery/v2.0/keys", self.url(), self.cred("tenant_id"))
    }

    /// `https://127.0.0.1:{port}/metrics` of the metrics listener, when one was asked for.
    pub fn metrics_url(&self) -> Option<String> {
        let addr = self.running.as_ref()?.metrics_addr?;
        Some(format!("https://127.0.0.1:{}/metrics", addr.port()))
    }

    /// Scrapes the metrics listener once and returns the value of one series, named as in the exposition (e.g.
    /// `coffer_store_queries_total{method="key_version"}`). An error when the series is absent.
    pub async fn metric(&self, series: &str) -> anyhow::Result<f64> {
        let url = self
            .metrics_url()
            .context("no metrics listener (TestServerBuilder::metrics)")?;
        let text = self.client.get(url).send().await?.error_for_status()?.text().await?;
        let value = text.lines().find_map(|l| {
            let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
            rest.split(' ').next()?.parse().ok()
        });
        value.with_context(|| format!("no series {series} in\n{text}"))
    }

    /// The audit file sink's directory (the default one under the data directory).
    pub fn audit_dir(&self) -> PathBuf {
        self.data_dir().join("audit")
    }

    /// The bound address of the API listener.
    pub fn addr(&self) -> Option<std::net::SocketAddr> {
        self.running.as_ref().map(|r| r.addr)
    }

    /// Re-reads the TLS certificate files now (what SIGHUP does for `coffer serve`); see
    /// [`coffer_server::Running::reload_tls`].
    pub fn reload_tls(&self) -> anyhow::Result<bool> {
        self.running.as_ref().context("the server is stopped")?.reload_tls()
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.running.as_ref().map(|r| r.data_dir.clone()).unwrap_or_default()
    }

    /// Path of the CA certificate that signed the server certificate.
    pub fn ca_path(&self) -> PathBuf {
        PathBuf::from(self.cred("ca_cert"))
    }

    /// A token for any client of this instance, for `scope`.
    pub async fn token_for(&self, client_id: &str, secret: &str, scope: &str) -> anyhow::Result<String> {
        self.request_token(&self.client, client_id, secret, scope).await
    }

    /// A client-credentials token request through `client`.
    async fn request_token(
        &self,
        client: &reqwest::Client,
        client_id: &str,
        secret: &str,
        scope: &str,
    ) -> anyhow::Result<String> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("scope", scope),
        ];
        let resp = client.post(self.token_endpoint()).form(&form).send().await?;
        anyhow::ensure!(resp.status().is_success(), "token request failed: {}", resp.status());
        let body: serde_json::Value = resp.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .context("no access_token")
    }

    /// A bearer token for the bootstrap principal, requested through `client` (e.g. one bound to another source
    /// address).
    pub async fn token_for_via(&self, client: &reqwest::Client) -> anyhow::Result<String> {
        let scope = format!("{}/.default", self.url());
        self.request_token(client, &self.cred("client_id"), &self.cred("client_secret"), &scope)
            .await
    }

    /// Creates a service principal (as the bootstrap principal) and gets a token for it.
    pub async fn new_principal(&self, name: &str) -> anyhow::Result<NewPrincipal> {
        let (st, p) = self
            .call(
                reqwest::Method::POST,
                "/coffer/v1/principals?api-version=7.6",
                Some(serde_json::json!({ "displayName": name })),
            )
            .await?;
        anyhow::ensure!(st == 201, "creating principal {name}: {st} {p}");
        let field = |k: &str| p[k].as_str().map(str::to_string).context(format!("no {k}"));
        let (client_id, secret) = (field("clientId")?, field("clientSecret")?);
        let token = self
            .token_for(&client_id, &secret, &format!("{}/.default", self.url()))
            .await?;
        Ok(NewPrincipal {
            object_id: field("objectId")?,
            client_id,
            secret,
            token,
        })
    }

    /// Sends a JSON request with `token` and returns (status, JSON body or Null).
    pub async fn call_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let mut req = self
            .client
            .request(method, format!("{}{path_and_query}", self.url()))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)))
    }

    /// Every record of the audit file sink, in chain order.
    pub fn audit_records(&self) -> anyhow::Result<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        for f in coffer_server::audit_sinks::file::list_files(&self.audit_dir())? {
            for line in std::fs::read_to_string(&f)?.lines() {
                out.push(serde_json::from_str(line)?);
            }
        }
        Ok(out)
    }

    /// The token endpoint URL.
    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url(), self.cred("tenant_id"))
    }

    /// A bearer token for the bootstrap principal.
    pub async fn token(&self) -> anyhow::Result<String> {
        self.token_for_via(&self.client).await
    }

    /// Starts a long-running job (full backup or restore: 202 with `Azure-AsyncOperation`) as the bootstrap
    /// principal and polls its status URL until it leaves `InProgress` (at most 20 s); the final status body.
    pub async fn run_job(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> anyhow::Result<serde_json::Value> {
        let token = self.token().await?;
        let resp = self
            .client
            .request(method, format!("{}{path}", self.url()))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(resp.status().as_u16() == 202, "{path}: {}", resp.status());
        let url = resp.headers()["azure-asyncoperation"].to_str()?.to_string();
        for _ in 0..400 {
            let st: serde_json::Value = self.client.get(&url).bearer_auth(&token).send().await?.json().await?;
            if st["status"] != "InProgress" {
                return Ok(st);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        anyhow::bail!("job {path} did not finish within 20 s")
    }

    /// Sends an authenticated JSON request and returns (status, JSON body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<serde_json::Value>,
    ) -> anyhow::Result<(u16, serde_json::Value)> {
        let token = self.token().await?;
        let mut req = self
            .client
            .request(method, format!("{}{path_and_query}", self.url()))
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text)?
        };
        Ok((status, json))
    }

    /// Assigns a role (by GUID) at a scope (`/`, `/keys`, `/keys/{name}`) as the bootstrap principal.
    pub async fn assign(&self, role: &str, scope: &str, principal_id: &str) -> anyhow::Result<String> {
        let name = uuid_like();
        let path = format!(
            "{}/providers/Microsoft.Authorization/roleAssignments/{name}?api-version=7.6",
            scope.trim_end_matches('/')
        );
        let body = serde_json::json!({"properties": {
            "roleDefinitionId": format!("Microsoft.KeyVault/providers/Microsoft.Authorization/roleDefinitions/{role}"),
            "principalId": principal_id}});
        let (status, resp) = self.call(reqwest::Method::PUT, &path, Some(body)).await?;
        anyhow::ensure!(status == 201, "role assignment failed: {status} {resp}");
        Ok(name)
    }

    /// A new `--recovery` instance that holds this (dev) instance's domain secret: officers 1 and 2 of the
    /// generated security domain wrap it for the new instance's exchange key, and it is uploaded. The bootstrap
    /// principal of the new instance gets Crypto User and Crypto Officer at `/`.
    pub async fn recover_into_new_instance(&self) -> anyhow::Result<TestServer> {
        use base64::Engine as _;
        use coffer_crypto::security_domain::{self as sd, RsaCertified};
        let dir = self.data_dir().join("dev-security-domain");
        let file = std::fs::read_to_string(dir.join("security-domain.json"))?;
        let officer = |i: u32| -> anyhow::Result<RsaCertified> {
            Ok(RsaCertified::from_pem(
                &std::fs::read(dir.join(format!("officer{i}.pem")))?,
                &std::fs::read_to_string(dir.join(format!("officer{i}.cer")))?,
            )?)
        };
        let rec = TestServer::builder().recovery().start().await?;
        let (st, tk) = rec
            .call(reqwest::Method::GET, "/securitydomain/upload?api-version=7.6", None)
            .await?;
        anyhow::ensure!(st == 200, "transfer key: {st} {tk}");
        let jwk: serde_json::Value = serde_json::from_str(tk["transfer_key"].as_str().context("no transfer_key")?)?;
        let exchange = base64::engine::general_purpose::STANDARD.decode(jwk["x5c"][0].as_str().context("no x5c")?)?;
        let items = sd::recover_items(&file, &[officer(1)?, officer(2)?])?;
        let blob = sd::make_restore_blob(&items, &exchange)?;
        let body = serde_json::json!({ "value": blob });
        let (st, b) = rec
            .call(
                reqwest::Method::POST,
                "/securitydomain/upload?api-version=7.6",
                Some(body),
            )
            .await?;
        anyhow::ensure!(st == 202, "upload: {st} {b}");
        let oid = rec.cred("object_id");
        for role in [CRYPTO_USER, CRYPTO_OFFICER] {
            rec.assign(role, "/", &oid).await?;
        }
        Ok(rec)
    }

    /// Stops the server gracefully and starts it again on the same data directory (on a new port).
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            let dir = r.data_dir.clone();
            r.shutdown().await?;
            self.config.data_dir = dir;
        }
        self.running = Some(coffer_server::start(self.config.clone()).await?);
        Ok(())
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(r) = self.running.take() {
            r.shutdown().await?;
        }
        Ok(())
    }
}
